/**
 * Finds the items of a list answer in its raw bytes without parsing the page:
 * a page of 500 objects parsed whole is megabytes of objects that outlive many
 * young-generation collections and pile up in the old one, while one item
 * parsed at a time dies young. Items keep the server's exact bytes (large
 * integers, escapes and key order included) for the archive.
 *
 * The scan knows just enough JSON to find where values end: strings (with
 * escapes) and nesting. Every value it does not hand out is parsed here, and
 * each item is parsed by whoever takes it, so invalid JSON does not go unseen.
 * Bytes are scanned, not characters: in UTF-8 no byte of a multi-byte
 * character is below 0x80, so none can be taken for a quote, brace or bracket.
 */

/** A value's bytes: `start` inclusive, `end` exclusive. */
export interface Span {
  start: number
  end: number
}

/** A list answer as scanned: its metadata parsed, its items located. */
export interface ScannedList {
  /** The list's `metadata` (continue token, resourceVersion), parsed. */
  metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
  /** Where each element of `items` lies in the bytes, in order. */
  items: Span[]
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/** A byte that JSON allows between tokens. */
function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

/** The invalid-JSON error of the scan, saying where. */
function invalid(bytes: Buffer, at: number, expected: string): SyntaxError {
  const found = at >= bytes.length ? 'the end' : JSON.stringify(String.fromCharCode(bytes[at]))
  return new SyntaxError(`expected ${expected} at byte ${at}, found ${found}`)
}

/**
 * Locates the elements of a list answer's `items` array and parses its
 * `metadata`. Throws a SyntaxError when the bytes are not one JSON object.
 */
export function scanList(bytes: Buffer): ScannedList {
  const list: ScannedList = {items: []}
  let i = skipSpace(bytes, 0)
  if (bytes[i] !== OPEN_BRACE) throw invalid(bytes, i, 'an object')
  i = skipSpace(bytes, i + 1)
  if (bytes[i] === CLOSE_BRACE) {
    i++
  } else {
    for (;;) {
      if (bytes[i] !== QUOTE) throw invalid(bytes, i, 'a key')
      const keyEnd = skipString(bytes, i)
      const key = JSON.parse(bytes.toString('utf8', i, keyEnd)) as string
      i = skipSpace(bytes, keyEnd)
      if (bytes[i] !== COLON) throw invalid(bytes, i, '":"')
      i = skipSpace(bytes, i + 1)
      if (key === 'items' && bytes[i] === OPEN_BRACKET) {
        // A repeated key: the last one counts, as with JSON.parse.
        list.items = []
        i = scanArray(bytes, i, list.items)
      } else {
        const end = skipValue(bytes, i)
        const value = JSON.parse(bytes.toString('utf8', i, end)) as unknown
        if (key === 'metadata') list.metadata = value as ScannedList['metadata']
        else if (key === 'items') list.items = []
        i = end
      }
      i = skipSpace(bytes, i)
      if (bytes[i] === COMMA) {
        i = skipSpace(bytes, i + 1)
        continue
      }
      if (bytes[i] === CLOSE_BRACE) {
        i++
        break
      }
      throw invalid(bytes, i, '"," or "}"')
    }
  }
  i = skipSpace(bytes, i)
  if (i !== bytes.length) throw invalid(bytes, i, 'the end')
  return list
}

/** Pushes the span of each element of the array at `i`; returns the index after it. */
function scanArray(bytes: Buffer, i: number, into: Span[]): number {
  i = skipSpace(bytes, i + 1)
  if (bytes[i] === CLOSE_BRACKET) return i + 1
  for (;;) {
    const end = skipValue(bytes, i)
    into.push({start: i, end})
    i = skipSpace(bytes, end)
    if (bytes[i] === COMMA) {
      i = skipSpace(bytes, i + 1)
      continue
    }
    if (bytes[i] === CLOSE_BRACKET) return i + 1
    throw invalid(bytes, i, '"," or "]"')
  }
}

function skipSpace(bytes: Buffer, i: number): number {
  while (i < bytes.length && isSpace(bytes[i])) i++
  return i
}

/** The index after the value that starts at `i`. */
function skipValue(bytes: Buffer, i: number): number {
  const first = bytes[i]
  if (first === QUOTE) return skipString(bytes, i)
  if (first === OPEN_BRACE || first === OPEN_BRACKET) return skipNested(bytes, i)
  // A number, true, false or null: up to the next delimiter (JSON.parse of it checks the rest).
  let j = i
  while (j < bytes.length && !isSpace(bytes[j]) && bytes[j] !== COMMA && bytes[j] !== CLOSE_BRACE && bytes[j] !== CLOSE_BRACKET) j++
  if (j === i) throw invalid(bytes, i, 'a value')
  return j
}

/** The index after the string whose opening quote is at `i`. */
function skipString(bytes: Buffer, i: number): number {
  let from = i + 1
  for (;;) {
    // indexOf is a native search: strings are most of an object's bytes.
    const quote = bytes.indexOf(QUOTE, from)
    if (quote === -1) throw invalid(bytes, bytes.length, 'the end of a string')
    // A quote ends the string unless an odd number of backslashes precede it.
    let backslashes = 0
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return quote + 1
    from = quote + 1
  }
}

/** The index after the object or array that opens at `i`. */
function skipNested(bytes: Buffer, i: number): number {
  const closers: number[] = []
  let j = i
  while (j < bytes.length) {
    const byte = bytes[j]
    if (byte === QUOTE) {
      j = skipString(bytes, j)
      continue
    }
    if (byte === OPEN_BRACE) closers.push(CLOSE_BRACE)
    else if (byte === OPEN_BRACKET) closers.push(CLOSE_BRACKET)
    else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      if (closers.pop() !== byte) throw invalid(bytes, j, 'a matching bracket')
      if (closers.length === 0) return j + 1
    }
    j++
  }
  throw invalid(bytes, j, closers.at(-1) === CLOSE_BRACE ? '"}"' : '"]"')
}
