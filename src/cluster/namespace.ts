/** Whether a namespace exists, as far as the identity may tell; creating one. */
import {apiFailure, ApiError, type KubeApi} from './api.js'

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

/** Creates a namespace; a refusal is one sentence that says which right is missing. */
export async function createNamespace(api: KubeApi, namespace: string): Promise<void> {
  try {
    await api.post('/api/v1/namespaces', {apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}})
  } catch (err) {
    throw apiFailure(err, `create the namespace ${namespace}`, 'creating namespaces takes a ClusterRole a namespace-scoped identity does not have: have an administrator create it, then restore without --create-namespace')
  }
}
