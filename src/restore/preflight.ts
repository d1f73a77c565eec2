/**
 * The target cluster checked against what the archive needs, before any write
 * (crane's "validate against the target first"): StorageClasses the claims ask
 * for (after --map-storage-class), ServiceAccounts and image-pull Secrets the
 * pod templates name, and node ports Services chose. Every mismatch is named
 * with the flag or step that fixes it; what the identity may not see is a
 * warning that says so, never a silent pass.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {exists} from '../cluster/namespace.js'
import {storageClassUses, type ClassUse} from './storage-classes.js'

/** A name an archived object needs in the target, and which object needs it (for messages). */
export interface NeededName {
  name: string
  by: string
}

/** What the selected archived objects need from the target cluster. */
export interface TargetNeeds {
  /** StorageClasses asked for by name, after mapping. */
  storageClasses: ClassUse[]
  serviceAccounts: NeededName[]
  pullSecrets: NeededName[]
  /** Node ports Services chose (kept by cleaning), by `Service name`. */
  nodePorts: Array<{port: number; service: string}>
  /** ServiceAccounts and Secrets this restore creates. */
  restored: {serviceAccounts: Set<string>; secrets: Set<string>}
  /** ServiceAccounts and Secrets the archive holds but the selection leaves out. */
  leftOut: {serviceAccounts: Set<string>; secrets: Set<string>}
}

/** What the target cluster has; `undefined` where the identity may not tell. */
export interface TargetFacts {
  storageClasses: Set<string> | undefined
  /** Per name: present, absent, or undefined (may not read it). */
  serviceAccounts: Map<string, boolean | undefined>
  secrets: Map<string, boolean | undefined>
  /** Node ports in use, each with `namespace/service`; undefined when Services cannot be listed cluster-wide. */
  nodePorts: Map<number, string> | undefined
}

export interface PreflightResult {
  problems: string[]
  warnings: string[]
}

/** Where each type that runs pods keeps its pod spec, by `resource.group`. */
const POD_SPECS: Record<string, (raw: Record<string, any>) => Record<string, any> | undefined> = {
  'pods.': (raw) => raw.spec,
  'deployments.apps': (raw) => raw.spec?.template?.spec,
  'statefulsets.apps': (raw) => raw.spec?.template?.spec,
  'daemonsets.apps': (raw) => raw.spec?.template?.spec,
  'replicasets.apps': (raw) => raw.spec?.template?.spec,
  'replicationcontrollers.': (raw) => raw.spec?.template?.spec,
  'jobs.batch': (raw) => raw.spec?.template?.spec,
  'cronjobs.batch': (raw) => raw.spec?.jobTemplate?.spec?.template?.spec,
}

/** Types whose objects the preflight reads: claims, Services, StatefulSets' templates, and everything that runs pods. */
const READ_TYPES = new Set(['persistentvolumeclaims.', 'services.', ...Object.keys(POD_SPECS)])

/** A pod spec inside an object of a workload type, if it has one. */
export function podSpecOf(obj: KubernetesObject, type: {group: string; resource: string}): Record<string, any> | undefined {
  return POD_SPECS[`${type.resource}.${type.group}`]?.(obj as Record<string, any>)
}

/** The ServiceAccount a pod spec runs as; `default` (which every namespace gets) counts as none. */
function serviceAccountOf(spec: Record<string, any>): string | undefined {
  const name = spec.serviceAccountName ?? spec.serviceAccount
  return typeof name === 'string' && name !== '' && name !== 'default' ? name : undefined
}

/** Adds one object's needs to `needs` (an object as it will be created: cleaned and mapped). */
export function addNeeds(needs: TargetNeeds, obj: KubernetesObject, type: {group: string; resource: string; kind: string}): void {
  const name = obj.metadata?.name ?? ''
  needs.storageClasses.push(...storageClassUses(obj, type))
  const spec = podSpecOf(obj, type)
  if (spec) {
    const by = `${type.kind} ${name}`
    const account = serviceAccountOf(spec)
    if (account) needs.serviceAccounts.push({name: account, by})
    for (const s of spec.imagePullSecrets ?? []) if (typeof s?.name === 'string' && s.name) needs.pullSecrets.push({name: s.name, by})
  }
  if (type.group === '' && type.resource === 'services') {
    for (const p of (obj as any).spec?.ports ?? []) if (typeof p?.nodePort === 'number') needs.nodePorts.push({port: p.nodePort, service: name})
  }
}

/** An empty {@link TargetNeeds}. */
export function noNeeds(): TargetNeeds {
  return {storageClasses: [], serviceAccounts: [], pullSecrets: [], nodePorts: [], restored: {serviceAccounts: new Set(), secrets: new Set()}, leftOut: {serviceAccounts: new Set(), secrets: new Set()}}
}

/** Groups `where` strings by name, in first-seen order: `standard: claim a, claim b`. */
function byName<T>(items: T[], name: (t: T) => string, where: (t: T) => string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const item of items) {
    const list = out.get(name(item)) ?? []
    if (!list.includes(where(item))) list.push(where(item))
    out.set(name(item), list)
  }
  return out
}

/**
 * Compares what the archive needs with what the target has: one problem per
 * missing StorageClass, ServiceAccount, pull Secret and taken node port, each
 * with what fixes it; one warning per thing the identity may not see. Pure.
 */
export function targetProblems(needs: TargetNeeds, facts: TargetFacts, ctx: {namespace: string; assignNodePorts: boolean; sameCluster: boolean}): PreflightResult {
  const problems: string[] = []
  const warnings: string[] = []
  const classes = byName(needs.storageClasses, (u) => u.storageClass, (u) => u.where)
  // Back into the cluster the snapshot came from, its classes existed then: no warning on every ordinary restore.
  if (classes.size > 0 && facts.storageClasses === undefined && !ctx.sameCluster) {
    warnings.push(`The identity may not list StorageClasses in this cluster, so kubesnap cannot tell whether StorageClass ${[...classes.keys()].join(', ')} exist${classes.size === 1 ? 's' : ''} here (a claim of a missing class stays Pending): ask an admin (kubectl get storageclass) and map a missing one with --map-storage-class OLD=NEW.`)
  } else if (facts.storageClasses) {
    const served = [...facts.storageClasses].sort()
    for (const [name, where] of classes) {
      if (facts.storageClasses.has(name)) continue
      problems.push(`StorageClass ${name} (${where.join(', ')}) does not exist in this cluster: map it with --map-storage-class ${name}=NEW (this cluster has ${served.length > 0 ? served.join(', ') : 'no StorageClass'}).`)
    }
  }
  const references = [
    {what: 'ServiceAccount', needed: needs.serviceAccounts, restored: needs.restored.serviceAccounts, leftOut: needs.leftOut.serviceAccounts, present: facts.serviceAccounts, kind: 'serviceaccount', create: `kubectl -n ${ctx.namespace} create serviceaccount NAME`},
    {what: 'image-pull Secret', needed: needs.pullSecrets, restored: needs.restored.secrets, leftOut: needs.leftOut.secrets, present: facts.secrets, kind: 'secret', create: `kubectl -n ${ctx.namespace} create secret docker-registry NAME …`},
  ]
  for (const ref of references) {
    for (const [name, by] of byName(ref.needed, (n) => n.name, (n) => n.by)) {
      if (ref.restored.has(name)) continue
      const present = ref.present.get(name)
      if (present === true) continue
      if (present === undefined) {
        warnings.push(`The identity may not read ${ref.what} ${name} in ${ctx.namespace} (${by.join(', ')} use${by.length === 1 ? 's' : ''} it), so kubesnap cannot tell whether it exists there.`)
        continue
      }
      const fix = ref.leftOut.has(name)
        ? `the archive has it but the selection leaves it out: add --resource ${ref.kind}/${name} or widen --include-kinds`
        : `the archive does not have it: create it in ${ctx.namespace} first (${ref.create.replace('NAME', name)})`
      problems.push(`${ref.what} ${name} (used by ${by.join(', ')}) is neither restored nor present in ${ctx.namespace}: ${fix}.`)
    }
  }
  if (needs.nodePorts.length > 0 && facts.nodePorts && !ctx.assignNodePorts) {
    for (const {port, service} of needs.nodePorts) {
      const holder = facts.nodePorts.get(port)
      // The Service itself (restored over itself, --existing skip/update) holds its own port.
      if (!holder || holder === `${ctx.namespace}/${service}`) continue
      problems.push(`Service ${service} chose node port ${port}, which ${holder} holds in this cluster: free it, or pass --assign-node-ports to let the server give ${service} another port.`)
    }
  }
  return {problems, warnings}
}

/** Whether the preflight looks at an entry's object (claims, Services, everything that runs pods): the others are not prepared for it. */
export function preflightReads(entry: {group: string; resource: string}): boolean {
  return READ_TYPES.has(`${entry.resource}.${entry.group}`)
}

/**
 * The needs a restore starts with: which ServiceAccounts and Secrets it brings
 * (the selected `entries`) and which the archive has but leaves out
 * (`allEntries`, the archive's object entries). Each object the preflight reads
 * then adds its own (addNeeds) as the preconditions prepare it.
 */
export function targetNeeds(entries: readonly ObjectEntry[], allEntries: readonly ObjectEntry[]): TargetNeeds {
  const needs = noNeeds()
  const selected = new Set(entries.map((e) => e.path))
  for (const entry of allEntries) {
    const set = entry.group === '' && entry.resource === 'serviceaccounts' ? 'serviceAccounts' : entry.group === '' && entry.resource === 'secrets' ? 'secrets' : undefined
    if (set) (selected.has(entry.path) ? needs.restored : needs.leftOut)[set].add(entry.name)
  }
  return needs
}

/**
 * Asks the target what it has of what the restored objects need (`needs`,
 * gathered from the objects as restore will create them: cleaned,
 * class-mapped and modified) and returns {@link targetProblems}. Never writes.
 */
export async function checkTarget(api: KubeApi, reader: ArchiveReader, needs: TargetNeeds, options: {
  namespace: string
  namespaceExists: boolean | undefined
  assignNodePorts: boolean
}): Promise<PreflightResult> {
  const facts: TargetFacts = {storageClasses: undefined, serviceAccounts: new Map(), secrets: new Map(), nodePorts: undefined}
  if (needs.storageClasses.length > 0) {
    try {
      const list = await api.get<{items: KubernetesObject[]}>('/apis/storage.k8s.io/v1/storageclasses')
      facts.storageClasses = new Set(list.items.map((c) => c.metadata?.name ?? ''))
    } catch (err) {
      if (!isStatus(err, 403)) throw err
    }
  }
  const ask = async (names: NeededName[], restored: Set<string>, into: Map<string, boolean | undefined>, resource: string) => {
    for (const {name} of names) {
      if (restored.has(name) || into.has(name)) continue
      into.set(name, options.namespaceExists === false ? false : await exists(api, `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/${resource}/${encodeURIComponent(name)}`))
    }
  }
  await ask(needs.serviceAccounts, needs.restored.serviceAccounts, facts.serviceAccounts, 'serviceaccounts')
  await ask(needs.pullSecrets, needs.restored.secrets, facts.secrets, 'secrets')
  if (needs.nodePorts.length > 0 && !options.assignNodePorts) {
    try {
      const list = await api.get<{items: Array<KubernetesObject & {spec?: {ports?: Array<{nodePort?: number}>}}>}>('/api/v1/services')
      facts.nodePorts = new Map()
      for (const s of list.items) for (const p of s.spec?.ports ?? []) if (p.nodePort) facts.nodePorts.set(p.nodePort, `${s.metadata?.namespace}/${s.metadata?.name}`)
    } catch (err) {
      // A namespace-only identity cannot see other namespaces' ports: restore then takes an assigned port if the chosen one is taken.
      if (!isStatus(err, 403)) throw err
    }
  }
  const sameCluster = reader.manifest.cluster.server === api.config.server
  return targetProblems(needs, facts, {namespace: options.namespace, assignNodePorts: options.assignNodePorts, sameCluster})
}

