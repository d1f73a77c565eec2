/**
 * Lists the planned types of one namespace and hands every object, as the
 * server returned it, to the archive; a few types are listed at once and each
 * list holds one page in memory at a time.
 */
import type {KubernetesObject, V1PersistentVolumeClaim} from '@kubernetes/client-node'
import pLimit from 'p-limit'
import type {SkippedItem} from '../archive/manifest.js'
import type {EntrySink, ObjectMeta} from '../archive/sink.js'
import {apiFailure, ApiError, ByteBuffer, type KubeApi} from '../cluster/api.js'
import {isBuiltinGroup, qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {listAll} from '../cluster/paging.js'
import {KubesnapError, messageOf} from '../errors.js'
import type {PlannedType} from './selection.js'
import {objectSkipReason} from './skip.js'

export interface CollectOptions {
  api: KubeApi
  namespace: string
  types: PlannedType[]
  sink: EntrySink
  labelSelector?: string
  /** Types listed at once; default 2 (each holds a page of up to 500 objects). */
  concurrency?: number
  /** Page size; default 500. */
  pageSize?: number
  onTypeDone?: (type: ResourceType, stored: number) => void
  /** Stops the listing between objects once aborted (a Ctrl-C): nothing more is stored. */
  signal?: AbortSignal
}

export interface CollectResult {
  /** Objects stored per qualified type name. */
  stored: Record<string, number>
  /** Objects left out, each with its reason. */
  skipped: SkippedItem[]
  /** Types that could not be listed (not asked for by name): the snapshot is partial. */
  unlisted: {resource: string; reason: string}[]
  /** The PersistentVolumeClaims stored, as listed: their data follows them into the snapshot. */
  claims: V1PersistentVolumeClaim[]
}

/** HTTP statuses that mean "this type cannot be listed here", not "the snapshot broke". */
const UNLISTABLE = new Set([403, 404, 405, 503])

/** Collects the objects of every planned type into the sink. */
export async function collectObjects(options: CollectOptions): Promise<CollectResult> {
  const result: CollectResult = {stored: {}, skipped: [], unlisted: [], claims: []}
  const limit = pLimit(options.concurrency ?? 2)
  // One page buffer per concurrent list, handed from type to type: it grows to a page once, not once per type.
  const buffers: ByteBuffer[] = []
  await Promise.all(options.types.map(({type, askedByName}) => limit(async () => {
    options.signal?.throwIfAborted()
    const name = qualifiedName(type)
    const buffer = buffers.pop() ?? new ByteBuffer()
    let stored = 0
    try {
      for await (const {object: obj, json} of listAll(options.api, type, {namespace: options.namespace, labelSelector: options.labelSelector, limit: options.pageSize, buffer})) {
        options.signal?.throwIfAborted()
        const reason = objectSkipReason(type, obj)
        if (reason) {
          result.skipped.push({kind: type.kind, resource: name, name: obj.metadata?.name, reason})
          continue
        }
        await options.sink.addObject(objectMeta(type, obj), json)
        if (type.group === '' && type.resource === 'persistentvolumeclaims') result.claims.push(obj as V1PersistentVolumeClaim)
        stored++
      }
    } catch (err) {
      if (err instanceof ApiError && UNLISTABLE.has(err.statusCode)) {
        const reason = err.statusCode === 403 ? `forbidden: ${err.message}` : `${err.statusCode}: ${err.message}`
        if (askedByName) {
          throw new KubesnapError(`Cannot list ${name} in namespace ${options.namespace} (${reason}); grant list on it or leave it out of --include-kinds.`)
        }
        result.unlisted.push({resource: name, reason})
        return
      }
      if (err instanceof KubesnapError) throw err
      throw new KubesnapError(`Listing ${name} in namespace ${options.namespace} failed (${messageOf(err)}); try again, or leave it out with --exclude-kinds.`, {cause: err})
    } finally {
      buffers.push(buffer)
    }
    result.stored[name] = stored
    options.onTypeDone?.(type, stored)
  })))
  result.skipped.sort((a, b) => a.resource.localeCompare(b.resource) || (a.name ?? '').localeCompare(b.name ?? ''))
  result.unlisted.sort((a, b) => a.resource.localeCompare(b.resource))
  return result
}

/**
 * Adds the CustomResourceDefinitions of the listed custom types, when the
 * identity may read them (CRDs are cluster-scoped: a namespace-only identity
 * usually may not, and the snapshot does not need them).
 */
export async function collectCrds(api: KubeApi, types: ResourceType[], sink: EntrySink): Promise<{stored: number; readable: boolean}> {
  const custom = types.filter(mayBeCustom)
  if (custom.length === 0) return {stored: 0, readable: true}
  let list: {items?: KubernetesObject[]}
  try {
    list = await api.get('/apis/apiextensions.k8s.io/v1/customresourcedefinitions')
  } catch (err) {
    if (err instanceof ApiError && UNLISTABLE.has(err.statusCode)) return {stored: 0, readable: false}
    throw apiFailure(err, 'list the CustomResourceDefinitions of the namespace\'s custom types')
  }
  const wanted = new Set(custom.map((t) => `${t.resource}.${t.group}`))
  let stored = 0
  for (const crd of list.items ?? []) {
    const name = crd.metadata?.name ?? ''
    if (!wanted.has(name)) continue
    const object = {apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', ...crd}
    await sink.addObject({type: 'crd', kind: 'CustomResourceDefinition', group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', name}, JSON.stringify(object))
    stored++
  }
  return {stored, readable: true}
}

/**
 * Whether a type can be defined by a CRD. A CRD in a `*.k8s.io` group needs an
 * API-review approval, so those are upstream's own; the VolumeSnapshot CRDs are one.
 */
function mayBeCustom(type: ResourceType): boolean {
  return !isBuiltinGroup(type.group) || type.group === 'snapshot.storage.k8s.io'
}

function objectMeta(type: ResourceType, obj: KubernetesObject): ObjectMeta {
  return {kind: type.kind, group: type.group, version: type.version, resource: type.resource, name: obj.metadata?.name ?? ''}
}
