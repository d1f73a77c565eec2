/**
 * Follows a tar stream as it passes, header by header, without buffering it:
 * each header must read as restore's scan reads it (canonical-tar.ts's
 * decodeHeader: a ustar or GNU header, its checksum, numbers tars agree on),
 * and the stream must reach the
 * end-of-archive marker (two zero blocks where a header is due), followed by
 * nothing but zero padding. An exec stream that lost its tail, or bytes in
 * the middle, fails one of these, even when the exec itself ended cleanly.
 */
import {Transform, type TransformCallback, type TransformOptions} from 'node:stream'
import {BLOCK} from '../archive/layout.js'
import {decodeHeader, isZero, RefusedMember, TarFormatError} from './canonical-tar.js'

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

  /** `options` are the Transform's (e.g. highWaterMark, when the check is the first stage that buffers). */
  constructor(options: Pick<TransformOptions, 'highWaterMark'> = {}) {
    super(options)
  }

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
    let header
    try {
      // Read as restore's scan reads it: a header restore would refuse fails the snapshot now, not the restore later.
      header = decodeHeader(h, offset)
    } catch (err) {
      if (!(err instanceof TarFormatError || err instanceof RefusedMember)) throw err
      this.problem = `the tar stream is corrupt: ${err.message}${err instanceof RefusedMember ? ` in the header at byte ${offset}` : ''}`
      return
    }
    this.members++
    const size = NO_CONTENT.has(header.flag) ? 0 : header.size
    this.#skip = Math.ceil(size / BLOCK) * BLOCK
  }
}
