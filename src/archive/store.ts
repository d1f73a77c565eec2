/**
 * Where archives are kept: a local directory, or an `s3://BUCKET/PREFIX`
 * location. The one seam the reader, verify, list, select and prune go
 * through, so an S3 location works wherever a directory does. The S3 side
 * (and the AWS SDK) is imported only when an s3:// location is used.
 */
import {createReadStream} from 'node:fs'
import {open, stat, unlink} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {isS3Url, joinS3} from './s3-url.js'

export {isS3Url} from './s3-url.js'

/** The S3 module, loaded on first use. */
export function s3(): Promise<typeof import('./s3.js')> {
  return import('./s3.js')
}

/** An archive opened for positional reads, as a FileHandle is (the reader and verify need only this). */
export interface ArchiveSource {
  readonly size: number
  /** Reads up to `length` bytes at `position`; `exact` says no more than these bytes will be wanted next (a ranged GET of just them). */
  read(buffer: Buffer, offset: number, length: number, position: number, hint?: 'exact'): Promise<{bytesRead: number}>
  close(): Promise<void>
}

/** Opens an archive file or object for reading. Throws ENOENT-like errors as the file system does, S3 errors as one sentence. */
export async function openSource(location: string): Promise<ArchiveSource> {
  if (isS3Url(location)) {
    const {objectSize, ObjectReader} = await s3()
    const size = await objectSize(location)
    if (size === undefined) throw Object.assign(new Error(`${location} does not exist`), {code: 'ENOENT'})
    const reader = new ObjectReader(location, size)
    return {
      size,
      read: (buffer, offset, length, position, hint) => reader.read(buffer, offset, length, position, hint),
      close: async () => reader.close(),
    }
  }
  const fh = await open(location, 'r')
  const {size} = await fh.stat()
  return {
    size,
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    close: () => fh.close(),
  }
}

/** Streams bytes `start` to `end` (inclusive) of an archive: a file range, or one ranged GET opened when first read. */
export function rangeStream(location: string, start: number, end: number): Readable {
  // 256 KiB reads: each read is a fresh buffer until a garbage collection, and 1 MiB ones took a 1 GiB restore from 185 to 200-213 MiB, at the same speed.
  if (!isS3Url(location)) return createReadStream(location, {start, end, highWaterMark: 256 * 1024})
  return Readable.from(
    (async function* () {
      const {getRange} = await s3()
      yield* await getRange(location, start, end)
    })(),
    {objectMode: false},
  )
}

/** The size of an archive, or undefined when it does not exist. */
export async function archiveSize(location: string): Promise<number | undefined> {
  if (isS3Url(location)) return (await s3()).objectSize(location)
  try {
    return (await stat(location)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Removes an archive file or object. */
export async function removeArchive(location: string): Promise<void> {
  if (isS3Url(location)) return (await s3()).deleteObject(location)
  await unlink(location)
}

/** Joins a directory or s3:// prefix and a file name. */
export function joinLocation(dir: string, file: string): string {
  return isS3Url(dir) ? joinS3(dir, file) : join(dir, file)
}
