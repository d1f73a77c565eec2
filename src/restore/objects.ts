/**
 * Puts archived objects back: in the order of the priorities table, rank by
 * rank (objects of one rank in parallel), each read from the archive, cleaned,
 * and applied per the --existing policy. Per-object problems are collected.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import pLimit from 'p-limit'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import type {KubeApi} from '../cluster/api.js'
import {qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {messageOf} from '../errors.js'
import {applyObject, type ApplyOutcome, type ExistingPolicy} from '../resources/apply.js'
import {cleanForRestore} from '../resources/clean.js'
import {matchesLabels, type LabelSelector} from '../resources/label-selector.js'
import {isKubesnapHelper} from '../labels.js'
import {restoreRank} from '../resources/priorities.js'
import {identityProblem} from './identity.js'
import {mapStorageClasses, type StorageClassMap} from './storage-classes.js'

export interface ObjectOutcome extends ApplyOutcome {
  /** Something the operator should know about this object, though it was restored. */
  warning?: string
  kind: string
  /** `resource.group`, or just `resource` for the core group (kubectl's spelling, as in the snapshot's `skipped`) */
  resource: string
  name: string
}

export interface RestoreObjectsOptions {
  entries: ObjectEntry[]
  /** By qualifiedName (checkPreconditions). */
  targets: Map<string, ResourceType>
  sourceNamespace: string
  targetNamespace: string
  selector: LabelSelector
  existing: ExistingPolicy
  dryRun: boolean
  concurrency?: number
  /** --volumes csi: the VolumeSnapshot each claim is re-created from (see cleanForRestore). */
  claimSnapshots?: Record<string, string>
  /** --map-storage-class: claims and StatefulSet templates of an OLD class get the NEW one. */
  storageClasses?: StorageClassMap
  onOutcome?: (outcome: ObjectOutcome) => void
}

/** Restores the given entries (already ordered); returns one outcome per object that matched the selector. */
export async function restoreObjects(api: KubeApi, reader: ArchiveReader, options: RestoreObjectsOptions): Promise<ObjectOutcome[]> {
  // Outcomes keep the entries' order, whatever order the parallel applies finish in.
  const outcomes: (ObjectOutcome | undefined)[] = new Array(options.entries.length)
  const limit = pLimit(options.concurrency ?? 8)
  let start = 0
  for (const rank of groupByRank(options.entries)) {
    const offset = start
    await Promise.all(rank.map((entry, i) => limit(async () => {
      const outcome = await restoreOne(api, reader, entry, options)
      outcomes[offset + i] = outcome
      if (outcome) options.onOutcome?.(outcome)
    })))
    start += rank.length
  }
  return outcomes.filter((o): o is ObjectOutcome => o !== undefined)
}

async function restoreOne(api: KubeApi, reader: ArchiveReader, entry: ObjectEntry, options: RestoreObjectsOptions): Promise<ObjectOutcome | undefined> {
  const key = qualifiedName(entry)
  const base = {kind: entry.kind, resource: key, name: entry.name}
  let stored: KubernetesObject
  try {
    stored = JSON.parse((await reader.readObject(entry)).toString('utf8'))
  } catch (err) {
    return {...base, action: 'failed', error: `cannot be read from the archive: ${messageOf(err)}`}
  }
  // Checked before any write already (checkObjectIdentities); what is applied must be what was checked.
  const mismatch = identityProblem(stored, entry, options.sourceNamespace)
  if (mismatch) return {...base, action: 'failed', error: `${mismatch}: not restored`}
  if (!matchesLabels(options.selector, stored.metadata?.labels)) return undefined
  // An archive made before snapshots skipped them may hold a helper pod left by a killed run: never re-created.
  if (entry.group === '' && entry.resource === 'pods' && isKubesnapHelper(stored.metadata?.labels)) return undefined
  const target = options.targets.get(key)
  if (!target) return {...base, action: 'failed', error: 'its type is not served by this cluster'}
  const cleaned = mapStorageClasses(
    cleanForRestore(stored, entry, {sourceNamespace: options.sourceNamespace, targetNamespace: options.targetNamespace, claimSnapshots: options.claimSnapshots}),
    entry, options.storageClasses ?? {},
  )
  cleaned.apiVersion = target.apiVersion
  const outcome = await applyObject(api, target, cleaned, {existing: options.existing, dryRun: options.dryRun})
  if (outcome.action === 'failed' && entry.resource === 'services' && /port is already allocated/.test(outcome.error ?? '')) {
    // A node port is cluster-wide: a copy restored beside its original (a DR
    // drill with --to-namespace) cannot have it. Let the server assign one.
    const retried = await applyObject(api, target, withoutNodePorts(cleaned), {existing: options.existing, dryRun: options.dryRun})
    if (retried.action !== 'failed') return {...base, ...retried, warning: `its node ports are taken in this cluster (${outcome.error}); restored with ports the server assigned`}
  }
  if (outcome.action === 'failed' && entry.group === 'rbac.authorization.k8s.io' && /not currently held/.test(outcome.error ?? '')) {
    return {...base, ...outcome, error: `${outcome.error}; this Role or RoleBinding grants rights kubesnap's identity does not hold: restore it as an admin, or give the identity escalate and bind (kubesnap rbac --restore-rbac)`}
  }
  return {...base, ...outcome}
}

function withoutNodePorts(service: KubernetesObject): KubernetesObject {
  const spec = (service as {spec?: {ports?: {nodePort?: number}[]}}).spec
  return {...service, spec: {...spec, ports: spec?.ports?.map(({nodePort: _nodePort, ...port}) => port)}} as KubernetesObject
}

/** Entries split into consecutive runs of equal restore rank (the input is ordered). */
function groupByRank(entries: ObjectEntry[]): ObjectEntry[][] {
  const groups: ObjectEntry[][] = []
  let last: number | undefined
  for (const entry of entries) {
    const rank = restoreRank(entry.group, entry.resource)
    if (rank !== last) groups.push([])
    groups[groups.length - 1].push(entry)
    last = rank
  }
  return groups
}
