/**
 * Hand-made archives for the tests of refusals (holds no tests itself): what
 * someone who edits an archive can write, with every hash and offset made to
 * match, so only the checks under test stand between it and a restore.
 */
import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {BLOCK, encodeMemberHeader, encodeTrailer, END_OF_ARCHIVE, paddingFor} from './layout.js'
import {ARCHIVE_FORMAT, FORMAT_MEMBER, FORMAT_VERSION, MANIFEST_MEMBER, type Manifest, type ObjectEntry} from './manifest.js'
import {objectMemberPath} from './naming.js'

/** One object member as forged: its record (path defaults to the one the record gives) and its content. */
export interface ForgedObject {
  entry: Omit<ObjectEntry, 'type' | 'path' | 'offset' | 'size' | 'sha256'> & {path?: string; type?: ObjectEntry['type']}
  content: string | Buffer
}

/** Writes an archive of object members to `path`, members in the order given (repeats included); returns its manifest. */
export async function forgeArchive(path: string, options: {namespace: string; number?: number; objects: ForgedObject[]}): Promise<Manifest> {
  const mtime = new Date(0)
  const startedAt = new Date().toISOString()
  const number = options.number ?? 1
  const chunks: Buffer[] = []
  let position = 0
  const member = (memberPath: string, content: Buffer): {offset: number; size: number; sha256: string} => {
    const header = encodeMemberHeader(memberPath, content.length, mtime)
    chunks.push(header, content, Buffer.alloc(paddingFor(content.length)))
    const offset = position + header.length
    position = offset + content.length + paddingFor(content.length)
    return {offset, size: content.length, sha256: createHash('sha256').update(content).digest('hex')}
  }
  const format = {format: ARCHIVE_FORMAT, formatVersion: FORMAT_VERSION, kubesnapVersion: 'forged', namespace: options.namespace, number, startedAt}
  member(FORMAT_MEMBER, Buffer.from(JSON.stringify(format)))
  const entries: ObjectEntry[] = options.objects.map(({entry, content}) => {
    const memberPath = entry.path ?? objectMemberPath(entry)
    return {type: 'object', ...entry, path: memberPath, ...member(memberPath, Buffer.from(content))}
  })
  const manifest: Manifest = {
    ...format, format: ARCHIVE_FORMAT, formatVersion: FORMAT_VERSION, cluster: {server: 'https://forged', context: 'forged'},
    finishedAt: startedAt, encrypted: false, entries, skipped: [], warnings: [],
  }
  const written = member(MANIFEST_MEMBER, Buffer.from(JSON.stringify(manifest)))
  chunks.push(encodeTrailer({manifestOffset: written.offset, manifestSize: written.size, manifestSha256: written.sha256}, mtime), END_OF_ARCHIVE)
  await writeFile(path, Buffer.concat(chunks), {mode: 0o600})
  if (position % BLOCK !== 0) throw new Error('forged archive is not block-aligned')
  return manifest
}

/** The JSON of a namespaced object as the API server would return it. */
export function objectJson(kind: string, apiVersion: string, name: string, namespace: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({apiVersion, kind, metadata: {name, namespace, uid: 'forged'}, ...extra})
}
