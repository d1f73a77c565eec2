/**
 * Sealed fields: the parts of a stream entry's `extra` that may carry
 * credentials (a dump's command lines and the stderr its command wrote). In
 * an encrypted archive they are not stored in the plain manifest: the writer
 * moves them into `extra.sealed`, one ASCII-armored age file of their JSON
 * object, encrypted to the archive's recipients, and a reader that holds an
 * identity puts them back. By hand: take `extra.sealed` from the manifest and
 * pipe it to `age -d -i KEY` (age reads armor as it is).
 */
import {armor} from 'age-encryption'
import {Readable, Writable, type Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {ArchiveError} from './errors.js'
import {isStreamEntry, MANIFEST_MEMBER, SEALED_EXTRA_FIELDS, type ManifestEntry, type StreamEntry} from './manifest.js'

/** Encrypts a small buffer to one age file (the writer's cipher). */
export type EncryptBuffer = (data: Buffer) => Promise<Buffer>
/** Decrypts one age file whole (the reader's identities). */
export type DecryptBuffer = (data: Buffer) => Promise<Buffer>

/** The entry with its sealed fields moved into `extra.sealed`; entries without such fields come back as they are. */
export async function sealEntry(entry: ManifestEntry, encrypt: EncryptBuffer): Promise<ManifestEntry> {
  if (!isStreamEntry(entry) || !entry.extra) return entry
  const open: Record<string, unknown> = {}
  const plain: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(entry.extra)) {
    if (value === undefined) continue
    if ((SEALED_EXTRA_FIELDS as readonly string[]).includes(key)) open[key] = value
    else plain[key] = value
  }
  if (Object.keys(open).length === 0) return entry
  const file = await encrypt(Buffer.from(JSON.stringify(open)))
  return {...entry, extra: {...plain, sealed: armor.encode(file)}}
}

/**
 * The entry with `extra.sealed` opened and its fields back in `extra`. Throws
 * an ArchiveError when the sealed text is not an age file for these
 * identities or holds anything but the sealed fields as strings.
 */
export async function unsealEntry(entry: StreamEntry, decrypt: DecryptBuffer, archivePath: string): Promise<StreamEntry> {
  const sealed = entry.extra?.sealed
  if (typeof sealed !== 'string') return entry
  const refuse = (what: string, cause?: unknown): never => {
    throw new ArchiveError('corrupt manifest', `The sealed fields of ${entry.type} ${entry.name} in ${archivePath} ${what}; the archive was damaged or altered, use another one.`, archivePath, MANIFEST_MEMBER, {cause})
  }
  let file: Uint8Array
  try {
    file = armor.decode(sealed)
  } catch (err) {
    return refuse('are not an ASCII-armored age file', err)
  }
  let text: string
  try {
    text = (await decrypt(Buffer.from(file))).toString('utf8')
  } catch (err) {
    // A key that opens none of the archive's files is a usage error found before (checkIdentity); keep its own words.
    if (err instanceof ArchiveError && err.problem === 'no matching identity') throw err
    return refuse('cannot be decrypted', err)
  }
  let fields: unknown
  try {
    fields = JSON.parse(text)
  } catch {
    fields = undefined
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return refuse('are not a JSON object')
  for (const [key, value] of Object.entries(fields)) {
    if (!(SEALED_EXTRA_FIELDS as readonly string[]).includes(key) || typeof value !== 'string') refuse(`hold ${JSON.stringify(key)}, which is not a sealed field`)
  }
  const {sealed: _, ...plain} = entry.extra!
  return {...entry, extra: {...plain, ...(fields as Record<string, string>)}}
}

/** decrypt() of the reader's OpenOptions as a whole-buffer function. */
export function decryptWith(decrypt: () => Transform): DecryptBuffer {
  return (data) => transformBuffer(data, decrypt())
}

/** Runs a small buffer through a transform and collects the output. */
export async function transformBuffer(input: Buffer, transform: Transform): Promise<Buffer> {
  const chunks: Buffer[] = []
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk)
      callback()
    },
  })
  await pipeline(Readable.from([input]), transform, collect)
  return Buffer.concat(chunks)
}
