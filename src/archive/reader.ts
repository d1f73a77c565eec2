/**
 * The archive reader: opens an archive by its trailer and manifest only (a few
 * KiB whatever the archive size), then reads any entry by offset with positional
 * reads, checking its sha256 as it goes.
 */
import {createHash} from 'node:crypto'
import {closeSync, openSync, readSync} from 'node:fs'
import {PassThrough, pipeline, Readable, Transform, type TransformCallback} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {createGunzip} from 'node:zlib'
import {ArchiveError} from './errors.js'
import {decryptWith, unsealEntry} from './sealed.js'
import {BLOCK, decodeHeader, parseTrailer, TRAILER_SPAN, type Trailer} from './layout.js'
import {corruptManifest, EntryChecker, FORMAT_MEMBER, isStreamEntry, MANIFEST_MEMBER, TRAILER_MEMBER, validateManifest, validateManifestHead, type Manifest, type ManifestEntry, type ManifestHead, type ObjectEntry, type StreamEntry, type StreamPart} from './manifest.js'
import {splitManifestJson} from './manifest-text.js'
import {isS3Url, openSource, rangeStream, type ArchiveSource} from './store.js'

export interface OpenOptions {
  /** Returns a fresh decrypting transform; needed to read the content of an encrypted archive. */
  decrypt?: () => Transform
}

/**
 * Opens an archive: reads the trailer at the end of the file, then the manifest
 * it points to, and checks the manifest's sha256. Reads nothing else, so it is
 * as fast on a 50 GiB archive as on a small one. Throws ArchiveError when the
 * file is not a kubesnap archive, is truncated, or has an unsupported version.
 */
export async function openArchive(path: string, options: OpenOptions = {}): Promise<ArchiveReader> {
  const {size, trailer, json, bytesRead} = await readManifest(path)
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch (err) {
    throw notJson(path, err)
  }
  const manifest = validateManifest(value, path)
  // A signed manifest's bytes as stored are what its signature covers: kept for checkArchiveSignature.
  return new ArchiveReader(path, size, trailer, manifest, bytesRead, options, trailer.signature === undefined ? undefined : json)
}

/** What `kubesnap list` shows of an archive: its manifest but the entries, and what they hold. */
export interface ArchiveSummary {
  /** Size of the archive file in bytes. */
  fileSize: number
  manifest: ManifestHead
  /** Entries of each type. */
  counts: Record<ManifestEntry['type'], number>
  /** Stored bytes of all volumes and dumps. */
  streamBytes: number
}

/**
 * Reads an archive's trailer and manifest as openArchive does, with the same
 * checks (the manifest's sha256 against the trailer, every field and entry
 * validated), but keeps no entry: it counts them as it reads them one at a
 * time, so listing an archive of 10,000 objects holds a few MiB, not ≈20.
 */
export async function openArchiveSummary(path: string): Promise<ArchiveSummary> {
  const {size, json} = await readManifest(path)
  try {
    const {head, entries} = splitManifestJson(json)
    const manifest = validateManifestHead(head, path)
    if (entries === undefined) throw corruptManifest(path, 'entries is not a list')
    const counts = {object: 0, crd: 0, volume: 0, dump: 0}
    let streamBytes = 0
    const checker = new EntryChecker(path, manifest.encrypted)
    let i = 0
    for (const value of entries) {
      const entry = checker.check(value, i++)
      counts[entry.type]++
      if (isStreamEntry(entry)) streamBytes += entry.size
    }
    return {fileSize: size, manifest, counts, streamBytes}
  } catch (err) {
    throw err instanceof SyntaxError ? notJson(path, err) : err
  }
}

/** The ArchiveError for a manifest that is not JSON. */
function notJson(path: string, cause: unknown): ArchiveError {
  return new ArchiveError('corrupt manifest', `The manifest of ${path} is not valid JSON; the archive is damaged.`, path, MANIFEST_MEMBER, {cause})
}

/** Reads an archive's trailer and the manifest's bytes it points to, checked against the trailer's sha256. */
async function readManifest(path: string): Promise<{size: number; trailer: Trailer; json: Buffer; bytesRead: number}> {
  // A file, or an s3:// object read with ranged GETs (store.ts).
  const fh = await openSource(path)
  try {
    const counter = {bytesRead: 0}
    const {size} = fh
    const tail = size >= TRAILER_SPAN ? await readAt(fh, size - TRAILER_SPAN, TRAILER_SPAN, counter) : Buffer.alloc(0)
    const parsed = parseTrailer(tail)
    if ('reason' in parsed) throw await trailerError(fh, path, size, parsed, counter)
    const {trailer} = parsed
    if (trailer.manifestOffset + trailer.manifestSize > size - TRAILER_SPAN) {
      throw new ArchiveError('corrupt trailer', `The trailer of ${path} points past the end of the file; the archive is damaged.`, path, TRAILER_MEMBER)
    }
    const json = await readAt(fh, trailer.manifestOffset, trailer.manifestSize, counter)
    if (sha256(json) !== trailer.manifestSha256) {
      throw new ArchiveError('sha256 mismatch', `The manifest of ${path} does not match the sha256 in its trailer; the archive is damaged.`, path, MANIFEST_MEMBER)
    }
    return {size, trailer, json, bytesRead: counter.bytesRead}
  } finally {
    await fh.close()
  }
}

/** An opened archive: its manifest, and readers for its entries. */
export class ArchiveReader {
  readonly path: string
  /** Size of the archive file in bytes. */
  readonly fileSize: number
  readonly trailer: Trailer
  readonly manifest: Manifest
  /** Bytes openArchive read from the file (trailer and manifest only). */
  readonly bytesRead: number
  /** When the trailer holds a signature: the manifest's bytes as stored (checked against the trailer's sha256). */
  readonly signedManifest?: Buffer
  readonly #options: OpenOptions

  /** Use openArchive(). */
  constructor(path: string, fileSize: number, trailer: Trailer, manifest: Manifest, bytesRead: number, options: OpenOptions, signedManifest?: Buffer) {
    this.path = path
    this.fileSize = fileSize
    this.trailer = trailer
    this.manifest = manifest
    this.bytesRead = bytesRead
    this.signedManifest = signedManifest
    this.#options = options
  }

  /**
   * Streams the stored bytes of one object entry or one stream part, read by
   * offset. The stream errors at its end (ArchiveError 'sha256 mismatch') if the
   * bytes do not match the manifest.
   */
  readEntry(member: ObjectEntry | StreamPart): Readable {
    return this.#checked(this.#rawMember(member), member.path, member.size, member.sha256)
  }

  /** Reads one object's content (decrypted when the archive is encrypted), checked against its sha256. */
  async readObject(entry: ObjectEntry): Promise<Buffer> {
    // A plain archive file: one positional read and one hash, not a stream pipeline per object
    // (restore reads 10,000 objects twice; the streams, their AbortSignals and Blobs cost more than the reads).
    if (!this.manifest.encrypted && !isS3Url(this.path)) return this.#readWhole(entry)
    const stored = this.readEntry(entry)
    if (!this.manifest.encrypted) return buffer(stored)
    const out = new PassThrough()
    pipeline(stored, this.#decrypt(), out, (err) => err && out.destroy(err))
    return buffer(out)
  }

  /**
   * Streams a volume or dump as it was given to the writer: parts concatenated,
   * (decrypted,) decompressed. Errors at the end if the stored bytes do not
   * match their sha256 or the result does not match rawSize/rawSha256. Reads
   * one part at a time, with bounded memory.
   */
  readStream(entry: StreamEntry): Readable {
    const parts = entry.parts
    const archive = this
    const stored = Readable.from(
      (async function* () {
        for (const part of parts) yield* archive.readEntry(part)
      })(),
      {objectMode: false},
    )
    // Each part is checked against its own sha256 (readEntry); with the manifest
    // itself checked, matching parts make a matching entry: no second pass here.
    return this.decodeStream(entry, stored)
  }

  /**
   * Decodes a stream entry's stored bytes (its parts concatenated) read by the
   * caller, as readStream does its own: decrypted, decompressed, and an error
   * at the end if the result does not match rawSize/rawSha256. The stored
   * bytes are the caller's to check (verifyArchive hashes them as it reads).
   */
  decodeStream(entry: StreamEntry, stored: Readable): Readable {
    // Errors name the stream's directory (`volumes/data/`), the closest thing it has to a member path.
    const where = entry.parts[0]?.path.slice(0, entry.parts[0].path.lastIndexOf('/') + 1) ?? entry.name
    const stages: (NodeJS.ReadableStream | NodeJS.ReadWriteStream)[] = [stored]
    if (this.manifest.encrypted) stages.push(this.#decrypt())
    // zlib's default 16 KiB output makes a trip to the thread pool and a chunk per 16 KiB: reading 1 GiB took about 6.3 s of CPU instead of 2.8.
    if (entry.compression === 'gzip') stages.push(createGunzip({chunkSize: 256 * 1024}))
    stages.push(new HashCheck(this.path, where, entry.rawSize, entry.rawSha256, 'raw'))
    const out = new PassThrough()
    pipeline([...stages, out], (err) => err && out.destroy(err))
    return out
  }

  /**
   * Opens the sealed fields of the manifest's stream entries (a dump's command
   * lines in an encrypted archive, see sealed.ts) with this reader's identities,
   * so `extra` reads as in a plain archive. Does nothing without identities or
   * sealed fields; throws an ArchiveError when a sealed field is damaged.
   */
  async unseal(): Promise<void> {
    if (!this.manifest.encrypted || !this.#options.decrypt) return
    const decrypt = decryptWith(this.#options.decrypt)
    const entries = this.manifest.entries
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]
      if (isStreamEntry(entry) && entry.extra?.sealed !== undefined) entries[i] = await unsealEntry(entry, decrypt, this.path)
    }
  }

  #rawMember(member: {offset: number; size: number; path: string}): Readable {
    this.#checkPlace(member)
    // A range's `end` is inclusive and cannot express an empty one.
    if (member.size === 0) return Readable.from([])
    return rangeStream(this.path, member.offset, member.offset + member.size - 1)
  }

  /** Throws when the manifest places a member past the entries (into the manifest or the trailer). */
  #checkPlace(member: {offset: number; size: number; path: string}): void {
    if (member.offset + member.size > this.trailer.manifestOffset) {
      throw new ArchiveError('corrupt manifest', `The manifest of ${this.path} places ${member.path} past the entries; the archive is damaged.`, this.path, member.path)
    }
  }

  /**
   * One member's stored bytes from the archive file, checked as readEntry
   * checks them. Read synchronously (open, one positional read, close): an
   * object is a few KiB, mostly in the page cache since verify read the whole
   * file, and each asynchronous step costs a trip through the thread pool. For
   * the 10,000 objects of the bench, read 8 at a time, async open/read/close
   * took 370–510 ms of CPU per pass, and this 60–90 ms (restore reads every
   * object twice: its checks, then its creates).
   */
  #readWhole(member: ObjectEntry): Buffer {
    this.#checkPlace(member)
    const bytes = Buffer.allocUnsafe(member.size)
    let done = 0
    const fd = openSync(this.path, 'r')
    try {
      while (done < bytes.length) {
        const bytesRead = readSync(fd, bytes, done, bytes.length - done, member.offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
    } finally {
      closeSync(fd)
    }
    const problem = digestProblem(this.path, member.path, done, createHash('sha256').update(bytes.subarray(0, done)).digest('hex'), member.size, member.sha256, 'stored')
    if (problem) throw problem
    return bytes
  }

  #checked(stream: Readable, path: string, size: number, sha256: string): Readable {
    const out = new PassThrough()
    pipeline(stream, new HashCheck(this.path, path, size, sha256, 'stored'), out, (err) => err && out.destroy(err))
    return out
  }

  #decrypt(): Transform {
    if (!this.#options.decrypt) {
      throw new ArchiveError('encrypted', `${this.path} is encrypted; give the identity that can decrypt it.`, this.path)
    }
    return this.#options.decrypt()
  }
}

/** A pass-through that errors at the end if what passed does not have the expected size and sha256. */
class HashCheck extends Transform {
  readonly #hash = createHash('sha256')
  #size = 0

  constructor(
    readonly archivePath: string,
    readonly what: string,
    readonly expectedSize: number,
    readonly expectedSha256: string,
    readonly stage: 'stored' | 'raw',
  ) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    callback(digestProblem(this.archivePath, this.what, this.#size, this.#hash.digest('hex'), this.expectedSize, this.expectedSha256, this.stage))
  }
}

/** The ArchiveError for bytes whose size or sha256 is not the expected one; undefined when both match. */
function digestProblem(archivePath: string, what: string, size: number, sha256: string, expectedSize: number, expectedSha256: string, stage: 'stored' | 'raw'): ArchiveError | undefined {
  const bytes = stage === 'raw' ? 'decompressed bytes' : 'bytes'
  if (size !== expectedSize) {
    return new ArchiveError('size mismatch', `${what} in ${archivePath} has ${size} ${bytes}, not ${expectedSize}; the archive is damaged.`, archivePath, what)
  }
  if (sha256 !== expectedSha256) {
    return new ArchiveError('sha256 mismatch', `${what} in ${archivePath} does not match its sha256 (${bytes}); the archive is damaged.`, archivePath, what)
  }
  return undefined
}

/** Turns a trailer that does not parse into the right error: not an archive, truncated, unsupported, or damaged. */
async function trailerError(fh: ArchiveSource, path: string, size: number, parsed: {reason: string; trailerPresent: boolean; versionSeen?: unknown}, counter: {bytesRead: number}): Promise<ArchiveError> {
  if (parsed.reason === 'unsupported format version') {
    return new ArchiveError(
      'unsupported format version',
      `${path} uses archive format version ${String(parsed.versionSeen)}, but this kubesnap reads only version 1; use a matching kubesnap release.`,
      path,
    )
  }
  // The first member tells a kubesnap archive whose end is missing from any other file.
  const head = size >= BLOCK ? await readAt(fh, 0, BLOCK, counter) : Buffer.alloc(0)
  const first = head.length === BLOCK ? decodeHeader(head) : undefined
  if (!first || first.zero || !first.valid || first.path !== FORMAT_MEMBER) {
    return new ArchiveError('not a kubesnap archive', `${path} is not a kubesnap archive (it does not start with ${FORMAT_MEMBER}).`, path)
  }
  // A trailer member that is there but unreadable is damage; no trailer member at all means the end is missing.
  if (parsed.trailerPresent) {
    return new ArchiveError('corrupt trailer', `${path} has a damaged trailer (${parsed.reason}); run kubesnap verify on it.`, path, TRAILER_MEMBER)
  }
  return new ArchiveError('truncated', `${path} is truncated (${parsed.reason}): the snapshot did not finish or the copy is incomplete; use another archive.`, path, TRAILER_MEMBER)
}

/** Reads exactly `length` bytes at `position`, counting them. */
async function readAt(fh: ArchiveSource, position: number, length: number, counter: {bytesRead: number}): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const {bytesRead} = await fh.read(buf, done, length - done, position + done, 'exact')
    if (bytesRead === 0) break
    done += bytesRead
  }
  counter.bytesRead += done
  return buf.subarray(0, done)
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
