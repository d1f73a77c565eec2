/**
 * gzip on every core: the input is cut into fixed blocks, each compressed on
 * its own in libuv's thread pool as a complete gzip member, and the members
 * are emitted in input order. Concatenated members are one valid gzip file
 * (RFC 1952 §2.2): `gzip -dc`, `tar xz` and Node's gunzip read it as one
 * stream. A single deflate stream runs on one thread only (about 75 MiB/s at
 * level 1 here), which made compression the limit of a volume copy.
 *
 * Memory is bounded: at most `inFlight` blocks are being compressed, and a new
 * block waits (backpressure on the input) until the oldest one is emitted.
 * Input blocks are reused once compressed, so a multi-GiB stream allocates a
 * handful of them, not one per MiB (which only a garbage collection returns).
 * Each block starts with an empty dictionary, so the ratio is a little worse
 * than one stream's: by about 1 % with 256 KiB blocks, less with the default 1 MiB.
 *
 * Data that does not compress (media, compressed files, encrypted disks) is
 * stored rather than compressed: deflate at level 1 crawls through random bytes
 * at about 55 MiB/s per core only to emit them as stored blocks in the end,
 * while level 0 writes the same stored blocks at about 700 MiB/s. A sample of
 * each block decides (see `incompressible`); the output is gzip either way.
 */
import {createHash} from 'node:crypto'
import {promisify} from 'node:util'
import {Transform, type TransformCallback} from 'node:stream'
import {deflateRawSync, gzip, type ZlibOptions} from 'node:zlib'

const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip)

/** Bytes taken from each of three places of a block to judge it (4 KiB cost a third more CPU on random data, for the same verdicts). */
const SAMPLE_SLICE = 2048
/** Blocks shorter than this are compressed without a verdict. */
const MIN_JUDGED = 65_536
/** A sample that saves less than this share at the chosen level is judged incompressible. */
const MIN_SAVING = 0.03

/**
 * Whether `input` should be stored rather than compressed at `level`: a
 * sample of it (2 KiB at its start, middle and end) saves under 3 %. At worst
 * a block that is random where sampled and compressible elsewhere is stored,
 * which costs ratio on that block, never correctness. Blocks under 64 KiB are
 * never judged (zlib stores what does not shrink by itself). Runs on the
 * calling thread: deflating 6 KiB takes less CPU than a trip through libuv's
 * thread pool and back (measured over 1 GiB of half random, half text data in
 * 1 MiB blocks: 0.95 CPU-s for the whole compression with the sample in the
 * pool, 0.70 with it here).
 */
export function incompressible(input: Buffer, level: number): boolean {
  if (level === 0 || input.length < MIN_JUDGED) return false
  const middle = (input.length - SAMPLE_SLICE) >> 1
  const sample = Buffer.concat([
    input.subarray(0, SAMPLE_SLICE),
    input.subarray(middle, middle + SAMPLE_SLICE),
    input.subarray(input.length - SAMPLE_SLICE),
  ])
  const packed = deflateRawSync(sample, {level})
  return packed.length > sample.length * (1 - MIN_SAVING)
}

/**
 * One gzip member for `input`: at `level`, or stored when `incompressible`
 * says so. zlib's output buffer holds the whole member: with its default of
 * 16 KiB, a stored 256 KiB block takes 17 trips between the thread pool and
 * the main thread, and 1 GiB of random data cost 3.8 s of CPU instead of 1.9.
 */
export async function compressBlock(input: Buffer, level: number): Promise<Buffer> {
  // deflateBound: stored deflate blocks add 5 bytes per 16 KiB at most; gzip's header and trailer 18.
  const chunkSize = Math.max(16_384, input.length + (input.length >> 8) + 64)
  return gzipAsync(input, {level: incompressible(input, level) ? 0 : level, chunkSize})
}

export interface ParallelGzipOptions {
  level?: number
  /**
   * Input bytes per gzip member (default 1 MiB). Each block costs a zlib
   * stream and a trip through the thread pool, and each member is one write:
   * over 1 GiB of half random, half text data, compression took 1.34 CPU-s
   * with 256 KiB blocks, 0.95 with 1 MiB and 0.82 with 2 MiB, at the same
   * wall time. 1 MiB keeps the memory held by blocks in flight to a few MiB.
   */
  blockSize?: number
  /** Blocks compressed at once (default 3: below the thread pool's 4, which file writes share). */
  inFlight?: number
}

/** The parallel gzip stream; it also counts and hashes its input, a block at a time, for the manifest's raw size and sha256. */
export class ParallelGzip extends Transform {
  /** Input bytes taken so far. */
  size = 0
  readonly #blockSize: number
  readonly #inFlight: number
  readonly #level: number
  /** The block being filled. */
  #block: Buffer
  #fill = 0
  /** Blocks being compressed, oldest first. */
  readonly #queue: Promise<Buffer>[] = []
  /** Input blocks whose compression is done, ready for reuse. */
  readonly #free: Buffer[] = []
  #started = false
  readonly #hash = createHash('sha256')

  constructor(options: ParallelGzipOptions = {}) {
    super()
    this.#blockSize = options.blockSize ?? 1024 * 1024
    this.#inFlight = options.inFlight ?? 3
    this.#level = options.level ?? 1
    this.#block = Buffer.allocUnsafe(this.#blockSize)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => callback(), callback)
  }

  override _flush(callback: TransformCallback): void {
    // An empty input still becomes one (empty) gzip member, so the output is always a gzip file.
    if (this.#fill > 0 || !this.#started) this.#startBlock()
    ;(async () => {
      while (this.#queue.length > 0) this.push(await this.#queue.shift()!)
    })().then(() => callback(), callback)
  }

  async #take(chunk: Buffer): Promise<void> {
    let at = 0
    while (at < chunk.length) {
      const n = Math.min(this.#blockSize - this.#fill, chunk.length - at)
      chunk.copy(this.#block, this.#fill, at, at + n)
      this.#fill += n
      at += n
      if (this.#fill === this.#blockSize) {
        // The oldest block must be out before another starts: memory stays at inFlight blocks.
        if (this.#queue.length >= this.#inFlight) this.push(await this.#queue.shift()!)
        this.#startBlock()
      }
    }
  }

  /** sha256 of the whole input (once the stream has ended). */
  sha256(): string {
    return this.#hash.digest('hex')
  }

  #startBlock(): void {
    const block = this.#block
    const input = block.subarray(0, this.#fill)
    this.#started = true
    // One update per block, not one per incoming chunk (exec frames are often a few KiB).
    this.#hash.update(input)
    this.size += input.length
    const compressed = compressBlock(input, this.#level).finally(() => {
      // zlib is done reading the block: it can take the next one's bytes.
      this.#free.push(block)
    })
    // Awaited in order later; a rejection is seen then, not reported as unhandled now.
    compressed.catch(() => {})
    this.#queue.push(compressed)
    // The block's bytes belong to the compression in flight: the next block gets another buffer.
    this.#block = this.#free.pop() ?? Buffer.allocUnsafe(this.#blockSize)
    this.#fill = 0
  }
}
