/**
 * The byte layout of a kubesnap archive: tar member headers (ustar, with a pax
 * header in front when a path does not fit), block padding, and the fixed-size
 * trailer at the end that points at the manifest.
 *
 * File = format.json member, entry members…, manifest.json member,
 *        trailer.json member (512-byte header + 512-byte body), two zero blocks.
 * So the last TRAILER_SPAN bytes are always: trailer header, trailer body, end blocks.
 */
import {Header, Pax} from 'tar'
import {ARCHIVE_FORMAT, FORMAT_VERSION, TRAILER_MEMBER} from './manifest.js'

/** The tar block size. */
export const BLOCK = 512
/** Largest member size the 11 octal digits of a ustar header can hold (8 GiB - 1). */
export const MAX_USTAR_SIZE = 8 ** 11 - 1
/** Bytes from the trailer's header to the end of the file. */
export const TRAILER_SPAN = 4 * BLOCK
/** The two zero blocks that end a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK)

/** Returns how many zero bytes follow `size` content bytes to reach a block boundary. */
export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/**
 * Encodes the header block(s) of a regular-file member: one ustar block, preceded
 * by a pax extended header when the path is too long (or not ASCII) for ustar.
 * The result's length depends on the path only, never on the size, which is what
 * lets the writer put a placeholder down and rewrite it in place later.
 */
export function encodeMemberHeader(path: string, size: number, mtime: Date): Buffer {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_USTAR_SIZE) {
    throw new RangeError(`member ${path} has size ${size}; a ustar member holds at most ${MAX_USTAR_SIZE} bytes`)
  }
  const block = Buffer.alloc(BLOCK)
  // mode 0600: a person extracting with tar gets Secrets readable by them only.
  const needPax = new Header({path, size, mode: 0o600, uid: 0, gid: 0, uname: '', gname: '', mtime, type: 'File'}).encode(block, 0)
  if (!needPax) return block
  // Only the path goes into the pax record, so the header's length stays independent of size.
  return Buffer.concat([new Pax({path}).encode(), block])
}

/** A decoded header block. */
export interface DecodedHeader {
  /** The block's checksum matches its content. */
  valid: boolean
  /** An all-zero block (the end-of-archive marker). */
  zero: boolean
  /** Tar type flag: '0' regular file, 'x' pax extended header, others are unexpected here. */
  typeKey: string
  path: string
  size: number
}

/** Decodes one 512-byte header block, applying the path from a preceding pax header if given. */
export function decodeHeader(block: Buffer, paxPath?: string): DecodedHeader {
  if (block.every((b) => b === 0)) return {valid: true, zero: true, typeKey: '', path: '', size: 0}
  // Decoded without the pax record: tar's decoder would prepend the ustar prefix to the pax path.
  let header: Header
  try {
    header = new Header(block, 0)
  } catch {
    // Garbage in a numeric field (e.g. a bad base-256 size): not a header we wrote.
    return {valid: false, zero: false, typeKey: '', path: '', size: -1}
  }
  return {valid: header.cksumValid, zero: false, typeKey: header.typeKey, path: paxPath ?? header.path ?? '', size: header.size ?? -1}
}

/** Returns the path recorded in a pax extended header body, if any. */
export function paxPath(body: Buffer): string | undefined {
  return Pax.parse(body.toString('utf8')).path
}

/** The trailer body: where the manifest is and its hash. */
export interface Trailer {
  format: typeof ARCHIVE_FORMAT
  formatVersion: typeof FORMAT_VERSION
  manifestOffset: number
  manifestSize: number
  manifestSha256: string
  /**
   * The manifest's signature, when the snapshot was signed: an SSHSIG blob
   * (sign.ts), base64. Readers that predate it ignore the field.
   */
  signature?: string
}

/** Encodes the trailer member: its header block, then the JSON body padded with spaces to one block. */
export function encodeTrailer(fields: Omit<Trailer, 'format' | 'formatVersion'>, mtime: Date): Buffer {
  const trailer: Trailer = {format: ARCHIVE_FORMAT, formatVersion: FORMAT_VERSION, ...fields}
  const json = JSON.stringify(trailer)
  // Ends in a newline so `tar xOf … kubesnap/trailer.json` prints cleanly.
  const body = Buffer.from(json.padEnd(BLOCK - 1, ' ') + '\n', 'utf8')
  if (body.length !== BLOCK) throw new Error(`trailer is ${json.length + 1} bytes, more than ${BLOCK}`)
  return Buffer.concat([encodeMemberHeader(TRAILER_MEMBER, BLOCK, mtime), body])
}

/**
 * Parses the last TRAILER_SPAN bytes of a file. Returns the trailer, or a reason
 * when they are not a kubesnap trailer (the caller decides whether that means
 * "truncated", "not an archive" or "corrupt").
 */
export function parseTrailer(tail: Buffer): {trailer: Trailer} | {reason: string; trailerPresent: boolean; versionSeen?: unknown} {
  if (tail.length !== TRAILER_SPAN) return {reason: 'the file is too short', trailerPresent: false}
  if (!tail.subarray(2 * BLOCK).equals(END_OF_ARCHIVE)) return {reason: 'the end-of-archive blocks are missing', trailerPresent: false}
  const header = decodeHeader(tail.subarray(0, BLOCK))
  if (header.zero || !header.valid || header.path !== TRAILER_MEMBER || header.size !== BLOCK || header.typeKey !== '0') {
    return {reason: `no valid ${TRAILER_MEMBER} member before the end`, trailerPresent: false}
  }
  const body = parseTrailerBody(tail.subarray(BLOCK, 2 * BLOCK))
  return 'trailer' in body ? body : {...body, trailerPresent: true}
}

/** Parses the 512-byte body of the trailer member. */
export function parseTrailerBody(body: Buffer): {trailer: Trailer} | {reason: string; versionSeen?: unknown} {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    return {reason: 'the trailer is not JSON'}
  }
  const t = value as Partial<Trailer> | null
  if (typeof t !== 'object' || t === null || t.format !== ARCHIVE_FORMAT) return {reason: 'the trailer has no kubesnap format marker'}
  if (t.formatVersion !== FORMAT_VERSION) return {reason: 'unsupported format version', versionSeen: t.formatVersion}
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  if (!count(t.manifestOffset) || !count(t.manifestSize) || typeof t.manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.manifestSha256)) {
    return {reason: 'the trailer fields are malformed'}
  }
  if (t.signature !== undefined && (typeof t.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(t.signature))) return {reason: 'the trailer\'s signature is not base64'}
  return {trailer: t as Trailer}
}
