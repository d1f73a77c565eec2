/**
 * The connection every command starts from: the kubeconfig as kubectl reads
 * it, a JSON API client for it, and the namespace to work in.
 */
import {KubeApi, type ApiClientOptions} from './api.js'
import {loadKubeConfig, type ConnectionFlags, type LoadedConfig} from './kubeconfig.js'

export interface Connection {
  config: LoadedConfig
  api: KubeApi
  namespace: string
}

/** Loads the kubeconfig for the flags and opens an API client on it. */
export function connect(flags: ConnectionFlags, options: ApiClientOptions = {}): Connection {
  const config = loadKubeConfig(flags)
  return {config, api: new KubeApi(config, options), namespace: config.namespace}
}

export {ApiError, ByteBuffer, KubeApi, apiFailure, isStatus} from './api.js'
export {collectionPath, discoverResourceTypes, matchType, namespacedListable, qualifiedName, type ResourceType} from './discovery.js'
export {BUILTIN_TYPES, listAll, listObjects, type ListedObject, type ListedType} from './paging.js'
export {canI, canIAll} from './access.js'
export {serverVersion, whoAmI} from './identity.js'
export {createNamespace, namespaceExists} from './namespace.js'
