/**
 * Lists any resource type page by page (`limit`/`continue`), so a namespace of
 * 100,000 objects needs the memory of one page.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import {ApiError, type KubeApi} from './api.js'
import {collectionPath, type ResourceType} from './discovery.js'

/** A list as the server sends it (raw JSON: `continue`, not client-node's `_continue`). */
interface RawList {
  items?: KubernetesObject[]
  metadata?: {continue?: string; resourceVersion?: string}
}

export interface ListOptions {
  namespace?: string
  /** Page size; the server may return fewer. Default 500. */
  limit?: number
  labelSelector?: string
  fieldSelector?: string
}

/**
 * Yields every object of a type, each with `apiVersion` and `kind` set (list
 * items lack them). The next page is requested while the current one is
 * consumed. When a continue token expires (410 Gone) the list starts over and
 * objects already yielded (by uid) are not yielded again.
 */
export async function* listAll(api: KubeApi, type: ResourceType, options: ListOptions = {}): AsyncGenerator<KubernetesObject> {
  const path = collectionPath(type, options.namespace)
  const fetchPage = (token: string | undefined): Promise<RawList> => {
    const page = api.get<RawList>(path, {query: {
      limit: options.limit ?? 500,
      continue: token,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    }})
    // Awaited later: mark it handled now so an early failure is not an unhandled rejection.
    page.catch(() => undefined)
    return page
  }
  const seen = new Set<string>()
  let token: string | undefined
  let next: Promise<RawList> | undefined = fetchPage(undefined)
  while (next) {
    let page: RawList
    try {
      page = await next
    } catch (err) {
      if (token && err instanceof ApiError && err.statusCode === 410) {
        token = undefined
        next = fetchPage(undefined)
        continue
      }
      throw err
    }
    token = page.metadata?.continue || undefined
    next = token ? fetchPage(token) : undefined
    const items = page.items ?? []
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      // Let each object go as soon as it is handed on: pages are large.
      items[i] = undefined as never
      const uid = item.metadata?.uid
      if (uid) {
        if (seen.has(uid)) continue
        seen.add(uid)
      }
      yield {apiVersion: type.apiVersion, kind: type.kind, ...item}
    }
  }
}
