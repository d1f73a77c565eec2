/**
 * Finding the elements of one array in a JSON object's raw bytes without
 * parsing them: a list answer's `items` (cluster/paging.ts) and a manifest's
 * `entries` (archive/manifest-text.ts) are thousands of objects that, parsed
 * whole, outlive many young-generation collections and pile up in the old
 * one, while one element parsed at a time dies young. Elements keep their
 * exact bytes (large integers, escapes and key order included).
 *
 * The scan knows just enough JSON to find where values end: strings (with
 * escapes) and nesting; the rest of the object is returned as text for
 * JSON.parse, and each element is parsed by whoever takes it, so invalid JSON
 * does not go unseen. Bytes are scanned, not characters: in UTF-8 no byte of
 * a multi-byte character is below 0x80, so none can be taken for a quote,
 * brace or bracket.
 */

/** A value's bytes: `start` inclusive, `end` exclusive. */
export interface Span {
  start: number
  end: number
}

/** A JSON object with the elements of one array-valued key located, not parsed. */
export interface SplitObject {
  /** The object's text with that array emptied (`[]`): JSON.parse of it gives every other key. */
  rest: string
  /** Where each element of the array lies in the bytes, in order; undefined when the key is absent or its (last) value is no array. */
  elements?: Span[]
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
 * Locates the elements of the array that is the value of `key` in the JSON
 * object `bytes` (the last one, when the key repeats: JSON.parse keeps the
 * last), and returns the rest of the object as text. Throws a SyntaxError
 * when the bytes are not one JSON object.
 */
export function splitArrayField(bytes: Buffer, key: string): SplitObject {
  let split: {open: number; close: number; elements: Span[]} | undefined
  let i = skipSpace(bytes, 0)
  if (bytes[i] !== OPEN_BRACE) throw invalid(bytes, i, 'an object')
  i = skipSpace(bytes, i + 1)
  if (bytes[i] === CLOSE_BRACE) {
    i++
  } else {
    for (;;) {
      if (bytes[i] !== QUOTE) throw invalid(bytes, i, 'a key')
      const keyEnd = skipString(bytes, i)
      const name = JSON.parse(bytes.toString('utf8', i, keyEnd)) as string
      i = skipSpace(bytes, keyEnd)
      if (bytes[i] !== COLON) throw invalid(bytes, i, '":"')
      i = skipSpace(bytes, i + 1)
      if (name === key && bytes[i] === OPEN_BRACKET) {
        const elements: Span[] = []
        const end = scanArray(bytes, i, elements)
        split = {open: i, close: end - 1, elements}
        i = end
      } else {
        // A repeated key whose last value is no array: that value counts, as with JSON.parse.
        if (name === key) split = undefined
        i = skipValue(bytes, i)
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
  if (!split) return {rest: bytes.toString('utf8')}
  return {rest: bytes.toString('utf8', 0, split.open + 1) + bytes.toString('utf8', split.close), elements: split.elements}
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
