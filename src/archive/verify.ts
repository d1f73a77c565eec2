/**
 * Archive verification: reads the whole file once, front to back, as a tar
 * stream (header checksums included), hashes every member, and compares the
 * members in file order with what the manifest says. Restore runs this before
 * its first write to the cluster.
 */
import {createHash} from 'node:crypto'
import {ArchiveError, type ArchiveProblem} from './errors.js'
import {BLOCK, decodeHeader, paddingFor, parseTrailerBody, paxPath, type Trailer} from './layout.js'
import {
  entryMembers,
  FORMAT_MEMBER,
  MANIFEST_MEMBER,
  TRAILER_MEMBER,
  validateManifest,
  type FormatDocument,
  type Manifest,
} from './manifest.js'
import {openArchive} from './reader.js'
import {openSource, type ArchiveSource} from './store.js'

/** The outcome of verifyArchive: ok, or the first bad member in file order and what is wrong with it. */
export type VerifyResult =
  | {ok: true; members: number; bytes: number}
  | {ok: false; entry: string; problem: ArchiveProblem; detail: string}

/** One tar member the archive must contain, in file order. */
interface ExpectedMember {
  path: string
  offset: number
  /** Absent for format.json, whose size the manifest does not record. */
  size?: number
  /** Absent for format.json (checked field by field against the manifest) and the trailer (checked by parsing). */
  sha256?: string
}

/** How results name the end-of-archive blocks, which are not a member. */
const END_OF_ARCHIVE_ENTRY = '(end of archive)'

/** Reads are this large: few syscalls, bounded memory. */
const CHUNK = 1024 * 1024

export interface VerifyOptions {
  /** Called as the file is read (about once per MiB), for a progress bar. */
  onProgress?: (bytesRead: number, fileSize: number) => void
  /**
   * Called with every chunk read, in file order, before it is checked; the
   * chunk is the caller's to keep. `kubesnap copy` writes it to the
   * destination, so a copy is verified as it is made, with one read.
   */
  tap?: (chunk: Buffer) => Promise<void>
  /**
   * Called at each member's header with its path: a reader returned here gets
   * the member's content as it is read and hashed (restore scans its volumes
   * in the same read), then `end()` once all of it was read. A member the
   * file ends inside of never gets `end()`. Memory stays bounded as long as
   * each `write` resolves when its chunk is taken.
   */
  content?: (path: string) => MemberReader | undefined
}

/** The content of one member, handed over as verifyArchive reads it. */
export interface MemberReader {
  /** One chunk, the reader's to keep; the read goes on when the promise resolves. */
  write(chunk: Buffer): Promise<void>
  end(): Promise<void>
}

/**
 * Verifies an archive completely: every header checksum, every member's
 * sha256, size and offset, their order, the manifest against the trailer, the
 * padding, the end-of-archive blocks and the file length. Memory stays at one
 * read buffer, the manifest and a small record per member. Throws only when
 * the file cannot be opened or read.
 */
export async function verifyArchive(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  // A file, or an s3:// object streamed with one GET (store.ts).
  const fh = await openSource(path)
  let walk: Walk
  let size: number
  try {
    size = fh.size
    const onProgress = options.onProgress
    walk = await walkArchive(fh, {...options, onRead: onProgress && ((bytesRead) => onProgress(bytesRead, size))})
  } finally {
    await fh.close()
  }
  const first = walk.members[0]
  if (first && first.path !== FORMAT_MEMBER) {
    return {ok: false, entry: FORMAT_MEMBER, problem: 'not a kubesnap archive', detail: `${path} starts with ${first.path}, not ${FORMAT_MEMBER}.`}
  }
  let reference = referenceFromWalk(walk, path)
  if (reference instanceof ArchiveError && walk.stop) {
    // The walk broke off before the trailer: the manifest, from the trailer or as walked, can still name the broken member.
    try {
      const archive = await openArchive(path)
      reference = {manifest: archive.manifest, trailer: archive.trailer}
    } catch {
      return fromStop(walk, memberAt(walk))
    }
  }
  if (reference instanceof ArchiveError) {
    return {ok: false, entry: reference.entry ?? TRAILER_MEMBER, problem: reference.problem, detail: reference.message}
  }
  return compare(reference.manifest, reference.trailer, walk, size)
}

/** One member as found in the file. */
interface WalkedMember {
  path: string
  /** Offset of its first header block (the pax header's, when it has one). */
  headerOffset: number
  offset: number
  size: number
  sha256: string
  /** Kept for the small kubesnap/* members only. */
  content?: Buffer
}

/** Why the walk ended other than at well-formed end-of-archive blocks at the end of the file. */
interface WalkStop {
  problem: ArchiveProblem
  /** File offset where the problem is. */
  offset: number
  /** The member being read, when its header could be decoded. */
  path?: string
  detail: string
}

interface Walk {
  members: WalkedMember[]
  stop?: WalkStop
}

/** Reads the file as a tar stream, hashing each member; stops at the end blocks or at the first structural problem. */
async function walkArchive(fh: ArchiveSource, options: Omit<VerifyOptions, 'onProgress'> & {onRead?: (bytesRead: number) => void}): Promise<Walk> {
  const r = new SequentialReader(fh, options.onRead, options.tap)
  const members: WalkedMember[] = []
  const stop = (problem: ArchiveProblem, offset: number, detail: string, path?: string): Walk => ({members, stop: {problem, offset, path, detail}})
  let pax: {path?: string; offset: number} | undefined
  for (;;) {
    const start = r.position
    const block = await r.take(BLOCK)
    if (block.length < BLOCK) {
      if (block.length === 0 && !pax) {
        return stop('truncated', start, `the file ends at byte ${start}${members.length ? ` after ${members[members.length - 1].path}` : ''} without end-of-archive blocks`)
      }
      // The name field (the first 100 bytes) may have made it: best effort, to name the member.
      const name = block.length >= 100 ? block.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '') : undefined
      return stop('truncated', start, `the file ends inside a header at byte ${start}`, pax?.path ?? (name || undefined))
    }
    const header = decodeHeader(block, pax?.path)
    if (header.zero) {
      if (pax) return stop('unexpected member', pax.offset, 'a pax header is followed by the end of the archive', pax.path)
      const second = await r.take(BLOCK)
      if (second.length < BLOCK || !second.every((b) => b === 0)) return stop('missing end-of-archive blocks', start, `only one zero block at byte ${start}`)
      if ((await r.take(1)).length > 0) return stop('trailing data', r.position - 1, `bytes follow the end-of-archive blocks at byte ${r.position - 1}`)
      return {members}
    }
    if (!header.valid) return stop('bad header checksum', start, `the tar header at byte ${start} fails its checksum`, pax?.path)
    if (header.typeKey === 'x') {
      if (header.size > CHUNK) return stop('unexpected member', start, `a ${header.size}-byte pax header at byte ${start}`)
      const body = await r.take(header.size)
      const padding = await r.take(paddingFor(header.size))
      if (body.length < header.size || padding.length < paddingFor(header.size)) {
        return stop('truncated', start, `the file ends inside a pax header at byte ${start}`)
      }
      if (!padding.every((b) => b === 0)) return stop('bad padding', start, `the pax header at byte ${start} has non-zero padding`)
      pax = {path: paxPath(body), offset: start}
      continue
    }
    if (header.typeKey !== '0' || header.size < 0) {
      return stop('unexpected member', start, `a member of tar type ${JSON.stringify(header.typeKey)} at byte ${start}; archives hold regular files only`, header.path)
    }
    const offset = r.position
    const hash = createHash('sha256')
    const keep = header.path.startsWith('kubesnap/') && header.size <= 256 * CHUNK
    const kept: Buffer[] = []
    const reader = options.content?.(header.path)
    const passed = await r.pass(header.size, (chunk) => {
      hash.update(chunk)
      if (keep) kept.push(Buffer.from(chunk))
      return reader?.write(Buffer.from(chunk))
    })
    if (passed < header.size) return stop('truncated', offset + passed, `the file ends ${header.size - passed} bytes before the end of ${header.path}`, header.path)
    // Padding is not hashed, so check it is zeros: then every byte of the file is covered by some check.
    const padding = await r.take(paddingFor(header.size))
    if (padding.length < paddingFor(header.size)) return stop('truncated', r.position, `the file ends inside the padding of ${header.path}`, header.path)
    if (!padding.every((b) => b === 0)) return stop('bad padding', offset + header.size, `non-zero bytes in the padding after ${header.path}`, header.path)
    await reader?.end()
    members.push({
      path: header.path,
      headerOffset: pax?.offset ?? start,
      offset,
      size: header.size,
      sha256: hash.digest('hex'),
      ...(keep ? {content: Buffer.concat(kept)} : {}),
    })
    pax = undefined
  }
}

/** Finds the trailer and manifest among the walked members and checks one against the other. */
function referenceFromWalk(walk: Walk, path: string): {manifest: Manifest; trailer: Trailer} | ArchiveError {
  const trailerMember = walk.members.findLast((m) => m.path === TRAILER_MEMBER)
  if (!trailerMember?.content) return new ArchiveError('missing', `${path} has no ${TRAILER_MEMBER}.`, path, TRAILER_MEMBER)
  const parsed = parseTrailerBody(trailerMember.content)
  if ('reason' in parsed) {
    return parsed.reason === 'unsupported format version'
      ? new ArchiveError('unsupported format version', `${path} uses archive format version ${String(parsed.versionSeen)}; this kubesnap reads only version 1.`, path)
      : new ArchiveError('corrupt trailer', `${path} has a damaged trailer (${parsed.reason}).`, path, TRAILER_MEMBER)
  }
  const manifestMember = walk.members.find((m) => m.path === MANIFEST_MEMBER)
  if (!manifestMember?.content) return new ArchiveError('missing', `${path} has no ${MANIFEST_MEMBER}.`, path, MANIFEST_MEMBER)
  if (manifestMember.sha256 !== parsed.trailer.manifestSha256) {
    return new ArchiveError('sha256 mismatch', `The manifest of ${path} does not match the sha256 in its trailer.`, path, MANIFEST_MEMBER)
  }
  try {
    return {manifest: validateManifest(JSON.parse(manifestMember.content.toString('utf8')), path), trailer: parsed.trailer}
  } catch (err) {
    if (err instanceof ArchiveError) return err
    return new ArchiveError('corrupt manifest', `The manifest of ${path} is not valid JSON.`, path, MANIFEST_MEMBER, {cause: err})
  }
}

/** Compares the walked members with the manifest's, in file order; returns the first difference. */
function compare(manifest: Manifest, trailer: Trailer, walk: Walk, fileSize: number): VerifyResult {
  const expected: ExpectedMember[] = [
    // format.json's path fits a ustar header: its content always starts at the second block.
    {path: FORMAT_MEMBER, offset: BLOCK},
    ...manifest.entries.flatMap(entryMembers),
    {path: MANIFEST_MEMBER, offset: trailer.manifestOffset, size: trailer.manifestSize, sha256: trailer.manifestSha256},
    // Right after the manifest; that it is also right before the end blocks at the end of the file is the walk's check.
    {path: TRAILER_MEMBER, offset: trailer.manifestOffset + trailer.manifestSize + paddingFor(trailer.manifestSize) + BLOCK, size: BLOCK},
  ]
  const expectedPaths = new Set(expected.map((e) => e.path))
  const walkedPaths = new Set(walk.members.map((m) => m.path))
  const seen = new Set<string>()
  const fail = (entry: string, problem: ArchiveProblem, detail: string): VerifyResult => ({ok: false, entry, problem, detail})
  for (const [i, e] of expected.entries()) {
    const w = walk.members[i]
    if (!w) return walk.stop ? fromStop(walk, e.path) : fail(e.path, 'missing', `the archive ends before ${e.path}`)
    if (w.path !== e.path) {
      if (seen.has(w.path)) return fail(w.path, 'unexpected member', `${w.path} appears a second time at byte ${w.headerOffset}`)
      if (!walkedPaths.has(e.path)) return fail(e.path, 'missing', `${e.path} is not in the archive (found ${w.path} in its place)`)
      if (!expectedPaths.has(w.path)) return fail(w.path, 'unexpected member', `${w.path} at byte ${w.headerOffset} is not in the manifest`)
      return fail(e.path, 'out of order', `found ${w.path} where ${e.path} belongs`)
    }
    seen.add(w.path)
    if (e.size !== undefined && w.size !== e.size) return fail(e.path, 'size mismatch', `${w.size} bytes, the manifest says ${e.size}`)
    if (w.offset !== e.offset) return fail(e.path, 'offset mismatch', `content at byte ${w.offset}, the manifest says ${e.offset}`)
    if (e.sha256 !== undefined && w.sha256 !== e.sha256) return fail(e.path, 'sha256 mismatch', `content sha256 ${w.sha256}, the manifest says ${e.sha256}`)
    if (e.path === FORMAT_MEMBER) {
      const problem = formatDocumentProblem(w.content, manifest)
      if (problem) return fail(e.path, 'corrupt format.json', problem)
    }
  }
  const extra = walk.members[expected.length]
  if (extra) return fail(extra.path, 'unexpected member', `${extra.path} follows the trailer`)
  if (walk.stop) return fromStop(walk, END_OF_ARCHIVE_ENTRY)
  return {ok: true, members: walk.members.length, bytes: fileSize}
}

/**
 * Names the member expected where the walk stopped, from the walked (unverified)
 * manifest if the walk got that far: only used to word a failure.
 */
function memberAt(walk: Walk): string | undefined {
  const content = walk.members.find((m) => m.path === MANIFEST_MEMBER)?.content
  if (!content) return undefined
  try {
    const manifest = JSON.parse(content.toString('utf8')) as Manifest
    const paths = [FORMAT_MEMBER, ...manifest.entries.flatMap(entryMembers).map((m) => m.path), MANIFEST_MEMBER, TRAILER_MEMBER]
    return paths[walk.members.length]
  } catch {
    return undefined
  }
}

/** Says what is wrong with format.json given the manifest, or returns undefined. */
function formatDocumentProblem(content: Buffer | undefined, manifest: Manifest): string | undefined {
  let doc: Partial<FormatDocument>
  try {
    doc = JSON.parse(content?.toString('utf8') ?? '') as Partial<FormatDocument>
  } catch {
    return 'it is not JSON'
  }
  for (const key of ['format', 'formatVersion', 'kubesnapVersion', 'namespace', 'number', 'startedAt'] as const) {
    if (doc[key] !== manifest[key]) return `its ${key} is ${JSON.stringify(doc[key])}, the manifest says ${JSON.stringify(manifest[key])}`
  }
  return undefined
}

/** Turns the walk's stop into a result, naming `entry` (the member expected there) when known. */
function fromStop(walk: Walk, entry?: string): VerifyResult {
  const stop = walk.stop!
  if (stop.offset === 0 && walk.members.length === 0) {
    return {ok: false, entry: FORMAT_MEMBER, problem: 'not a kubesnap archive', detail: `the file does not start with a tar header (${stop.detail})`}
  }
  return {ok: false, entry: entry ?? stop.path ?? `(byte ${stop.offset})`, problem: stop.problem, detail: stop.detail}
}

/** Reads a file front to back through one reusable buffer. */
class SequentialReader {
  /** File offset of the next unread byte. */
  position = 0
  readonly #fh: ArchiveSource
  readonly #buf = Buffer.alloc(CHUNK)
  #start = 0
  #end = 0
  #filePosition = 0
  #eof = false

  readonly #onRead?: (bytesRead: number) => void
  readonly #tap?: (chunk: Buffer) => Promise<void>

  constructor(fh: ArchiveSource, onRead?: (bytesRead: number) => void, tap?: (chunk: Buffer) => Promise<void>) {
    this.#fh = fh
    this.#onRead = onRead
    this.#tap = tap
  }

  /** Returns the next `n` (≤ CHUNK) bytes as a copy, fewer at the end of the file. */
  async take(n: number): Promise<Buffer> {
    while (this.#end - this.#start < n && (await this.#fill()));
    const got = Math.min(n, this.#end - this.#start)
    const out = Buffer.from(this.#buf.subarray(this.#start, this.#start + got))
    this.#consume(got)
    return out
  }

  /** Hands the next `n` bytes to `onChunk` in buffer-sized views (waiting for the promise it may return); returns how many there were. */
  async pass(n: number, onChunk: (chunk: Buffer) => Promise<void> | undefined): Promise<number> {
    let done = 0
    while (done < n) {
      if (this.#end === this.#start && !(await this.#fill())) break
      const got = Math.min(n - done, this.#end - this.#start)
      await onChunk(this.#buf.subarray(this.#start, this.#start + got))
      this.#consume(got)
      done += got
    }
    return done
  }

  #consume(n: number): void {
    this.#start += n
    this.position += n
  }

  /** Reads more of the file into the buffer; returns false at the end of the file. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false
    if (this.#start > 0) {
      this.#buf.copy(this.#buf, 0, this.#start, this.#end)
      this.#end -= this.#start
      this.#start = 0
    }
    const {bytesRead} = await this.#fh.read(this.#buf, this.#end, this.#buf.length - this.#end, this.#filePosition)
    if (bytesRead === 0) {
      this.#eof = true
      return false
    }
    if (this.#tap) await this.#tap(Buffer.from(this.#buf.subarray(this.#end, this.#end + bytesRead)))
    this.#end += bytesRead
    this.#filePosition += bytesRead
    this.#onRead?.(this.#filePosition)
    return true
  }
}
