/**
 * The bookkeeping of a multipart upload's parts, without the network: bytes
 * appended in order fill fixed-size parts, and a part is ready to send once it
 * is full, unless it holds bytes that will be written a second time (a tar
 * header whose size is known only when its member ends). Such a part waits in
 * memory for its rewrite while the parts after it fill and go; S3 takes parts
 * in any order, numbered by position. So the writer streams a volume part of
 * any length straight into the upload, with its header patched at the end as
 * on disk, and memory is the part filling, the held one and the one in flight.
 */

/** A part ready to upload: its number (1-based, its place in the object) and its bytes. */
export interface ReadyPart {
  number: number
  body: Buffer
}

/** One part in memory: where it starts in the object and how much of it is filled. */
interface PartBuffer {
  number: number
  start: number
  buffer: Buffer
  filled: number
}

/**
 * Cuts a stream of bytes into upload parts of `partSize(n)` bytes, keeping the
 * parts with held ranges until those are rewritten. Buffers of sent parts come
 * back through recycle(), so a long upload allocates a handful, not one per part.
 */
export class UploadParts {
  /** Bytes appended so far (the object's length when complete). */
  written = 0
  readonly #partSize: (n: number) => number
  #filling: PartBuffer
  /** Full parts waiting for the rewrite of a held range. */
  readonly #held = new Map<number, PartBuffer>()
  /** Ranges [start, end) that will be written again. */
  #holds: Array<{start: number; end: number}> = []
  readonly #spare: Buffer[] = []

  constructor(partSize: (n: number) => number) {
    this.#partSize = partSize
    this.#filling = {number: 1, start: 0, buffer: Buffer.allocUnsafe(partSize(1)), filled: 0}
  }

  /** Whether no part has been handed out yet (the whole object is still in the first part). */
  get first(): boolean {
    return this.#filling.number === 1
  }

  /** Room left in the part being filled: append() takes at most this many bytes at a time. */
  get room(): number {
    return this.#filling.buffer.length - this.#filling.filled
  }

  /** Parts in memory besides those in flight: the one filling and the held ones. */
  get bufferedParts(): number {
    return 1 + this.#held.size
  }

  /** Says that bytes [position, position + length), not yet appended, will be rewritten: their part waits for it. */
  hold(position: number, length: number): void {
    if (position < this.#filling.start) throw new Error(`cannot hold bytes at ${position}: the part holding them (from ${this.#filling.start}) was already handed out`)
    if (length > 0) this.#holds.push({start: position, end: position + length})
  }

  /**
   * Appends up to `room` bytes at the end; returns the part they completed, if
   * it is ready to send (a full part with a held range waits instead).
   */
  append(data: Buffer): ReadyPart | undefined {
    if (data.length > this.room) throw new Error(`append of ${data.length} bytes with room for ${this.room}`)
    const part = this.#filling
    data.copy(part.buffer, part.filled)
    part.filled += data.length
    this.written += data.length
    if (part.filled < part.buffer.length) return undefined
    const number = part.number + 1
    this.#filling = {number, start: part.start + part.buffer.length, buffer: this.#buffer(this.#partSize(number)), filled: 0}
    if (this.#isHeld(part)) {
      this.#held.set(part.number, part)
      return undefined
    }
    return {number: part.number, body: part.buffer}
  }

  /**
   * Writes `data` again at `position`, over bytes appended under a hold, and
   * lifts the holds it covers; returns the parts that no longer wait.
   */
  rewrite(data: Buffer, position: number): ReadyPart[] {
    const end = position + data.length
    if (end > this.written) throw new Error(`rewrite of bytes ${position}-${end} past the end (${this.written})`)
    const covered = (h: {start: number; end: number}) => h.start >= position && h.end <= end
    const left = this.#holds.filter((h) => !covered(h))
    if (left.length + 1 !== this.#holds.length) throw new Error(`bytes ${position}-${end} were not held once: only held bytes can be rewritten, and only once`)
    this.#holds = left
    for (const part of [...this.#held.values(), this.#filling]) {
      const from = Math.max(position, part.start)
      const to = Math.min(end, part.start + part.filled)
      if (from < to) data.copy(part.buffer, from - part.start, from - position, to - position)
    }
    const ready: ReadyPart[] = []
    for (const part of this.#held.values()) {
      if (this.#isHeld(part)) continue
      this.#held.delete(part.number)
      ready.push({number: part.number, body: part.buffer})
    }
    return ready
  }

  /** Ends the stream: returns the last part (shorter than the others, possibly empty when nothing was sent). */
  finish(): ReadyPart | undefined {
    if (this.#holds.length > 0) throw new Error(`bytes ${this.#holds[0].start}-${this.#holds[0].end} were held and never rewritten`)
    const part = this.#filling
    if (part.filled === 0 && !this.first) return undefined
    return {number: part.number, body: part.buffer.subarray(0, part.filled)}
  }

  /** Gives back the buffer of a part that was sent, for a later part of the same size. */
  recycle(body: Buffer): void {
    // Two spares cover a part in flight and a held one; more would only keep memory.
    if (this.#spare.length < 2) this.#spare.push(body)
  }

  #buffer(size: number): Buffer {
    // Parts grow (uploadPartSize): a spare of the old size is dropped, not reused.
    while (this.#spare.length > 0) {
      const buffer = this.#spare.pop()!
      if (buffer.length === size) return buffer
    }
    return Buffer.allocUnsafe(size)
  }

  #isHeld(part: PartBuffer): boolean {
    const end = part.start + part.buffer.length
    return this.#holds.some((h) => h.start < end && h.end > part.start)
  }
}
