/**
 * The items of a list answer, located in its raw bytes without parsing the
 * page (json-scan.ts): a page of 500 objects parsed whole is megabytes of
 * objects that outlive many young-generation collections, while one item
 * parsed at a time dies young. Items keep the server's exact bytes for the
 * archive.
 */
import {splitArrayField, type Span} from '../json-scan.js'

export type {Span} from '../json-scan.js'

/** A list answer as scanned: its metadata parsed, its items located. */
export interface ScannedList {
  /** The list's `metadata` (continue token, resourceVersion), parsed. */
  metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
  /** Where each element of `items` lies in the bytes, in order. */
  items: Span[]
}

/**
 * Locates the elements of a list answer's `items` array and parses the rest
 * (its `metadata`). Throws a SyntaxError when the bytes are not one JSON object.
 */
export function scanList(bytes: Buffer): ScannedList {
  const {rest, elements} = splitArrayField(bytes, 'items')
  const {metadata} = JSON.parse(rest) as {metadata?: ScannedList['metadata']}
  return {...(metadata === undefined ? {} : {metadata}), items: elements ?? []}
}
