/**
 * Puts archived objects back: in the order of the priorities table, rank by
 * rank (objects of one rank in parallel), each read from the archive, cleaned,
 * and applied per the --existing policy. Per-object problems are collected.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import pLimit from 'p-limit'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {MAX_CONNECTIONS, type KubeApi} from '../cluster/api.js'
import {qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {messageOf} from '../errors.js'
import {applyObject, type ApplyOutcome, type ExistingPolicy} from '../resources/apply.js'
import {cleanForRestore} from '../resources/clean.js'
import {matchesLabels, type LabelSelector} from '../resources/label-selector.js'
import {isKubesnapHelper} from '../labels.js'
import {restoreRank} from '../resources/priorities.js'
import {identityProblem} from './identity.js'
import {mapStorageClasses, type StorageClassMap} from './storage-classes.js'
import {applyResourceModifiers, ModifierError, type ResourceModifiers} from './modifiers.js'

/**
 * Objects of one rank created at once by default: one per connection of the
 * client. The 10,000 objects of the bench took 10.1–11.8 s at 8 at once (the
 * earlier default) and 9.7–10.3 s at 16 on an idle 2-core machine; 32 at once
 * only wait for a connection.
 */
export const RESTORE_CONCURRENCY = MAX_CONNECTIONS

export interface ObjectOutcome extends ApplyOutcome {
  /** Something the operator should know about this object, though it was restored. */
  warning?: string
  /** --resource-modifiers: the rules (indexes in resourceModifierRules) that changed this object. */
  modifiedBy?: number[]
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
  /** --resource-modifiers: applied to each object after cleaning (checkObjects found no problem before any write). */
  modifiers?: ResourceModifiers
  onOutcome?: (outcome: ObjectOutcome) => void
}

/** Restores the given entries (already ordered); returns one outcome per object that matched the selector. */
export async function restoreObjects(api: KubeApi, reader: ArchiveReader, options: RestoreObjectsOptions): Promise<ObjectOutcome[]> {
  // Outcomes keep the entries' order, whatever order the parallel applies finish in.
  const outcomes: (ObjectOutcome | undefined)[] = new Array(options.entries.length)
  const limit = pLimit(options.concurrency ?? RESTORE_CONCURRENCY)
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
  const prepared = await prepareObject(reader, entry, options)
  if (!prepared) return undefined
  const named = {kind: entry.kind, resource: qualifiedName(entry), name: entry.name}
  if ('error' in prepared) return {...named, action: 'failed', error: prepared.error}
  const {object: cleaned, target, modifiedBy} = prepared
  const base = modifiedBy.length > 0 ? {...named, modifiedBy} : named
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

export type PrepareOptions = Pick<RestoreObjectsOptions, 'targets' | 'sourceNamespace' | 'targetNamespace' | 'selector' | 'claimSnapshots' | 'storageClasses' | 'modifiers'>

/** What restore would apply for one entry: the object ready to send, or why not; undefined when the selector leaves it out. */
export type Prepared = {object: KubernetesObject; target: ResourceType; modifiedBy: number[]} | {error: string; /** The modifier rules at fault, when they are. */ rules?: number[]}

/** One archived object as stored, checked against its record; or why it cannot be used. */
export type Stored = {object: KubernetesObject} | {unreadable: string} | {altered: string}

/**
 * Reads one entry's stored object and checks it is the object its record
 * names (identityProblem): the object, the read error, or how it differs.
 */
export async function readStoredObject(reader: ArchiveReader, entry: ObjectEntry, sourceNamespace: string): Promise<Stored> {
  let stored: KubernetesObject
  try {
    stored = JSON.parse((await reader.readObject(entry)).toString('utf8'))
  } catch (err) {
    return {unreadable: messageOf(err)}
  }
  const mismatch = identityProblem(stored, entry, sourceNamespace)
  return mismatch ? {altered: mismatch} : {object: stored}
}

/**
 * Reads one entry and makes it the object restore applies: checked against its
 * record, cleaned, at the served apiVersion, modified by --resource-modifiers.
 */
export async function prepareObject(reader: ArchiveReader, entry: ObjectEntry, options: PrepareOptions): Promise<Prepared | undefined> {
  const stored = await readStoredObject(reader, entry, options.sourceNamespace)
  if ('unreadable' in stored) return {error: `cannot be read from the archive: ${stored.unreadable}`}
  // Checked before any write already (checkObjects); what is applied must be what was checked.
  if ('altered' in stored) return {error: `${stored.altered}: not restored`}
  return prepareStored(stored.object, entry, options)
}

/**
 * Makes a stored object (checked against its record) the object restore
 * applies: cleaned, at the served apiVersion, modified by --resource-modifiers;
 * undefined when the selector leaves it out. A check that must see what will
 * be written (a preflight) takes it from here.
 */
export function prepareStored(stored: KubernetesObject, entry: ObjectEntry, options: PrepareOptions): Prepared | undefined {
  if (!matchesLabels(options.selector, stored.metadata?.labels)) return undefined
  // An archive made before snapshots skipped them may hold a helper pod left by a killed run: never re-created.
  if (entry.group === '' && entry.resource === 'pods' && isKubesnapHelper(stored.metadata?.labels)) return undefined
  const target = options.targets.get(qualifiedName(entry))
  if (!target) return {error: 'its type is not served by this cluster'}
  // The class map first: a modifier rule then sees (and may still change) the class the target will get.
  const cleaned = mapStorageClasses(
    cleanForRestore(stored, entry, {sourceNamespace: options.sourceNamespace, targetNamespace: options.targetNamespace, claimSnapshots: options.claimSnapshots}),
    entry, options.storageClasses ?? {},
  )
  cleaned.apiVersion = target.apiVersion
  if (!options.modifiers) return {object: cleaned, target, modifiedBy: []}
  let modified
  try {
    // Velero matches a rule's namespaces against the namespace the object was backed up from.
    modified = applyResourceModifiers(options.modifiers, cleaned, {groupResource: qualifiedName(entry), namespace: options.sourceNamespace})
  } catch (err) {
    if (err instanceof ModifierError) return {error: `${err.message} (${options.modifiers.file})`, rules: [err.rule]}
    throw err
  }
  // A patch may change the content, never which object it is: the plan, the summary and the restarts go by the record (issue 16 item 6's rule).
  const changed = identityProblem(modified.object, {...entry, version: target.version}, options.targetNamespace)
  if (changed) {
    const rules = modified.applied.map((i) => `resourceModifierRules[${i}]`).join(', ')
    return {error: `${rules} ${modified.applied.length === 1 ? 'changes' : 'change'} which object this is (${changed.replace(/^the archived object/, 'the patched object')}); a modifier may change an object's content, not its kind, apiVersion, name or namespace (--to-namespace moves the whole namespace) (${options.modifiers.file})`, rules: modified.applied}
  }
  return {object: modified.object, target, modifiedBy: modified.applied}
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
