/**
 * Walks a volume's tar stream header by header with the tar library's parser:
 * restore's hostile-member scan and inspect's file list both read volumes so.
 */
import type {Readable} from 'node:stream'
import {Parser, type ReadEntry} from 'tar'

/**
 * Reads a tar stream to its end, calling `onEntry` for each member header (the
 * member's data is skipped). Rejects when the stream is not a readable tar:
 * a parse error, an abort, or any tar warning but informational ones.
 */
export async function walkTar(stream: Readable, onEntry: (entry: ReadEntry) => void): Promise<void> {
  let corrupt: string | undefined
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      onEntry(entry)
      entry.resume()
    },
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_ENTRY_INFO') corrupt ??= `${code}: ${message}`
    },
  })
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject)
    parser.on('error', reject)
    parser.on('abort', reject)
    parser.on('end', resolve)
    stream.pipe(parser as unknown as NodeJS.WritableStream)
  })
  if (corrupt) throw new Error(`the volume's tar stream is not readable (${corrupt})`)
}
