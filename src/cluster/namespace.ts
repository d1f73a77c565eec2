/** Whether a namespace exists, as far as the identity may tell; creating one. */
import {apiFailure, isStatus, type KubeApi} from './api.js'

/**
 * Returns true when the namespace exists, false when the server says it does
 * not (404), and undefined when the identity may not get namespaces (403: a
 * namespace-only identity usually may not, and RBAC answers 403 for a namespace
 * that does not exist as for one that does).
 */
export function namespaceExists(api: KubeApi, namespace: string): Promise<boolean | undefined> {
  return exists(api, `/api/v1/namespaces/${encodeURIComponent(namespace)}`)
}

/** Whether the object at `path` exists: true, false on 404, undefined when the identity may not get it (403). */
export async function exists(api: KubeApi, path: string): Promise<boolean | undefined> {
  try {
    await api.get(path)
    return true
  } catch (err) {
    if (isStatus(err, 404)) return false
    if (isStatus(err, 403)) return undefined
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
