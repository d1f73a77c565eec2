/**
 * Reading a manifest's JSON one entry at a time: what `kubesnap list` needs to
 * check and count 10,000 entries without holding them all (parsed whole, a
 * 3.5 MB manifest takes ≈20 MiB of heap, most of it V8's young generation
 * grown to hold objects that all survive).
 */

/** A manifest's JSON with its top-level `entries` read apart from the rest. */
export interface SplitManifest {
  /** Everything but the entries, parsed (its `entries`, when split off, is an empty list). */
  head: unknown
  /** The entries, each parsed when iterated; undefined when the text has no top-level `entries` list. */
  entries: Iterable<unknown> | undefined
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const JSON_SPACE = /^[ \t\n\r]*$/
const JSON_COLON = /^[ \t\n\r]*:[ \t\n\r]*$/

/**
 * Splits a manifest's JSON (UTF-8 bytes) into the rest of the object and its
 * `entries` list, whose elements are decoded and parsed one at a time when
 * iterated, so a caller that checks and counts them keeps none. Accepts and
 * refuses exactly what JSON.parse of the whole text does and gives the same
 * values: the rest and every element are parsed by JSON.parse itself, and
 * only the element boundaries are found here (by bracket depth outside
 * strings; UTF-8 never encodes anything else with the bytes of `"[]{},\\`).
 * Throws JSON.parse's SyntaxError, for an element only when iteration reaches it.
 */
export function splitManifestJson(bytes: Buffer): SplitManifest {
  // The bytes are never decoded whole: a 3.5 MB string would be one more survivor for V8's young generation to grow for.
  const text = (start: number, end?: number) => bytes.toString('utf8', start, end)
  // Element boundaries of the last top-level `entries` list (JSON.parse keeps the last of a repeated key), as start/end pairs.
  let bounds: number[] | undefined
  const rest: string[] = []
  let copied = 0
  let depth = 0
  let keyStart = -1
  let keyEnd = -1
  let open = -1 // offset after `[` while inside a split `entries` list
  let elementStart = -1
  const topIsObject = /^[ \t\n\r]*\{/.test(text(0, 64))
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]
    if (c === QUOTE) {
      const start = i
      for (i++; i < bytes.length && bytes[i] !== QUOTE; i++) if (bytes[i] === BACKSLASH) i++
      if (depth === 1) [keyStart, keyEnd] = [start, i + 1]
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++
      if (depth === 2 && c === OPEN_BRACKET && topIsObject && keyStart >= 0 && isEntriesKey(text(keyStart, keyEnd), text(keyEnd, i))) {
        open = elementStart = i + 1
        bounds = []
      }
    } else if (open >= 0 && depth === 2 && (c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE)) {
      // `[ ]` holds no element; anything else between separators must parse as one.
      if (c === COMMA || bounds!.length > 0 || !JSON_SPACE.test(text(elementStart, i))) bounds!.push(elementStart, i)
      elementStart = i + 1
      if (c !== COMMA) {
        // The list leaves the rest as `[` + its closing bracket: a `}` there stays, and the rest fails to parse as it should.
        rest.push(text(copied, open))
        copied = i
        open = -1
        depth--
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  // An unclosed list is not split: parsed whole, JSON.parse says what is wrong.
  const split = bounds !== undefined && open < 0
  rest.push(text(copied))
  const head: unknown = JSON.parse(split ? rest.join('') : text(0))
  if (split) return {head, entries: parseElements(bytes, bounds!)}
  const entries = (head as {entries?: unknown} | null)?.entries
  return {head, entries: Array.isArray(entries) ? entries : undefined}
}

/** Returns whether a string at depth 1 and what follows it up to a `[` make that list the value of the key `entries`. */
function isEntriesKey(key: string, between: string): boolean {
  if (!JSON_COLON.test(between)) return false
  try {
    return JSON.parse(key) === 'entries'
  } catch {
    // Not a valid string: the rest fails to parse and says so.
    return false
  }
}

/** Parses the elements between the given start/end pairs, one per step. */
function* parseElements(bytes: Buffer, bounds: number[]): Generator<unknown> {
  for (let i = 0; i < bounds.length; i += 2) yield JSON.parse(bytes.toString('utf8', bounds[i], bounds[i + 1]))
}
