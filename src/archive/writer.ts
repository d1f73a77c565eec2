/**
 * The archive writer: one snapshot into one `.kubesnap.tar` file, written under a
 * temporary `.partial` name, fsynced and renamed only when complete.
 *
 * Objects are small and written whole. Streams (volume tars, dumps) have no
 * known length: they go through compress → (encrypt) → hash → positional writes
 * into parts of at most `partSize` bytes, each part's header put down as a
 * placeholder and rewritten with the real size once the part is full. Memory
 * stays at a few stream chunks whatever the volume size, and nothing is copied
 * to a temporary file.
 *
 * To an `s3://BUCKET/PREFIX` location the same bytes go, in order, into one
 * multipart upload (s3.ts) that is completed last. An upload cannot seek back,
 * but the upload part that holds a volume part's placeholder header waits in
 * memory for the real one (upload-parts.ts) while the volume streams past it:
 * the archive is the same, format version 1, with the same part sizes.
 */
import {createHash, type Hash} from 'node:crypto'
import {open, rename, stat, unlink, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable, Transform, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {BLOCK, encodeMemberHeader, encodeTrailer, END_OF_ARCHIVE, MAX_USTAR_SIZE, paddingFor} from './layout.js'
import {acquireLock, removeLeftoverPartials, type DirLock} from './lock.js'
import {ParallelGzip} from './parallel-gzip.js'
import {sealEntry, transformBuffer} from './sealed.js'
import {
  ARCHIVE_FORMAT,
  FORMAT_MEMBER,
  FORMAT_VERSION,
  MANIFEST_MEMBER,
  type FormatDocument,
  type Manifest,
  type ManifestEntry,
  type ObjectEntry,
  type SkippedItem,
  type StreamCompression,
  type StreamEntry,
  type StreamPart,
} from './manifest.js'
import {makeDirectory} from './disk.js'
import {checkNamespace, crdMemberPath, formatArchiveName, listArchiveFiles, nextNumber, objectMemberPath, partialName, partMemberPath, partSuffix} from './naming.js'
import {isS3Url, joinLocation, s3} from './store.js'
import type {UploadOutput} from './s3.js'
import type {EntrySink, ObjectMeta, StreamMeta, StreamOptions} from './sink.js'

export type {EntrySink, ObjectMeta, StreamMeta, StreamOptions} from './sink.js'

/** Default part size of streams: 1 GiB. */
export const DEFAULT_PART_SIZE = 1024 ** 3
/** Padding source: a member is padded with fewer than 512 zero bytes. */
const ZEROS = Buffer.alloc(BLOCK)
/** Buffered small members are written once they reach this size. */
const FLUSH_BYTES = 256 * 1024
/** Room for the buffered members plus one more member of up to this size. */
const BUFFER_BYTES = 2 * FLUSH_BYTES
/** Default gzip level: 1, because throughput matters more than ratio for volume data. */
export const DEFAULT_GZIP_LEVEL = 1

/**
 * The seam for per-entry encryption (age: crypto.ts): `encrypt()` returns a fresh
 * transform applied to each entry's content after compression and before hashing,
 * and `suffix` (e.g. `.age`) is appended to member paths.
 */
export interface EntryCipher {
  suffix: string
  encrypt(): Transform
  /**
   * Optional: encrypts one whole object without setting up a stream, as
   * encrypt() would. Saves ~0.1 ms an object (1 s per 10,000) for age.
   */
  encryptBuffer?(data: Buffer): Promise<Buffer>
}

export interface ArchiveWriterOptions {
  /** Output directory, created (mode 0700) if missing; or an `s3://BUCKET/PREFIX` location. */
  dir: string
  namespace: string
  /** Snapshot number; defaults to the highest present for the namespace plus one. */
  number?: number
  kubesnapVersion: string
  cluster: {server: string; context: string}
  /** Largest part of a stream, in bytes (default 1 GiB; small in tests). */
  partSize?: number
  /** Size of the first S3 multipart parts (default s3.ts FIRST_PART_SIZE, 8 MiB). */
  uploadPartSize?: number
  /** gzip level for streams (default 1). */
  gzipLevel?: number
  /**
   * How streams are stored when addStream does not say (default gzip): `none`
   * stores volume tars as they came, without gzip and with one sha256 pass
   * instead of two, for a bigger archive.
   */
  compression?: StreamCompression
  cipher?: EntryCipher
  /** The public recipients `cipher` encrypts to, recorded in the manifest so a reader knows which key it needs. */
  recipients?: string[]
  /** Signs the manifest (sign.ts): the signature goes into the trailer, the signer's public key into the manifest. */
  signer?: ManifestSigning
  /** Clock, for tests. */
  now?: () => Date
}

/** The seam for signing: the signer's public key (`ssh-ed25519 AAAA…`) and a function from manifest bytes to an SSHSIG blob. */
export interface ManifestSigning {
  publicKey: string
  sign(manifest: Buffer): Buffer
}

/** What finish() adds to the manifest. */
export interface FinishFields {
  skipped?: SkippedItem[]
  warnings?: string[]
}

/** The archive as finished. */
export interface FinishResult {
  path: string
  manifest: Manifest
}

/**
 * Starts a snapshot archive in a directory or an s3:// location: takes the
 * number (under the directory lock, or with a claim in the bucket), opens the
 * output under a name that shows no archive until finish() (a `.partial` file
 * of mode 0600, or a multipart upload) and writes format.json. Throws
 * LockedError when another run holds the directory.
 */
export async function createArchiveWriter(options: ArchiveWriterOptions): Promise<ArchiveWriter> {
  const partSize = options.partSize ?? DEFAULT_PART_SIZE
  if (!Number.isSafeInteger(partSize) || partSize < 1 || partSize > MAX_USTAR_SIZE) {
    throw new RangeError(`partSize must be an integer from 1 to ${MAX_USTAR_SIZE}, not ${partSize}.`)
  }
  checkNamespace(options.namespace)
  const now = options.now ?? (() => new Date())
  const place = isS3Url(options.dir) ? await bucketPlace(options) : await directoryPlace(options)
  let writer: ArchiveWriter | undefined
  try {
    const startedAt = now()
    const {output, finalPath, partialPath} = await place.open(formatArchiveName({namespace: options.namespace, number: place.number, time: startedAt}))
    writer = new ArchiveWriter({options, partSize, now, output, number: place.number, startedAt, finalPath, partialPath, warnings: place.warnings})
    await writer.writeFormatDocument()
    return writer
  } catch (err) {
    // Once the writer exists, its abort removes what was started (the .partial file, the upload) and frees the place.
    if (writer) await writer.abort()
    else await place.release()
    throw err
  }
}

/** Where a new archive goes, its number taken: held (the directory lock, a claim) until its output takes over or release(). */
interface ArchivePlace {
  number: number
  warnings: string[]
  /** Opens the output under `file`; from then on the output's commit() or abort() frees the place. */
  open(file: string): Promise<{output: ArchiveOutput; finalPath: string; partialPath: string}>
  release(): Promise<void>
}

/** A directory: created 0700 if missing, locked, cleared of dead runs' `.partial` files, numbered from its listing. */
async function directoryPlace(options: ArchiveWriterOptions): Promise<ArchivePlace> {
  const {dir} = options
  // Archives hold Secrets: a directory we create is private to the user.
  await makeDirectory(dir, 0o700)
  const lock = await acquireLock(dir)
  try {
    const warnings: string[] = []
    if (lock.tookOverFrom) {
      warnings.push(`Took over the lock of kubesnap pid ${lock.tookOverFrom.pid} (started ${lock.tookOverFrom.startedAt}), which is no longer running.`)
    }
    for (const file of await removeLeftoverPartials(dir)) warnings.push(`Removed ${file}, left by an interrupted run.`)
    const number = await freeNumber(options)
    return {
      number,
      warnings,
      release: () => lock.release(),
      open: async (file) => {
        const finalPath = join(dir, file)
        const partialPath = join(dir, partialName(file))
        // Mode 0600 from the first byte: the file never exists with wider permissions.
        const fh = await open(partialPath, 'wx', 0o600)
        const output = new FileOutput(fh, lock, partialPath, finalPath, dir)
        // The umask can only have narrowed it; make it exact.
        await fh.chmod(0o600).catch(async (err: unknown) => {
          await output.abort()
          throw err
        })
        return {output, finalPath, partialPath}
      },
    }
  } catch (err) {
    await lock.release()
    throw err
  }
}

/**
 * An s3:// location: the bucket and credentials checked first, the next number
 * from a listing claimed with a conditional PUT (two runs cannot take the same
 * one), and a multipart upload under the final key, which shows no object
 * until finish() completes it.
 */
async function bucketPlace(options: ArchiveWriterOptions): Promise<ArchivePlace> {
  const {checkBucket, claimNumber, removeClaim, UploadOutput} = await s3()
  await checkBucket(options.dir)
  const first = await freeNumber(options)
  const number = await claimNumber(options.dir, options.namespace, first, `kubesnap pid ${process.pid}`)
  if (options.number !== undefined && number !== options.number) {
    throw new Error(`Snapshot ${options.number} of namespace ${options.namespace} is being written by another run to ${options.dir}; choose another number.`)
  }
  return {
    number,
    warnings: [],
    release: () => removeClaim(options.dir, options.namespace, number).catch(() => {}),
    open: async (file) => {
      const finalPath = joinLocation(options.dir, file)
      return {output: new S3ArchiveOutput(new UploadOutput(finalPath, options.uploadPartSize), options.dir, options.namespace, number), finalPath, partialPath: finalPath}
    },
  }
}

/** The number a new archive takes: the one asked for, else the namespace's next; refuses one `dir` already has. */
async function freeNumber(options: ArchiveWriterOptions): Promise<number> {
  const existing = await listArchiveFiles(options.dir, options.namespace)
  const number = options.number ?? nextNumber(existing, options.namespace)
  if (existing.some((a) => a.number === number)) {
    throw new Error(`Snapshot ${number} of namespace ${options.namespace} already exists in ${options.dir}; choose another number.`)
  }
  return number
}

/** An archive being copied in: bytes in order, then commit() or abort(). */
export interface CopyOutput {
  /** Where the archive appears on commit(). */
  readonly path: string
  /** Appends the next bytes. */
  append(data: Buffer): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

/**
 * Opens a place for an existing archive named `file` in a directory or s3://
 * location: a `.partial` file under the directory lock, or a multipart upload
 * under the final key, as the writer does. Refuses a destination that already
 * holds that namespace's snapshot number.
 */
export async function createCopyOutput(dir: string, file: string, archive: {namespace: string; number: number}): Promise<CopyOutput> {
  const refuseTaken = async () => {
    if ((await listArchiveFiles(dir, archive.namespace)).some((a) => a.number === archive.number)) {
      throw new Error(`${dir} already holds snapshot ${archive.number} of namespace ${archive.namespace}; nothing was copied.`)
    }
  }
  const finalPath = joinLocation(dir, file)
  let output: ArchiveOutput
  if (isS3Url(dir)) {
    const {checkBucket, UploadOutput} = await s3()
    await checkBucket(dir)
    await refuseTaken()
    output = new S3ArchiveOutput(new UploadOutput(finalPath), dir, archive.namespace, archive.number, false)
  } else {
    await makeDirectory(dir, 0o700)
    const lock = await acquireLock(dir)
    try {
      await refuseTaken()
      const partialPath = join(dir, partialName(file))
      output = new FileOutput(await open(partialPath, 'wx', 0o600), lock, partialPath, finalPath, dir)
    } catch (err) {
      await lock.release()
      throw err
    }
  }
  let position = 0
  return {
    path: finalPath,
    append: async (data) => {
      await output.write(data, position)
      position += data.length
    },
    commit: () => output.commit(),
    abort: () => output.abort(),
  }
}

/**
 * Where the writer's bytes go: a `.partial` file written anywhere, or an
 * upload written in order where only held bytes are written twice. commit()
 * makes the archive appear under its final name; abort() leaves nothing under it.
 */
interface ArchiveOutput {
  /** Says that bytes [position, position + length), about to be written, will be written once more (a part's header, back-patched). */
  hold(position: number, length: number): void
  /** Writes `data` at `position`: the end, or held bytes; done with `data` once it resolves (the caller may reuse it). */
  write(data: Buffer, position: number): Promise<void>
  /** Cuts the output back to `length` bytes; an upload can only "cut" at its end. */
  truncate(length: number): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

/** A `.partial` file under the directory lock, fsynced and renamed on commit. */
class FileOutput implements ArchiveOutput {

  constructor(
    readonly fh: FileHandle,
    readonly lock: DirLock,
    readonly partialPath: string,
    readonly finalPath: string,
    readonly dir: string,
  ) {}

  hold(): void {
    // A file is rewritten anywhere.
  }

  write(data: Buffer, position: number): Promise<void> {
    return writeAt(this.fh, data, position)
  }

  truncate(length: number): Promise<void> {
    return this.fh.truncate(length)
  }

  async commit(): Promise<void> {
    await this.fh.sync()
    await this.fh.close()
    // Checked under the lock: rename would silently replace an existing archive.
    if (await exists(this.finalPath)) throw new Error(`${this.finalPath} appeared while the snapshot was written; it was left alone and ${this.partialPath} kept.`)
    await rename(this.partialPath, this.finalPath)
    await syncDir(this.dir)
    await this.lock.release()
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {})
    await unlink(this.partialPath).catch(() => {})
    await this.lock.release()
  }
}

/** A multipart upload under the final key (s3.ts), plus the claim of the snapshot's number. */
class S3ArchiveOutput implements ArchiveOutput {
  /** Set once bytes that the archive must not keep reached the upload: finish() then refuses. */
  #spoiled?: string

  constructor(
    readonly upload: Pick<UploadOutput, 'written' | 'hold' | 'write' | 'complete' | 'abort'>,
    readonly dir: string,
    readonly namespace: string,
    readonly number: number,
    /** Whether this run claimed the number (a copy keeps the source's number and claims none). */
    readonly claimed = true,
  ) {}

  hold(position: number, length: number): void {
    this.upload.hold(position, length)
  }

  write(data: Buffer, position: number): Promise<void> {
    return this.upload.write(data, position)
  }

  async truncate(length: number): Promise<void> {
    if (length >= this.upload.written) return
    // Parts of a failed stream are already on their way to the server: the archive would list members its manifest does not.
    this.#spoiled = `an entry failed after ${this.upload.written - length} of its bytes were uploaded, and an upload cannot be cut back`
    throw new Error(`${this.#spoiled}; the snapshot to ${this.dir} cannot be completed, run it again`)
  }

  async commit(): Promise<void> {
    if (this.#spoiled) throw new Error(`The snapshot to ${this.dir} cannot be completed: ${this.#spoiled}; run it again.`)
    await this.upload.complete()
    // The archive now holds the number; a listing finds it, so the claim can go.
    await this.#dropClaim()
  }

  async abort(): Promise<void> {
    await this.upload.abort()
    await this.#dropClaim()
  }

  async #dropClaim(): Promise<void> {
    if (!this.claimed) return
    const {removeClaim} = await s3()
    await removeClaim(this.dir, this.namespace, this.number).catch(() => {})
  }
}

interface WriterState {
  options: ArchiveWriterOptions
  partSize: number
  now: () => Date
  output: ArchiveOutput
  number: number
  startedAt: Date
  finalPath: string
  partialPath: string
  warnings: string[]
}

/**
 * Writes one archive. Calls are serialized: an addObject issued while a stream
 * is being written waits for it. A failed addObject/addStream leaves no trace in
 * the file, so the caller may record the failure and go on.
 */
export class ArchiveWriter implements EntrySink {
  /** The final path the archive gets on finish(). */
  readonly path: string
  /** The temporary path it has until then. */
  readonly partialPath: string
  readonly namespace: string
  readonly number: number
  readonly startedAt: Date

  readonly #s: WriterState
  readonly #entries: ManifestEntry[] = []
  readonly #paths = new Set<string>()
  /** Logical end of the archive: flushed bytes plus the small-member buffer. */
  #position = 0
  /** Bytes on disk; members after it wait in #buffer. */
  #flushed = 0
  /**
   * Small members are encoded straight into this one reused buffer: 10,000
   * objects make no 10,000 short-lived Buffers (off-heap memory that only a
   * garbage collection returns) and ~40 writes instead of 10,000.
   */
  #buffer = Buffer.allocUnsafe(BUFFER_BYTES)
  #pendingBytes = 0
  #queue: Promise<unknown> = Promise.resolve()
  #state: 'open' | 'finished' | 'aborted' = 'open'
  /** The abort under way or done, for every caller of abort() to wait on. */
  #aborting?: Promise<void>

  /** Use createArchiveWriter(). */
  constructor(state: WriterState) {
    this.#s = state
    this.path = state.finalPath
    this.partialPath = state.partialPath
    this.namespace = state.options.namespace
    this.number = state.number
    this.startedAt = state.startedAt
  }

  /** Whether the writer still takes entries, was finished, or was aborted (also by a signal). */
  get state(): 'open' | 'finished' | 'aborted' {
    return this.#state
  }

  /** Entries written so far. */
  get entries(): readonly ManifestEntry[] {
    return this.#entries
  }

  /** Writes the first member, format.json. Internal: called once by createArchiveWriter. */
  async writeFormatDocument(): Promise<void> {
    const doc: FormatDocument = {
      format: ARCHIVE_FORMAT,
      formatVersion: FORMAT_VERSION,
      kubesnapVersion: this.#s.options.kubesnapVersion,
      namespace: this.namespace,
      number: this.number,
      startedAt: this.startedAt.toISOString(),
    }
    await this.#writeMember(FORMAT_MEMBER, Buffer.from(JSON.stringify(doc) + '\n'))
    // On disk at once: even a file cut short right after names itself.
    await this.#flush()
  }

  /** Adds one object (the raw JSON the server returned) as one member; returns its manifest entry. */
  addObject(meta: ObjectMeta, content: Buffer | string): Promise<ObjectEntry> {
    return this.#exclusive(async () => {
      const type = meta.type ?? 'object'
      const base = type === 'crd' ? crdMemberPath(meta.name) : objectMemberPath(meta)
      const cipher = this.#s.options.cipher
      const path = base + (cipher?.suffix ?? '')
      this.#reserve(path)
      const start = this.#position
      try {
        const stored = cipher ? await encryptObject(cipher, Buffer.from(content)) : content
        const {offset, size, sha256: digest} = await this.#writeMember(path, stored)
        const entry: ObjectEntry = {
          type,
          kind: meta.kind,
          group: meta.group,
          version: meta.version,
          resource: meta.resource,
          name: meta.name,
          path,
          offset,
          size,
          sha256: digest,
        }
        this.#entries.push(entry)
        return entry
      } catch (err) {
        await this.#rollback(start, [path])
        throw err
      }
    })
  }

  /**
   * Streams a volume or dump of unknown length into parts; returns its manifest
   * entry. Backpressure reaches the input: it is read only as fast as the disk
   * takes it. Pass a function for `input` to open the source only when its turn
   * comes (calls are serialized, and a source opened early but not read, such
   * as an exec stream without backpressure, would pile up in memory).
   * If the input fails or `options.confirm` throws, the entry is cut off the
   * file and the error rethrown; the writer stays usable.
   */
  addStream(meta: StreamMeta, input: Readable | (() => Readable | Promise<Readable>), options: StreamOptions = {}): Promise<StreamEntry> {
    return this.#exclusive(async () => {
      const compression = options.compress ?? this.#s.options.compression ?? 'gzip'
      const cipher = this.#s.options.cipher
      const suffix = partSuffix(meta.type, compression, false) + (cipher?.suffix ?? '')
      const pathFor = (index: number) => partMemberPath(meta.type, meta.name, index, suffix)
      // Reserve the stream's directory: `cat volumes/X/part-*` must never mix two streams.
      const dir = pathFor(0).slice(0, pathFor(0).lastIndexOf('/') + 1)
      this.#reserve(dir)
      // Parts are written in place at the file's end: the buffer goes first.
      await this.#flush()
      const start = this.#position
      const sink = new PartSink(this.#s.output, start, this.#s.partSize, pathFor, this.#s.now())
      const gzip = compression === 'gzip' ? new ParallelGzip({level: this.#s.options.gzipLevel ?? DEFAULT_GZIP_LEVEL}) : undefined
      // The raw bytes' count and hash: gzip takes them block by block (no stage of
      // its own per chunk); stored bytes are the input itself when nothing
      // transforms them: hashed once, not twice.
      const tap = !gzip && cipher !== undefined ? new HashingTap() : undefined
      const raw: {size: number; sha256(): string} | undefined = gzip ?? tap
      let entry: StreamEntry
      try {
        const source = typeof input === 'function' ? await input() : input
        const stages: (NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream)[] = tap ? [source, tap] : [source]
        if (gzip) stages.push(gzip)
        if (cipher) stages.push(cipher.encrypt())
        stages.push(sink)
        await pipeline(stages)
        entry = {
          type: meta.type,
          name: meta.name,
          ...(meta.kind === undefined ? {} : {kind: meta.kind}),
          ...(meta.group === undefined ? {} : {group: meta.group}),
          ...(meta.version === undefined ? {} : {version: meta.version}),
          ...(meta.resource === undefined ? {} : {resource: meta.resource}),
          compression,
          parts: sink.parts,
          offset: sink.parts[0].offset,
          size: sink.size,
          sha256: sink.sha256(),
          rawSize: raw ? raw.size : sink.size,
          rawSha256: raw ? raw.sha256() : sink.sha256(),
          ...(meta.extra === undefined ? {} : {extra: meta.extra}),
        }
        await options.confirm?.(entry)
      } catch (err) {
        // A positional write may still be in flight; let it land before cutting the file back.
        await sink.idle()
        await this.#rollback(start, [dir])
        throw new Error(`Writing ${meta.type} ${meta.name} into the archive failed: ${(err as Error).message}`, {cause: err})
      }
      this.#position = sink.position
      this.#flushed = sink.position
      this.#entries.push(entry)
      return entry
    })
  }

  /**
   * Completes the archive: writes the manifest, the trailer and the end blocks,
   * fsyncs, renames the `.partial` to its final name, fsyncs the directory and
   * releases the lock.
   */
  finish(fields: FinishFields = {}): Promise<FinishResult> {
    return this.#exclusive(async () => {
      const cipher = this.#s.options.cipher
      // Command lines and stderr may carry credentials: an encrypted archive keeps them out of the plain manifest.
      const entries = cipher ? await Promise.all(this.#entries.map((e) => sealEntry(e, (data) => encryptObject(cipher, data)))) : this.#entries
      const manifest: Manifest = {
        format: ARCHIVE_FORMAT,
        formatVersion: FORMAT_VERSION,
        kubesnapVersion: this.#s.options.kubesnapVersion,
        cluster: {server: this.#s.options.cluster.server, context: this.#s.options.cluster.context},
        namespace: this.namespace,
        number: this.number,
        startedAt: this.startedAt.toISOString(),
        finishedAt: this.#s.now().toISOString(),
        encrypted: this.#s.options.cipher !== undefined,
        ...(this.#s.options.cipher && this.#s.options.recipients ? {recipients: this.#s.options.recipients} : {}),
        ...(this.#s.options.signer ? {signedBy: this.#s.options.signer.publicKey} : {}),
        entries,
        skipped: fields.skipped ?? [],
        warnings: [...this.#s.warnings, ...(fields.warnings ?? [])],
      }
      const json = Buffer.from(JSON.stringify(manifest, null, 2) + '\n')
      const {offset} = await this.#writeMember(MANIFEST_MEMBER, json)
      await this.#flush()
      // The signature covers the manifest's bytes as stored, so ssh-keygen -Y verify checks the very member tar extracts.
      const signature = this.#s.options.signer?.sign(json).toString('base64')
      const trailer = encodeTrailer({manifestOffset: offset, manifestSize: json.length, manifestSha256: sha256(json), ...(signature ? {signature} : {})}, this.#s.now())
      const tail = Buffer.concat([trailer, END_OF_ARCHIVE])
      await this.#s.output.write(tail, this.#position)
      this.#position += tail.length
      this.#flushed = this.#position
      await this.#s.output.truncate(this.#position)
      // The file is fsynced and renamed, or the upload completed: only now does the archive exist under its name.
      await this.#s.output.commit()
      this.#state = 'finished'
      return {path: this.path, manifest}
    })
  }

  /**
   * Discards the archive: closes and removes the `.partial` file and releases
   * the lock. Safe to call twice or after finish; a second call while the
   * first is under way settles with it (a signal's abort and the run's own).
   */
  abort(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'aborted'
      this.#aborting = this.#s.output.abort()
    }
    return this.#aborting ?? Promise.resolve()
  }

  /** Runs one operation after the previous ones, refusing once the writer is closed. */
  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#state !== 'open') throw new Error(`The archive writer for ${this.path} is already ${this.#state}.`)
      return operation()
    })
    this.#queue = run.catch(() => {})
    return run
  }

  /** Refuses a member path (or a stream's directory) used twice: verify and restore find members by path. */
  #reserve(path: string): void {
    if (this.#paths.has(path)) throw new Error(`The archive already has ${path}; each object, volume and dump may be added once.`)
    this.#paths.add(path)
  }

  /** Writes a member with known content at the current position; returns the content's offset. */
  async #writeMember(path: string, content: Buffer | string): Promise<{offset: number; size: number; sha256: string}> {
    const size = typeof content === 'string' ? Buffer.byteLength(content, 'utf8') : content.length
    const header = encodeMemberHeader(path, size, this.#s.now())
    const total = header.length + size + paddingFor(size)
    const offset = this.#position + header.length
    if (this.#pendingBytes + total > this.#buffer.length) await this.#flush()
    if (total > this.#buffer.length) {
      // A member larger than the buffer (a rare big object, the manifest) goes straight to the file.
      const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content
      await this.#s.output.write(Buffer.concat([header, bytes, ZEROS.subarray(0, paddingFor(size))]), this.#position)
      this.#position += total
      this.#flushed = this.#position
      return {offset, size, sha256: sha256(bytes)}
    }
    const at = this.#pendingBytes
    header.copy(this.#buffer, at)
    const body = at + header.length
    if (typeof content === 'string') this.#buffer.write(content, body, 'utf8')
    else content.copy(this.#buffer, body)
    this.#buffer.fill(0, body + size, at + total)
    this.#pendingBytes += total
    this.#position += total
    const digest = sha256(this.#buffer.subarray(body, body + size))
    if (this.#pendingBytes >= FLUSH_BYTES) await this.#flush()
    return {offset, size, sha256: digest}
  }

  /** Writes the buffered small members to the file. */
  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return
    await this.#s.output.write(this.#buffer.subarray(0, this.#pendingBytes), this.#flushed)
    this.#flushed += this.#pendingBytes
    this.#pendingBytes = 0
  }

  /** Cuts the file back to `start` and frees the paths of a failed entry. */
  async #rollback(start: number, paths: string[]): Promise<void> {
    for (const p of paths) this.#paths.delete(p)
    if (start >= this.#flushed) {
      // The failed entry never reached the file: trim it off the buffer.
      this.#pendingBytes = start - this.#flushed
    } else {
      this.#pendingBytes = 0
      this.#flushed = start
      await this.#s.output.truncate(start)
    }
    this.#position = start
  }
}

/**
 * The Writable at the end of a stream entry's pipeline: splits stored bytes into
 * part members with positional writes. Each part gets a placeholder header when
 * it starts (held: an upload keeps it in memory) and its real header when it is
 * full or the stream ends.
 */
class PartSink extends Writable {
  readonly parts: StreamPart[] = []
  size = 0
  position: number
  readonly #out: ArchiveOutput
  readonly #partSize: number
  readonly #pathFor: (index: number) => string
  readonly #mtime: Date
  /**
   * The hash of all stored bytes, from the second part on: while the stream is
   * in its first part, that part's hash is the whole stream's, so the bytes of
   * most streams (parts are 1 GiB) are hashed once, not twice.
   */
  #whole?: Hash
  #digest?: string
  #current?: {path: string; headerOffset: number; headerLength: number; offset: number; size: number; hash: Hash}
  #inFlight: Promise<unknown> = Promise.resolve()

  constructor(out: ArchiveOutput, position: number, partSize: number, pathFor: (index: number) => string, mtime: Date) {
    super()
    this.#out = out
    this.position = position
    this.#partSize = partSize
    this.#pathFor = pathFor
    this.#mtime = mtime
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#track(this.#append(chunk)).then(() => callback(), callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    // An empty input still gets one (empty) part, so every stream entry has a member.
    const work = (async () => {
      if (!this.#current) await this.#startPart()
      await this.#endPart()
    })()
    this.#track(work).then(() => callback(), callback)
  }

  /** Resolves when no write is in flight (used before truncating after a failure). */
  async idle(): Promise<void> {
    await this.#inFlight.catch(() => {})
  }

  /** sha256 of all stored bytes (once the stream has ended). */
  sha256(): string {
    this.#digest ??= this.#whole!.digest('hex')
    return this.#digest
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight = work
    return work
  }

  async #append(chunk: Buffer): Promise<void> {
    let rest = chunk
    while (rest.length > 0) {
      if (this.#current && this.#current.size === this.#partSize) await this.#endPart()
      if (!this.#current) await this.#startPart()
      const part = this.#current!
      const piece = rest.subarray(0, this.#partSize - part.size)
      // Hash while the write is in flight: the two together are the throughput limit.
      const written = this.#out.write(piece, part.offset + part.size)
      part.hash.update(piece)
      this.#whole?.update(piece)
      await written
      part.size += piece.length
      this.size += piece.length
      rest = rest.subarray(piece.length)
    }
  }

  async #startPart(): Promise<void> {
    const path = this.#pathFor(this.parts.length)
    const placeholder = encodeMemberHeader(path, 0, this.#mtime)
    this.#out.hold(this.position, placeholder.length)
    await this.#out.write(placeholder, this.position)
    this.#current = {path, headerOffset: this.position, headerLength: placeholder.length, offset: this.position + placeholder.length, size: 0, hash: createHash('sha256')}
  }

  async #endPart(): Promise<void> {
    const part = this.#current!
    const header = encodeMemberHeader(part.path, part.size, this.#mtime)
    // Same path, so same header length: the rewrite cannot spill into the content.
    if (header.length !== part.headerLength) throw new Error(`header of ${part.path} changed length`)
    const padding = paddingFor(part.size)
    await this.#out.write(header, part.headerOffset)
    if (padding > 0) await this.#out.write(ZEROS.subarray(0, padding), part.offset + part.size)
    if (this.parts.length === 0) this.#whole = part.hash.copy()
    this.parts.push({path: part.path, offset: part.offset, size: part.size, sha256: part.hash.digest('hex')})
    this.position = part.offset + part.size + padding
    this.#current = undefined
  }
}

/** A pass-through that counts and hashes what flows through it (the raw input of a stream). */
class HashingTap extends Transform {
  size = 0
  readonly #hash = createHash('sha256')

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.#hash.update(chunk)
    this.size += chunk.length
    callback(null, chunk)
  }

  sha256(): string {
    return this.#hash.digest('hex')
  }
}

/** Writes a whole buffer at a file position (fs writes may be short). */
async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < data.length) {
    const {bytesWritten} = await fh.write(data, done, data.length - done, position + done)
    done += bytesWritten
  }
}

/** Encrypts one object's content, in one call when the cipher offers it. */
function encryptObject(cipher: EntryCipher, content: Buffer): Promise<Buffer> {
  return cipher.encryptBuffer ? cipher.encryptBuffer(content) : transformBuffer(content, cipher.encrypt())
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** fsyncs a directory so a rename in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
