/** Whether a namespace exists, as far as the identity may tell. */
import {ApiError, type KubeApi} from './api.js'

/**
 * Returns true when the namespace exists, false when the server says it does
 * not (404), and undefined when the identity may not get namespaces (403: a
 * namespace-only identity usually may not, and RBAC answers 403 for a namespace
 * that does not exist as for one that does).
 */
export async function namespaceExists(api: KubeApi, namespace: string): Promise<boolean | undefined> {
  try {
    await api.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}`)
    return true
  } catch (err) {
    if (err instanceof ApiError && err.statusCode === 404) return false
    if (err instanceof ApiError && err.statusCode === 403) return undefined
    throw err
  }
}
