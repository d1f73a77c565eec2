/**
 * Follows a tar stream as it passes, header by header, without buffering it:
 * each header's checksum must hold, and the stream must reach the
 * end-of-archive marker (two zero blocks where a header is due), followed by
 * nothing but zero padding. An exec stream that lost its tail, or bytes in
 * the middle, fails one of these, even when the exec itself ended cleanly.
 */
import {Transform, type TransformCallback} from 'node:stream'

const BLOCK = 512
/** Entry types whose size field does not count stored content (links, devices, directories, FIFOs). */
const NO_CONTENT = new Set(['1', '2', '3', '4', '5', '6'])

/** A pass-through that checks the tar structure of what flows through it. */
export class TarCheck extends Transform {
  /** Members seen (pax and GNU long-name headers included). */
  members = 0
  /** Bytes seen. */
  bytes = 0
  /** Set when the stream is not a well-formed tar: what and where. */
  problem?: string
  #header = Buffer.alloc(BLOCK)
  #headerFill = 0
  /** Content and padding bytes still to skip before the next header. */
  #skip = 0
  #zeroBlocks = 0
  #ended = false

  /** Why the stream is not a complete tar archive, or undefined when it is. */
  verdict(): string | undefined {
    if (this.problem) return this.problem
    if (!this.#ended) return `the tar stream ended after ${this.bytes} bytes without its end-of-archive marker (cut short)`
    return undefined
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.problem) this.#inspect(chunk)
    this.bytes += chunk.length
    callback(null, chunk)
  }

  #inspect(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length && !this.problem) {
      if (this.#ended) {
        // After the marker only zero padding (to a 10 KiB record, as GNU tar writes) may follow.
        for (; at < chunk.length; at++) {
          if (chunk[at] !== 0) {
            this.problem = `the tar stream has data after its end-of-archive marker (byte ${this.bytes + at})`
            return
          }
        }
        return
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at)
        this.#skip -= n
        at += n
        continue
      }
      const n = Math.min(BLOCK - this.#headerFill, chunk.length - at)
      chunk.copy(this.#header, this.#headerFill, at, at + n)
      this.#headerFill += n
      at += n
      if (this.#headerFill < BLOCK) return
      this.#headerFill = 0
      this.#onHeader(this.bytes + at - BLOCK)
    }
  }

  #onHeader(offset: number): void {
    const h = this.#header
    if (isZero(h)) {
      this.#zeroBlocks++
      if (this.#zeroBlocks === 2) this.#ended = true
      return
    }
    if (this.#zeroBlocks > 0) {
      this.problem = `the tar stream has a lone zero block before the header at byte ${offset}`
      return
    }
    if (!checksumHolds(h)) {
      this.problem = `the tar stream is corrupt: bad header checksum at byte ${offset}`
      return
    }
    this.members++
    const type = String.fromCharCode(h[156])
    const size = NO_CONTENT.has(type) ? 0 : parseSize(h.subarray(124, 136))
    if (size === undefined) {
      this.problem = `the tar stream is corrupt: unreadable size in the header at byte ${offset}`
      return
    }
    this.#skip = Math.ceil(size / BLOCK) * BLOCK
  }
}

/** Whether every byte is zero (an end-of-archive block, or what may follow it). */
export function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false
  return true
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces. */
function checksumHolds(h: Buffer): boolean {
  const stored = parseOctal(h.subarray(148, 156))
  if (stored === undefined) return false
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]
  return sum === stored
}

/** A size field: octal digits, or GNU base-256 (high bit of the first byte set) for sizes over 8 GiB. */
function parseSize(field: Buffer): number | undefined {
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]
    return Number.isSafeInteger(value) ? value : undefined
  }
  return parseOctal(field)
}

function parseOctal(field: Buffer): number | undefined {
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return undefined
  return parseInt(text, 8)
}
