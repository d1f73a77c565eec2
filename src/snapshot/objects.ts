/**
 * The object phases of a snapshot: check the namespace, discover the types to
 * list, and list every object of them into the archive, raw, with the
 * CustomResourceDefinitions of its custom types when they are readable.
 */
import type {V1PersistentVolumeClaim} from '@kubernetes/client-node'
import type {SkippedItem} from '../archive/manifest.js'
import {discoverResourceTypes, namespaceExists, qualifiedName} from '../cluster/index.js'
import type {KubeApi} from '../cluster/api.js'
import {KubesnapError} from '../errors.js'
import type {SnapshotSettings} from '../plan/settings.js'
import {collectCrds, collectObjects} from '../resources/collect.js'
import {planTypes, type TypePlan} from '../resources/selection.js'
import type {SnapshotProgress} from './progress.js'
import type {Unlisted} from './summary.js'
import type {SnapshotArchive} from './take.js'

export interface ObjectsContext {
  api: KubeApi
  namespace: string
  /** The API server's URL, for the message about a namespace that does not exist. */
  server: string
  archive: SnapshotArchive
  settings: Pick<SnapshotSettings, 'includeKinds' | 'excludeKinds' | 'selector'>
  progress: SnapshotProgress
  concurrency?: number
  signal?: AbortSignal
}

/** What the object phases stored and left out. */
export interface ListedObjects {
  /** Whether the namespace exists, as far as the identity may tell (undefined: it may not get namespaces). */
  exists: boolean | undefined
  /** Objects stored (CRDs not counted). */
  objects: number
  /** Left out on purpose, by the type plan and the skip rules. */
  skipped: SkippedItem[]
  /** Types (or group versions) that could not be listed: the snapshot is partial. */
  unlisted: Unlisted[]
  crdsReadable: boolean
  /** The claims stored: their data follows (so -l and --include-kinds select volumes too). */
  claims: V1PersistentVolumeClaim[]
}

/** Runs the discovery and listing phases; returns what they stored and left out. */
export async function storeObjects(context: ObjectsContext): Promise<ListedObjects> {
  const {api, namespace, settings, progress} = context
  const discovered = await progress.phase('Discover resource types', async (report) => {
    // A typo in -n or a plan must not make "successful" empty backups forever.
    const exists = await namespaceExists(api, namespace)
    if (exists === false) throw new KubesnapError(`The namespace ${namespace} does not exist on ${context.server}; check the name given with -n (or the plan's namespace).`)
    const discovery = await discoverResourceTypes(api)
    const plan: TypePlan = planTypes(discovery.types, {includeKinds: settings.includeKinds, excludeKinds: settings.excludeKinds})
    const unlisted = discovery.failed.map((failure) => ({resource: failure.groupVersion, reason: `discovery failed: ${failure.error}`}))
    report.title = `Discovered ${plan.types.length} types to list in ${namespace}`
    return {exists, plan, unlisted}
  })
  const {plan} = discovered
  return progress.phase(`List objects into snapshot ${context.archive.number}`, async (report) => {
    let done = 0
    const collected = await collectObjects({
      api, namespace, types: plan.types, sink: context.archive, labelSelector: settings.selector, concurrency: context.concurrency, signal: context.signal,
      onTypeDone: (type, stored) => {
        done++
        if (stored > 0) report.output = `${qualifiedName(type)}: ${stored}`
        report.title = `Listed ${done}/${plan.types.length} types`
      },
    })
    const objects = Object.values(collected.stored).reduce((a, b) => a + b, 0)
    const listed = plan.types.map((p) => p.type).filter((t) => collected.stored[qualifiedName(t)] > 0)
    const crdsReadable = (await collectCrds(api, listed, context.archive)).readable
    report.title = `Listed ${objects} objects of ${listed.length} types`
    return {
      exists: discovered.exists, objects, skipped: [...plan.skipped, ...collected.skipped], unlisted: [...discovered.unlisted, ...collected.unlisted],
      crdsReadable, claims: collected.claims,
    }
  })
}
