/**
 * Restore's second phase: everything that must hold before the first write,
 * gathered and reported at once. The namespace and the types (checkPreconditions),
 * the archive's objects in one pass (checkObjects) against the target cluster
 * (checkTarget), and each claim's data (tar scan or VolumeSnapshots).
 */
import type {ObjectEntry, StreamEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {discoverResourceTypes, matchType, qualifiedName, type KubeApi, type ResourceType} from '../cluster/index.js'
import {EXIT, KubesnapError} from '../errors.js'
import {orderForRestore} from '../resources/priorities.js'
import {checkObjects} from './object-checks.js'
import type {RestorePlan} from './plan.js'
import {checkPreconditions, type Preconditions} from './preconditions.js'
import {addNeeds, checkTarget, preflightReads, targetNeeds} from './preflight.js'
import {selectResources} from './resource-names.js'
import {listWorkloads, type WorkloadObject, type WorkloadRef} from '../volumes/workloads.js'
import {restoreTarget} from './target.js'
import {
  archivedClaimSnapshots, checkVolumeArchives, claimCapacities, claimsWithoutData, planCsiRestore, selectedClaims, volumeEntriesOf,
  type ApprovedVolume, type ArchivedClaimSnapshot, type ClaimWithoutData, type VolumeScan,
} from './volumes.js'

/** A restore whose preconditions hold: what the write phases work from. */
export interface CheckedRestore {
  /** The namespace restored into. */
  namespace: string
  /** The archived objects to restore, in the priorities table's order. */
  entries: ObjectEntry[]
  /** Its `problems` are empty; its `warnings` go into the summary. */
  preconditions: Preconditions
  /** --volumes tar: the claims' data streams, each scanned and approved. */
  volumeEntries: StreamEntry[]
  volumesApproved: Map<string, ApprovedVolume>
  /** Claims re-created without data: the archive holds none for them. */
  withoutData: ClaimWithoutData[]
  /** --volumes csi: the claims re-created from their archived VolumeSnapshots, and each claim's snapshot name. */
  csiSnapshots?: ArchivedClaimSnapshot[]
  claimSnapshots: Record<string, string>
  /** StatefulSets and Deployments live before the restore wrote anything. */
  workloadsBefore: Array<WorkloadRef & {object: WorkloadObject}>
}

/** What a part of the check found: problems refuse the restore, warnings go into the summary. */
interface Findings {
  problems: string[]
  warnings: string[]
}

/**
 * Checks everything the restore of `reader` per `plan` needs, never writing;
 * throws one KubesnapError that lists every problem, each with its fix.
 */
export async function checkRestore(api: KubeApi, reader: ArchiveReader, plan: RestorePlan, volumeScans?: Map<string, VolumeScan>): Promise<CheckedRestore> {
  const manifest = reader.manifest
  const namespace = restoreTarget({archived: manifest.namespace, path: plan.path, namespace: plan.namespace, toNamespace: plan.toNamespace})
  const served = (await discoverResourceTypes(api)).types
  const selected = orderForRestore(selectEntries(objectEntries(manifest.entries), served, plan.select))
  // The VolumeSnapshots a csi snapshot took are the record of the data, not objects to re-create (a new one would snapshot the new, empty claim).
  const claimSnapshots = await archivedClaimSnapshots(reader)
  const snapshotPaths = new Set([...claimSnapshots.values()].map((s) => s.entry.path))
  const entries = selected.filter((e) => !snapshotPaths.has(e.path))
  const crdPaths = new Map(manifest.entries.filter((e): e is ObjectEntry => e.type === 'crd').map((e) => [e.name, e.path]))
  const preconditions = await checkPreconditions(api, {entries, served, namespace, createNamespace: plan.createNamespace, existing: plan.existing, crdPaths})
  const volumes = await checkVolumeData(api, reader, plan, {entries, namespace, namespaceExists: preconditions.namespaceExists, claimSnapshots, volumeScans})
  const objects = await checkArchivedObjects(api, reader, plan, {entries, namespace, preconditions, claimSnapshots: volumes.claimSnapshots})
  // Listed in the order a reader fixes them: the target, the archive, its data, the modifiers, the target's contents.
  const problems = [...preconditions.problems, ...objects.altered, ...volumes.problems, ...objects.problems, ...objects.target.problems]
  if (problems.length > 0) throw new KubesnapError(`Restore cannot start; nothing was changed:${problems.map((p) => `\n  - ${p}`).join('')}`)
  preconditions.warnings.push(...volumes.warnings, ...objects.warnings, ...objects.target.warnings)
  const {problems: _none, warnings: _warnings, ...data} = volumes
  return {
    namespace, entries, preconditions, ...data,
    workloadsBefore: preconditions.namespaceExists ? await listWorkloads(api, namespace) : [],
  }
}

/** The object entries of a manifest. */
function objectEntries(entries: ReadonlyArray<{type: string}>): ObjectEntry[] {
  return entries.filter((e): e is ObjectEntry => e.type === 'object')
}

/** Entries --resource and the kind flags keep; names are resolved against the target cluster's types. */
export function selectEntries(entries: ObjectEntry[], served: ResourceType[], select: RestorePlan['select']): ObjectEntry[] {
  const names = (values: string[], flag: string) => {
    const result = new Set<string>()
    for (const raw of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
      const matches = matchType(served, raw)
      if (matches.length === 0) throw new KubesnapError(`${flag}: no resource type named "${raw}" is served by this cluster.`, {exit: EXIT.usage})
      for (const m of matches) result.add(qualifiedName(m))
    }
    return result
  }
  const include = names(select.include, '--include-kinds')
  const exclude = names(select.exclude, '--exclude-kinds')
  // --resource names objects of the archive: checked against all of it, before the kind flags narrow it.
  return selectResources(entries, select.resources, served).filter((e) => {
    const name = qualifiedName(e)
    return (include.size === 0 || include.has(name)) && !exclude.has(name)
  })
}

/**
 * The claims' data: with --volumes tar each stream is scanned (a member that
 * would land outside its mount refuses the whole archive); with csi each
 * claim's VolumeSnapshot is checked; claims without data are named.
 */
async function checkVolumeData(api: KubeApi, reader: ArchiveReader, plan: RestorePlan, ctx: {
  entries: ObjectEntry[]
  namespace: string
  namespaceExists: boolean | undefined
  claimSnapshots: Map<string, ArchivedClaimSnapshot>
  volumeScans?: Map<string, VolumeScan>
}): Promise<Findings & Pick<CheckedRestore, 'volumeEntries' | 'volumesApproved' | 'withoutData' | 'csiSnapshots' | 'claimSnapshots'>> {
  const found: Findings & Pick<CheckedRestore, 'volumeEntries' | 'volumesApproved' | 'withoutData' | 'csiSnapshots' | 'claimSnapshots'> = {
    problems: [], warnings: [], volumeEntries: [], volumesApproved: new Map(), withoutData: [], claimSnapshots: {},
  }
  const manifest = reader.manifest
  const claims = plan.volumes === 'none' ? [] : await selectedClaims(reader, ctx.entries, plan.selector)
  if (plan.volumes === 'tar') {
    found.volumeEntries = volumeEntriesOf(reader, claims)
    // A partial snapshot's failed claims (and claims left out on purpose) come back empty: the summary names them.
    found.withoutData = claimsWithoutData(manifest, claims, new Set(ctx.claimSnapshots.keys()))
    const capacities = await claimCapacities(api, reader, ctx.entries, claims, ctx.namespace, ctx.namespaceExists !== false)
    const scanned = await checkVolumeArchives(reader, found.volumeEntries, capacities, ctx.volumeScans)
    found.problems.push(...scanned.problems)
    found.volumesApproved = scanned.approved
  }
  if (ctx.claimSnapshots.size === 0 && plan.volumes !== 'csi') return found
  const tarClaims = new Set(manifest.entries.filter((e) => e.type === 'volume').map((e) => e.name))
  if (plan.volumes === 'csi') {
    const csi = await planCsiRestore(api, {
      snapshots: ctx.claimSnapshots, claims, sourceNamespace: manifest.namespace, namespace: ctx.namespace, namespaceExists: ctx.namespaceExists, tarClaims,
    })
    found.problems.push(...csi.problems)
    found.warnings.push(...csi.warnings)
    found.csiSnapshots = csi.snapshots
    found.claimSnapshots = csi.claimSnapshots
  } else if (plan.volumes === 'tar') {
    const noData = claims.filter((c) => ctx.claimSnapshots.has(c) && !tarClaims.has(c))
    if (noData.length > 0) {
      found.warnings.push(`This archive was taken with --volumes csi: it holds no tar data for ${noData.map((c) => `claim ${c} (VolumeSnapshot ${ctx.claimSnapshots.get(c)!.snapshot})`).join(', ')}; only the objects are restored and a re-created claim starts empty: to restore the data, use --volumes csi.`)
    }
  }
  return found
}

/**
 * The archive's objects in one pass (checkObjects: identities, modifiers, and
 * the objects the preflight looks at, as restore will create them), then the
 * target cluster against what those need: StorageClasses, referenced accounts
 * and pull Secrets, node ports.
 */
async function checkArchivedObjects(api: KubeApi, reader: ArchiveReader, plan: RestorePlan, ctx: {
  entries: ObjectEntry[]
  namespace: string
  preconditions: Preconditions
  claimSnapshots: Record<string, string>
}): Promise<Findings & {altered: string[]; target: Findings}> {
  const sourceNamespace = reader.manifest.namespace
  const needs = targetNeeds(ctx.entries, objectEntries(reader.manifest.entries))
  const checked = await checkObjects(reader, {
    targets: ctx.preconditions.targets, sourceNamespace, targetNamespace: ctx.namespace, selector: plan.selector,
    claimSnapshots: ctx.claimSnapshots, storageClasses: plan.storageClasses, modifiers: plan.modifiers,
    entries: ctx.entries, wants: preflightReads, onObject: (entry, object) => addNeeds(needs, object, entry),
  })
  const target = await checkTarget(api, reader, needs, {
    namespace: ctx.namespace, namespaceExists: ctx.preconditions.namespaceExists, assignNodePorts: plan.assignNodePorts,
  })
  return {...checked, target}
}
