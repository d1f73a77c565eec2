/**
 * Lists any resource type page by page (`limit`/`continue`), so a namespace of
 * 100,000 objects needs the memory of one page.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import {ApiError, ByteBuffer, type KubeApi} from './api.js'
import {collectionPath, type ResourceType} from './discovery.js'
import {scanList, type ScannedList} from './list-scan.js'

/** What listAll needs of a type: where its collection is, and the kind its items are. */
export type ListedType = Pick<ResourceType, 'group' | 'version' | 'apiVersion' | 'resource' | 'kind'>

/** The built-in types kubesnap lists by name, without discovery. */
export const BUILTIN_TYPES = {
  pods: {group: '', version: 'v1', apiVersion: 'v1', resource: 'pods', kind: 'Pod'},
  persistentVolumeClaims: {group: '', version: 'v1', apiVersion: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim'},
  statefulSets: {group: 'apps', version: 'v1', apiVersion: 'apps/v1', resource: 'statefulsets', kind: 'StatefulSet'},
  deployments: {group: 'apps', version: 'v1', apiVersion: 'apps/v1', resource: 'deployments', kind: 'Deployment'},
} as const satisfies Record<string, ListedType>

export interface ListOptions {
  namespace?: string
  /** Page size; the server may return fewer. Default 500. */
  limit?: number
  labelSelector?: string
  fieldSelector?: string
  /**
   * The buffer pages are read into, for a caller that lists type after type:
   * passed from one list to the next, it keeps the room the largest page
   * needed instead of growing to it again. Never shared by two lists at once.
   */
  buffer?: ByteBuffer
}

/** One listed object: parsed, for the fields code reads, and as the server sent it, for the archive. */
export interface ListedObject {
  /** The object, with `apiVersion` and `kind` set. */
  object: KubernetesObject
  /**
   * Its JSON as the server sent it (key order, escapes and large integers
   * kept), with `kind` and `apiVersion` put first when the list item lacks them.
   */
  json: string
}

/**
 * Yields every object of a type, parsed (with `apiVersion` and `kind` set,
 * which list items lack) and as the server sent it, one page in memory at a
 * time: the next page is requested once the current one is consumed
 * (prefetching measured ~20 MB more per type for no gain in time). When a
 * continue token expires (410 Gone) the list starts over and objects already
 * yielded (by uid) are not yielded again. A page stays raw bytes in one buffer
 * reused for every page; each item is decoded and parsed alone when its turn
 * comes, so only one item at a time exists as JavaScript objects and strings,
 * which die young.
 */
export async function* listAll(api: KubeApi, type: ListedType, options: ListOptions = {}): AsyncGenerator<ListedObject> {
  const path = collectionPath(type, options.namespace)
  const seen = new Set<string>()
  const page = options.buffer ?? new ByteBuffer()
  let token: string | undefined
  for (;;) {
    let bytes: Buffer
    try {
      bytes = await api.getBytes(path, page, {query: {
        limit: options.limit ?? 500,
        continue: token,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      }})
    } catch (err) {
      if (token && err instanceof ApiError && err.statusCode === 410) {
        token = undefined
        continue
      }
      throw err
    }
    const list = parseOrExplain(path, () => scanList(bytes))
    for (const span of list.items) {
      const json = bytes.toString('utf8', span.start, span.end)
      const object = parseOrExplain(path, () => parseItem(json))
      const uid = object.metadata?.uid
      if (uid) {
        if (seen.has(uid)) continue
        seen.add(uid)
      }
      yield withTypeFields(type, object, json)
    }
    token = list.metadata?.continue || undefined
    if (!token) return
  }
}

/**
 * Every object of a type in one array, through listAll: for the few lists a
 * caller needs whole at once (a namespace's pods, to find who mounts a
 * claim). `T` is the shape the caller reads; nothing checks it.
 */
export async function listObjects<T = KubernetesObject>(api: KubeApi, type: ListedType, options: ListOptions = {}): Promise<T[]> {
  const objects: T[] = []
  for await (const {object} of listAll(api, type, options)) objects.push(object as T)
  return objects
}

/** Parses one list item, which must be an object. */
function parseItem(json: string): KubernetesObject {
  const item = JSON.parse(json) as unknown
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new SyntaxError(`a list item is ${Array.isArray(item) ? 'an array' : String(item === null ? null : typeof item)}, not an object`)
  return item as KubernetesObject
}

/** Runs a parse of the page; a failure becomes the error api.get() gives for invalid JSON. */
function parseOrExplain<T extends ScannedList | KubernetesObject>(path: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new Error(`GET ${path} returned invalid JSON: ${(err as Error).message}`, {cause: err})
  }
}

/**
 * The listed object with `apiVersion` and `kind` set, in both forms. Items of
 * built-in lists lack both; they are put first in the text in the order the
 * API server writes them, so the text is byte for byte what a GET of the
 * object returns. Items that have them (custom resources) are left as they are.
 */
export function withTypeFields(type: Pick<ListedType, 'apiVersion' | 'kind'>, item: KubernetesObject, json: string): ListedObject {
  const missing: string[] = []
  if (item.kind === undefined) missing.push(`"kind":${JSON.stringify(type.kind)}`)
  if (item.apiVersion === undefined) missing.push(`"apiVersion":${JSON.stringify(type.apiVersion)}`)
  if (missing.length === 0) return {object: item, json}
  // After the item's "{": its members, or its "}" when it has none.
  const rest = json.slice(1).trimStart()
  return {
    object: {apiVersion: type.apiVersion, kind: type.kind, ...item},
    json: `{${missing.join(',')}${rest.startsWith('}') ? '' : ','}${rest}`,
  }
}
