/**
 * Reading a manifest's JSON one entry at a time: what `kubesnap list` needs to
 * check and count 10,000 entries without holding them all (parsed whole, a
 * 3.5 MB manifest takes ≈20 MiB of heap, most of it V8's young generation
 * grown to hold objects that all survive).
 */

import {splitArrayField, type Span, type SplitObject} from '../json-scan.js'

/** A manifest's JSON with its top-level `entries` read apart from the rest. */
export interface SplitManifest {
  /** Everything but the entries, parsed (its `entries`, when split off, is an empty list). */
  head: unknown
  /** The entries, each parsed when iterated; undefined when the text has no top-level `entries` list. */
  entries: Iterable<unknown> | undefined
}

/**
 * Splits a manifest's JSON (UTF-8 bytes) into the rest of the object and its
 * `entries` list, whose elements are decoded and parsed one at a time when
 * iterated, so a caller that checks and counts them keeps none. Accepts and
 * refuses exactly what JSON.parse of the whole text does and gives the same
 * values: the rest and every element are parsed by JSON.parse itself, and
 * only the element boundaries are found by the scan (json-scan.ts). Throws
 * JSON.parse's SyntaxError, for an element only when iteration reaches it.
 */
export function splitManifestJson(bytes: Buffer): SplitManifest {
  let split: SplitObject
  try {
    split = splitArrayField(bytes, 'entries')
  } catch {
    // Not one JSON object (a damaged or hostile manifest, or another value): parsed whole, JSON.parse says what is wrong, or gives the value.
    const head: unknown = JSON.parse(bytes.toString('utf8'))
    const entries = (head as {entries?: unknown} | null)?.entries
    return {head, entries: Array.isArray(entries) ? entries : undefined}
  }
  const head: unknown = JSON.parse(split.rest)
  if (split.elements) return {head, entries: parseElements(bytes, split.elements)}
  const entries = (head as {entries?: unknown} | null)?.entries
  return {head, entries: Array.isArray(entries) ? entries : undefined}
}

/** Parses the elements at the given spans, one per step. */
function* parseElements(bytes: Buffer, spans: Span[]): Generator<unknown> {
  for (const {start, end} of spans) yield JSON.parse(bytes.toString('utf8', start, end))
}
