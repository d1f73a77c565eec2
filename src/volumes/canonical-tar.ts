/**
 * Re-encodes an archived volume's tar stream as the canonical tar restore
 * sends to the pod, so that what the pod's tar extracts is exactly what
 * kubesnap checked: no parser differential between the scan and busybox or
 * GNU tar can hide a member.
 *
 * Reading is strict: every header is a POSIX ustar or GNU header with a good
 * checksum and plain octal (or positive base-256) numbers; GNU long names and
 * links (`L`, `K`) and PAX headers (`x`, `g`) are understood, and anything a
 * reader could take two ways is refused with the member's name: a PAX record
 * that disagrees with the tar header (a PAX `size` busybox ignores is how a
 * device node hid from node-tar), sparse files and unknown types, size on a
 * member that has no data, two long names for one member, bytes after the
 * end-of-archive marker. Then unsafeMemberReason checks where each member
 * lands (tar-in.ts).
 *
 * Writing is what busybox itself writes: a GNU header per member (magic
 * `ustar  `), `L`/`K` entries for names and link targets over 100 bytes,
 * base-256 only for numbers octal cannot hold, owners as numbers, no PAX.
 * Only regular files, directories, symlinks, hard links to earlier members
 * and FIFOs are written (a FIFO names no device and reaches no other file;
 * anyone may mkfifo in a directory they can write, so it grants nothing).
 * Names are bytes (held as latin1 strings): a name that is not UTF-8 comes
 * back as archived.
 *
 * Hand-written rather than node-tar's Parser and Header: node-tar is a
 * lenient reader by design (it decodes names as UTF-8, parses octal with
 * parseInt, applies PAX overrides silently, guesses prefixes) and its
 * encoder writes POSIX ustar with PAX for long names, which is not what
 * busybox reads best. node-tar gives the type names (`types.name`).
 */
import {types} from 'tar'
import {BLOCK, END_OF_ARCHIVE, paddingFor} from '../archive/layout.js'

/** GNU long names and PAX headers larger than this are refused: no path is that long. */
const MAX_META = 1024 * 1024
const POSIX_MAGIC = 'ustar\u000000'
const GNU_MAGIC = 'ustar  \u0000'

/** The member types a canonical stream holds. */
export type CanonicalType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO'

/** One member as kubesnap read it, and will write it. Strings hold bytes (latin1). */
export interface CanonicalMember {
  /** The path as archived (after any long name or PAX path), for messages and the safety check. */
  path: string
  type: string
  /** A symlink's target as archived, or the archived member path a hard link names. */
  linkpath?: string
  mode: number
  uid: number
  gid: number
  mtime: number
  size: number
}

/** A member the canonical stream will not hold, and why (one clause, as unsafeMemberReason gives). */
export class RefusedMember extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`the member ${JSON.stringify(displayName(path))} is refused (${reason})`)
  }
}

/** The stream is not a complete, well-formed tar (as opposed to a member that is refused). */
export class TarFormatError extends Error {}

/** A name held as latin1 bytes, shown as UTF-8 (what a terminal shows for it). */
export function displayName(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8')
}

/** Where a member lands and what it may be, given the members before it: unsafeMemberReason (tar-in.ts), passed in to keep this module about encodings. */
export type MemberCheck = (member: CanonicalMember) => string | undefined

/**
 * Reads a volume's tar stream and yields its canonical encoding, chunk by
 * chunk (file data passes through without being buffered). Each member is
 * checked with `check` before any of it is yielded; the first refused one
 * throws a RefusedMember. A stream that is not a complete tar throws a
 * TarFormatError.
 */
export async function* canonicalTar(stream: AsyncIterable<Buffer>, check: MemberCheck): AsyncGenerator<Buffer> {
  const input = new ByteReader(stream)
  let global = new Map<string, string>()
  let pending: Pending = {}
  const out = new Batch()
  for (;;) {
    const at = input.offset
    const block = await input.read(BLOCK)
    if (!block) throw new TarFormatError('the stream ends without an end-of-archive marker')
    if (isZero(block)) {
      if (pending.longName !== undefined || pending.longLink !== undefined || pending.pax) {
        throw new RefusedMember(pending.longName ?? '', 'a long name or PAX header is not followed by its member')
      }
      // After the first zero block only zeros may follow: some tars read on past one zero block.
      for await (const chunk of input.rest()) {
        if (!isZero(chunk)) throw new TarFormatError(`the stream has data after its end-of-archive marker at byte ${at}`)
      }
      out.add(END_OF_ARCHIVE)
      yield out.take()
      return
    }
    const header = decodeHeader(block, at)
    const flag = header.flag
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (header.size > MAX_META) throw new RefusedMember(header.name, `its ${metaName(flag)} is ${header.size} bytes long`)
      const data = await input.read(padded(header.size))
      if (!data) throw new TarFormatError(`the stream ends inside the ${metaName(flag)} at byte ${at}`)
      const body = data.subarray(0, header.size)
      if (flag === 'g') {
        if (pending.longName !== undefined || pending.longLink !== undefined || pending.pax) throw new RefusedMember(pending.longName ?? header.name, 'a PAX global header comes between a long name and its member')
        global = new Map([...global, ...parsePax(body, header.name)])
        continue
      }
      const key = flag === 'L' ? 'longName' : flag === 'K' ? 'longLink' : 'pax'
      if (pending[key] !== undefined) throw new RefusedMember(pending.longName ?? header.name, `two ${metaName(flag)}s come before one member`)
      if (flag === 'x') pending.pax = parsePax(body, header.name)
      // Every tar reads a long name up to its first NUL.
      else pending[key as 'longName' | 'longLink'] = cString(body)
      continue
    }
    const member = resolveMember(header, pending, global)
    pending = {}
    const reason = check(member)
    if (reason) throw new RefusedMember(member.path, reason)
    const padding = padded(member.size) - member.size
    out.add(encodeMember(member))
    if (member.size <= SMALL) {
      // Small members go out in batches: a chunk per header cost more than the encoding (measured on 100,000 2 KiB files).
      const data = await input.read(member.size + padding)
      if (!data) throw new TarFormatError(`the stream ends inside the data of ${JSON.stringify(displayName(member.path))}`)
      out.add(data.subarray(0, member.size), ZEROS.subarray(0, padding))
      if (out.bytes >= SMALL) yield out.take()
      continue
    }
    yield out.take()
    for await (const chunk of input.chunks(member.size)) yield chunk
    if (padding > 0) {
      if (!(await input.read(padding))) throw new TarFormatError(`the stream ends inside the data of ${JSON.stringify(displayName(member.path))}`)
      yield ZEROS.subarray(0, padding)
    }
  }
}

/** Members up to this size are copied into batches of about this size; larger ones pass through chunk by chunk. */
const SMALL = 64 * 1024
const ZEROS = Buffer.alloc(BLOCK)

/** Output gathered for one chunk. */
class Batch {
  bytes = 0
  #parts: Buffer[] = []

  add(...parts: Buffer[]): void {
    for (const part of parts) {
      this.#parts.push(part)
      this.bytes += part.length
    }
  }

  take(): Buffer {
    const out = Buffer.concat(this.#parts, this.bytes)
    this.#parts = []
    this.bytes = 0
    return out
  }
}

/** Meta entries read before the member they describe. */
interface Pending {
  longName?: string
  longLink?: string
  pax?: Map<string, string>
}

const META_NAMES: Record<string, string> = {L: 'GNU long name', K: 'GNU long link name', x: 'PAX header', g: 'PAX global header'}
const metaName = (flag: string) => META_NAMES[flag] ?? flag

/** The member a header (with its long names and PAX records) describes, or a RefusedMember when they disagree or it has no canonical form. */
function resolveMember(header: RawHeader, pending: Pending, global: Map<string, string>): CanonicalMember {
  const path = pending.longName ?? header.name
  const type = memberType(header.flag)
  const isLink = type === 'Link' || type === 'SymbolicLink'
  if (pending.longLink !== undefined && !isLink) throw new RefusedMember(path, 'it has a GNU long link name but is not a link')
  const linkpath = pending.longLink ?? header.linkname
  const member: CanonicalMember = {path, type, mode: header.mode & 0o7777, uid: header.uid, gid: header.gid, mtime: header.mtime, size: header.size, ...(isLink ? {linkpath} : {})}
  // A PAX record stands only where it says what the tar header says, or what the header cannot hold
  // (a name over 100 bytes, of which GNU tar --format=posix puts the start in the header; an id over 2097151).
  // Anything else is read one way by busybox (which ignores PAX size) and another by GNU tar and node-tar.
  const pax = new Map([...global, ...(pending.pax ?? [])])
  for (const [key, value] of pax) {
    const disagrees = (what: string, ours: string | number) => new RefusedMember(path, `its PAX ${key} ${JSON.stringify(displayName(value))} disagrees with the ${what} ${JSON.stringify(typeof ours === 'string' ? displayName(ours) : ours)} in its tar header, and tars read it either way`)
    const longer = (field: string) => value === field || (value.length > 100 && field.length > 0 && value.startsWith(field))
    switch (key) {
      case 'path':
        if (pending.longName !== undefined ? value !== path : !longer(path)) throw disagrees('name', path)
        member.path = value
        break
      case 'linkpath':
        if (!isLink) throw new RefusedMember(path, 'it has a PAX linkpath but is not a link')
        if (pending.longLink !== undefined ? value !== linkpath : !longer(linkpath)) throw disagrees('link name', linkpath)
        member.linkpath = value
        break
      case 'uid': case 'gid':
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw disagrees(key, member[key])
        if (Number(value) !== member[key] && Number(value) < 8 ** 7) throw disagrees(key, member[key])
        member[key] = Number(value)
        break
      case 'size':
        if (!/^\d+$/.test(value) || Number(value) !== member.size) throw disagrees(key, member.size)
        break
      case 'mtime':
        if (!/^-?\d+(\.\d+)?$/.test(value) || Math.trunc(Number(value)) !== member.mtime) throw disagrees('mtime', member.mtime)
        break
      // What extraction with --numeric-owner does not use, or only describes the header.
      case 'atime': case 'ctime': case 'uname': case 'gname': case 'comment': case 'charset': case 'hdrcharset':
        break
      default:
        throw new RefusedMember(path, `it has the PAX record ${JSON.stringify(displayName(key))}, which a volume restore does not reproduce`)
    }
  }
  // Which bytes follow a directory or link with a size differs between tars: none may have any.
  if (CANONICAL_TYPES.has(type) && type !== 'File' && header.size !== 0) throw new RefusedMember(member.path, `it is a ${type} whose header announces ${header.size} bytes of data, which tars read differently`)
  // Old tars marked directories as files with a trailing slash: GNU tar makes a directory of one, busybox a file (measured).
  if (type === 'File' && member.path.endsWith('/')) throw new RefusedMember(member.path, 'it is a file whose name ends with /, which tars read as a directory or as a file')
  return member
}

const CANONICAL_TYPES = new Set<string>(['File', 'Directory', 'SymbolicLink', 'Link', 'FIFO'])

/** The canonical type of a tar type flag; unsupported flags keep node-tar's name (CharacterDevice, SparseFile…) for the safety check to refuse. */
function memberType(flag: string): string {
  switch (flag) {
    case '0': case '\u0000': case '7': return 'File'
    case '1': return 'Link'
    case '2': return 'SymbolicLink'
    case '5': return 'Directory'
    case '6': return 'FIFO'
    default: return types.name.get(flag as never) ?? `member of the unknown type ${JSON.stringify(flag)}`
  }
}

/** One 512-byte header, read strictly. */
export interface RawHeader {
  /** Name (with the ustar prefix), link name: bytes as latin1, up to the first NUL. */
  name: string
  linkname: string
  flag: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
}

/**
 * Reads a header block; a malformed one is a RefusedMember (named as far as
 * it can be) or, when it is not a tar header at all, a TarFormatError. The
 * one tar header reader for volume streams: restore's scan and the snapshot's
 * TarCheck both read with it, so a snapshot keeps only what restore can read.
 */
export function decodeHeader(block: Buffer, at: number): RawHeader {
  const magic = block.toString('latin1', 257, 265)
  if (magic !== POSIX_MAGIC && magic !== GNU_MAGIC) throw new TarFormatError(`the block at byte ${at} is not a POSIX ustar or GNU tar header`)
  const stored = octal(block, 148, 8)
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  // Old tars summed signed bytes; both sums are accepted, as GNU tar does.
  if (stored === undefined || (stored !== unsigned && stored !== signed)) throw new TarFormatError(`the header at byte ${at} has a wrong checksum`)
  const raw = cString(block.subarray(0, 100))
  // In a GNU header these bytes hold times, not a prefix.
  const prefix = magic === POSIX_MAGIC ? cString(block.subarray(345, 500)) : ''
  const name = prefix ? `${prefix}/${raw}` : raw
  const number = (field: string, offset: number, length: number) => {
    const value = octal(block, offset, length)
    if (value === undefined) throw new RefusedMember(name, `its ${field} field is not a number tars agree on`)
    return value
  }
  return {
    name,
    linkname: cString(block.subarray(157, 257)),
    flag: String.fromCharCode(block[156]),
    mode: number('mode', 100, 8),
    uid: number('uid', 108, 8),
    gid: number('gid', 116, 8),
    size: number('size', 124, 12),
    mtime: number('mtime', 136, 12),
  }
}

/**
 * A numeric header field: octal digits (leading spaces, trailing spaces or
 * NULs), or GNU base-256 (first byte 0x80) up to 2^53. Undefined for anything
 * else, negative numbers included (busybox refuses them).
 */
export function octal(block: Buffer, offset: number, length: number): number | undefined {
  const field = block.subarray(offset, offset + length)
  if (field[0] === 0x80) {
    let value = 0
    for (const byte of field.subarray(1)) value = value * 256 + byte
    return Number.isSafeInteger(value) ? value : undefined
  }
  const match = /^ *([0-7]+)[ \0]*$/.exec(field.toString('latin1'))
  return match ? parseInt(match[1], 8) : undefined
}

/** Parses PAX records (`LEN key=value\n`), strictly: a malformed or repeated record is refused. Keys and values are bytes (latin1). */
export function parsePax(body: Buffer, name: string): Map<string, string> {
  const records = new Map<string, string>()
  let at = 0
  while (at < body.length) {
    const space = body.indexOf(0x20, at)
    const length = space > at ? Number(body.toString('latin1', at, space)) : NaN
    if (!Number.isSafeInteger(length) || !/^[1-9]\d*$/.test(body.toString('latin1', at, space)) || at + length > body.length || body[at + length - 1] !== 0x0a) {
      throw new RefusedMember(name, `its PAX header has a malformed record at byte ${at}`)
    }
    const record = body.toString('latin1', space + 1, at + length - 1)
    const equals = record.indexOf('=')
    if (equals <= 0) throw new RefusedMember(name, `its PAX header has a malformed record at byte ${at}`)
    const key = record.slice(0, equals)
    if (records.has(key)) throw new RefusedMember(name, `its PAX header repeats the record ${JSON.stringify(key)}`)
    records.set(key, record.slice(equals + 1))
    at += length
  }
  return records
}

/** The canonical header blocks of a member: its long name and long link entries when needed, and its GNU header. */
export function encodeMember(member: CanonicalMember): Buffer {
  const where = normalize(member.path)
  const name = where === '.' ? './' : `./${where}${member.type === 'Directory' ? '/' : ''}`
  const link = member.type === 'Link' ? `./${normalize(member.linkpath ?? '')}` : member.type === 'SymbolicLink' ? member.linkpath ?? '' : ''
  const blocks: Buffer[] = []
  // Long names the way busybox and GNU tar write them: an `L` (or `K`) entry holding the name and a NUL.
  for (const [flag, value] of [['L', name], ['K', link]] as const) {
    if (value.length <= 100) continue
    const data = Buffer.alloc(padded(value.length + 1))
    data.write(value, 'latin1')
    blocks.push(encodeHeader({name: '././@LongLink', linkname: '', flag, mode: 0, uid: 0, gid: 0, size: value.length + 1, mtime: 0}), data)
  }
  const flag = {File: '0', Link: '1', SymbolicLink: '2', Directory: '5', FIFO: '6'}[member.type as CanonicalType]
  if (!flag) throw new Error(`no canonical form for a ${member.type}`)
  blocks.push(encodeHeader({name: name.slice(0, 100), linkname: link.slice(0, 100), flag, mode: member.mode, uid: member.uid, gid: member.gid, size: member.size, mtime: member.mtime}))
  return Buffer.concat(blocks)
}

/** A member path with `.` components, doubled and trailing slashes taken out: `.` for the root. */
export function normalize(raw: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.')
  return parts.length === 0 ? '.' : parts.join('/')
}

/** One GNU header block. */
function encodeHeader(h: RawHeader): Buffer {
  const block = Buffer.alloc(BLOCK)
  block.write(h.name, 0, 100, 'latin1')
  writeNumber(block, 100, 8, h.mode)
  writeNumber(block, 108, 8, h.uid)
  writeNumber(block, 116, 8, h.gid)
  writeNumber(block, 124, 12, h.size)
  writeNumber(block, 136, 12, h.mtime)
  block.write(h.flag, 156, 1, 'latin1')
  block.write(h.linkname, 157, 100, 'latin1')
  block.write(GNU_MAGIC, 257, 8, 'latin1')
  block.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += block[i]
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1')
  return block
}

/** Octal with a NUL when it fits, else GNU base-256 (what busybox and GNU tar write for uids over 2097151 and files of 8 GiB). */
function writeNumber(block: Buffer, offset: number, length: number, value: number): void {
  if (value < 8 ** (length - 1)) {
    block.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'latin1')
    return
  }
  block[offset] = 0x80
  for (let i = offset + length - 1, rest = value; i > offset; i--, rest = Math.floor(rest / 256)) block[i] = rest % 256
}

const padded = (size: number) => size + paddingFor(size)

/** Whether every byte is zero (an end-of-archive block, or what may follow it). */
export function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false
  return true
}

/** The bytes up to the first NUL, as latin1. */
function cString(buf: Buffer): string {
  const nul = buf.indexOf(0)
  return buf.toString('latin1', 0, nul === -1 ? buf.length : nul)
}

/** Pulls exact byte counts out of a stream of chunks, copying only headers (file data passes through as it came). */
class ByteReader {
  offset = 0
  #chunks: AsyncIterator<Buffer>
  #head: Buffer = Buffer.alloc(0)

  constructor(stream: AsyncIterable<Buffer>) {
    this.#chunks = stream[Symbol.asyncIterator]()
  }

  /** The unread bytes, refilled from the stream when empty; an empty buffer at its end. */
  async #peek(): Promise<Buffer> {
    while (this.#head.length === 0) {
      const next = await this.#chunks.next()
      if (next.done) return this.#head
      this.#head = next.value
    }
    return this.#head
  }

  #take(n: number): Buffer {
    const out = this.#head.subarray(0, n)
    this.#head = this.#head.subarray(out.length)
    this.offset += out.length
    return out
  }

  /** Exactly `n` bytes; undefined when the stream ends first (a truncated stream). */
  async read(n: number): Promise<Buffer | undefined> {
    if ((await this.#peek()).length >= n) return this.#take(n)
    // Across chunks: copy the n bytes, not the chunks they straddle.
    const out = Buffer.alloc(n)
    for (let filled = 0; filled < n;) {
      if ((await this.#peek()).length === 0) return undefined
      filled += this.#take(n - filled).copy(out, filled)
    }
    return out
  }

  /** `n` bytes as they arrive; throws when the stream ends first. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    for (let left = n; left > 0;) {
      if ((await this.#peek()).length === 0) throw new TarFormatError(`the stream ends ${left} bytes before the end of a member's data`)
      const out = this.#take(left)
      left -= out.length
      yield out
    }
  }

  /** Everything left. */
  async *rest(): AsyncGenerator<Buffer> {
    while ((await this.#peek()).length > 0) yield this.#take(this.#head.length)
  }
}
