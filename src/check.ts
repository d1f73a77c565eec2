/**
 * `kubesnap check`: can we reach the cluster, who are we, does the namespace
 * exist, and which namespaced types can we list there.
 */
import type {KubeApi} from './cluster/api.js'
import {ApiError, canIAll, discoverResourceTypes, namespacedListable, qualifiedName, serverVersion, whoAmI} from './cluster/index.js'
import type {Identity} from './cluster/identity.js'
import {KubesnapError} from './errors.js'

export interface TypeAccess {
  /** `resource.group` as kubectl spells it. */
  name: string
  apiVersion: string
  kind: string
  canList: boolean
}

export interface CheckResult {
  server: string
  serverVersion: string
  context: string
  identity: Identity
  namespace: string
  /** true, or undefined when the identity may not read the Namespace object. */
  namespaceExists: true | undefined
  types: TypeAccess[]
  discoveryFailures: {groupVersion: string; error: string}[]
}

/** Runs every check; throws a KubesnapError sentence on the fatal ones. */
export async function checkNamespace(api: KubeApi, namespace: string): Promise<CheckResult> {
  const version = await serverVersion(api)
  const namespaceExists = await namespaceStatus(api, namespace)
  const identity = await whoAmI(api)
  const discovery = await discoverResourceTypes(api)
  const candidates = namespacedListable(discovery.types)
  const answers = await canIAll(api, candidates.map((t) => ({verb: 'list', group: t.group, resource: t.resource, namespace})))
  return {
    server: api.config.server,
    serverVersion: version.gitVersion,
    context: api.config.context,
    identity,
    namespace,
    namespaceExists,
    types: candidates.map((t, i) => ({name: qualifiedName(t), apiVersion: t.apiVersion, kind: t.kind, canList: answers[i].allowed})),
    discoveryFailures: discovery.failed,
  }
}

/** Confirms the namespace exists; undefined when the identity may not tell. */
async function namespaceStatus(api: KubeApi, namespace: string): Promise<true | undefined> {
  try {
    await api.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}`)
    return true
  } catch (err) {
    if (err instanceof ApiError && err.statusCode === 404) {
      throw new KubesnapError(`The namespace "${namespace}" does not exist on ${api.config.server}; create it or pick another with -n.`)
    }
    if (err instanceof ApiError && err.statusCode === 403) return undefined
    throw err
  }
}
