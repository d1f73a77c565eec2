/**
 * After data and configuration are back: which StatefulSets and Deployments
 * must restart to see them, the restart itself (`kubectl rollout restart`'s
 * annotation), and waiting as `kubectl rollout status` does, also for the
 * workloads the restore created.
 */
import {setTimeout as sleep} from 'node:timers/promises'
import {apiFailure, type KubeApi} from '../cluster/api.js'
import {BUILTIN_TYPES, listObjects} from '../cluster/paging.js'
import {messageOf} from '../errors.js'
import type {SecurityContextLike} from '../volumes/identity.js'

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'

export type WorkloadKind = 'StatefulSet' | 'Deployment'

/** A StatefulSet or Deployment, as the API returns it (the parts read here). */
export interface WorkloadObject {
  kind?: string
  metadata?: {name?: string; generation?: number}
  spec?: {
    replicas?: number
    template?: {spec?: PodSpecLike}
    volumeClaimTemplates?: Array<{metadata?: {name?: string}}>
    updateStrategy?: {type?: string; rollingUpdate?: {partition?: number}}
  }
  status?: {
    observedGeneration?: number
    replicas?: number
    updatedReplicas?: number
    readyReplicas?: number
    availableReplicas?: number
    currentRevision?: string
    updateRevision?: string
  }
}

interface ContainerLike {
  securityContext?: SecurityContextLike
  volumeMounts?: Array<{name?: string}>
  env?: Array<{valueFrom?: {secretKeyRef?: {name?: string}; configMapKeyRef?: {name?: string}}}>
  envFrom?: Array<{secretRef?: {name?: string}; configMapRef?: {name?: string}}>
}

export interface PodSpecLike {
  securityContext?: SecurityContextLike
  containers?: ContainerLike[]
  initContainers?: ContainerLike[]
  volumes?: Array<{
    name?: string
    secret?: {secretName?: string}
    configMap?: {name?: string}
    persistentVolumeClaim?: {claimName?: string}
    projected?: {sources?: Array<{secret?: {name?: string}; configMap?: {name?: string}}>}
  }>
}

/** A workload named by kind and name. */
export interface WorkloadRef {
  kind: WorkloadKind
  name: string
}

export const workloadKey = (ref: WorkloadRef): string => `${ref.kind}/${ref.name}`

/** The API path of a workload (or of its collection when `name` is empty). */
export function workloadPath(namespace: string, ref: {kind: WorkloadKind; name?: string}): string {
  const collection = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${ref.kind === 'StatefulSet' ? 'statefulsets' : 'deployments'}`
  return ref.name ? `${collection}/${encodeURIComponent(ref.name)}` : collection
}

/** What a pod template reads: Secrets and ConfigMaps (volumes, env, envFrom) and claims. */
export interface TemplateUses {
  secrets: Set<string>
  configMaps: Set<string>
  claims: Set<string>
}

/** The Secrets, ConfigMaps and claims a pod spec refers to. */
export function templateUses(spec: PodSpecLike | undefined): TemplateUses {
  const uses: TemplateUses = {secrets: new Set(), configMaps: new Set(), claims: new Set()}
  const add = (set: Set<string>, name: string | undefined) => name && set.add(name)
  for (const volume of spec?.volumes ?? []) {
    add(uses.secrets, volume.secret?.secretName)
    add(uses.configMaps, volume.configMap?.name)
    add(uses.claims, volume.persistentVolumeClaim?.claimName)
    for (const source of volume.projected?.sources ?? []) {
      add(uses.secrets, source.secret?.name)
      add(uses.configMaps, source.configMap?.name)
    }
  }
  for (const container of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    for (const env of container.env ?? []) {
      add(uses.secrets, env.valueFrom?.secretKeyRef?.name)
      add(uses.configMaps, env.valueFrom?.configMapKeyRef?.name)
    }
    for (const from of container.envFrom ?? []) {
      add(uses.secrets, from.secretRef?.name)
      add(uses.configMaps, from.configMapRef?.name)
    }
  }
  return uses
}

/** Whether a workload's pods mount `claim`: named in the template, or one of a StatefulSet's `<template>-<name>-<ordinal>` claims. */
export function mountsClaim(kind: WorkloadKind, workload: WorkloadObject, claim: string): boolean {
  if (templateUses(workload.spec?.template?.spec).claims.has(claim)) return true
  if (kind !== 'StatefulSet') return false
  const name = workload.metadata?.name ?? ''
  return (workload.spec?.volumeClaimTemplates ?? []).some((t) => {
    const prefix = `${t.metadata?.name}-${name}-`
    return claim.startsWith(prefix) && /^\d+$/.test(claim.slice(prefix.length))
  })
}

/** What the restore changed that running pods would not see by themselves. */
export interface RestoredChanges {
  secrets: Set<string>
  configMaps: Set<string>
  /** Claims whose data was written while their pods ran (--live). */
  claims: Set<string>
}

/**
 * What a restore's outcomes changed that running pods would not see: Secrets
 * and ConfigMaps created, or updated with a difference (an update that changed
 * nothing restarts nothing), and claims written into a live pod. `scaled` are
 * the workloads already restarted by being scaled down and up. Pure.
 */
export function restoredChanges(
  outcomes: ReadonlyArray<{resource: string; name: string; action: string; diff?: string[]}>,
  volumes: ReadonlyArray<{claim: string; action: string; target: string; scaled?: WorkloadRef}>,
): {changes: RestoredChanges; scaled: Set<string>} {
  const changed = (resource: string) => new Set(outcomes
    .filter((o) => o.resource === resource && (o.action === 'create' || (o.action === 'update' && (o.diff?.length ?? 0) > 0)))
    .map((o) => o.name))
  return {
    changes: {
      secrets: changed('secrets'),
      configMaps: changed('configmaps'),
      claims: new Set(volumes.filter((v) => v.action === 'restored' && v.target.startsWith('live ')).map((v) => v.claim)),
    },
    scaled: new Set(volumes.flatMap((v) => (v.scaled ? [workloadKey(v.scaled)] : []))),
  }
}

/** A live workload and why it must restart. */
export interface RestartPlan extends WorkloadRef {
  reasons: string[]
  /** Why the restart could not be done (the run goes on; the workload runs on what it read before). */
  error?: string
}

/**
 * The workloads to restart: those among `existing` (live before the restore;
 * new ones start with everything in place) whose pods read a restored Secret
 * or ConfigMap or mount a claim written live, minus `skip` (already restarted
 * by being scaled down and up). Pure.
 */
export function planRestarts(existing: Array<WorkloadRef & {object: WorkloadObject}>, changes: RestoredChanges, skip: Set<string>): RestartPlan[] {
  const plans: RestartPlan[] = []
  for (const workload of existing) {
    if (skip.has(workloadKey(workload))) continue
    if ((workload.object.spec?.replicas ?? 1) === 0) continue
    const uses = templateUses(workload.object.spec?.template?.spec)
    const reasons = [
      ...[...uses.secrets].filter((s) => changes.secrets.has(s)).map((s) => `Secret ${s}`),
      ...[...uses.configMaps].filter((c) => changes.configMaps.has(c)).map((c) => `ConfigMap ${c}`),
      ...[...changes.claims].filter((c) => mountsClaim(workload.kind, workload.object, c)).map((c) => `claim ${c}`),
    ]
    if (reasons.length > 0) plans.push({kind: workload.kind, name: workload.name, reasons})
  }
  return plans
}

/** The namespace's StatefulSets and Deployments. */
export async function listWorkloads(api: KubeApi, namespace: string): Promise<Array<WorkloadRef & {object: WorkloadObject}>> {
  const out: Array<WorkloadRef & {object: WorkloadObject}> = []
  for (const kind of ['StatefulSet', 'Deployment'] as const) {
    const type = kind === 'StatefulSet' ? BUILTIN_TYPES.statefulSets : BUILTIN_TYPES.deployments
    for (const object of await listObjects<WorkloadObject>(api, type, {namespace})) out.push({kind, name: object.metadata?.name ?? '', object})
  }
  return out
}

/** Restarts a workload's pods as `kubectl rollout restart` does: a new restartedAt annotation on its template. */
export async function rolloutRestart(api: KubeApi, namespace: string, ref: WorkloadRef, now = new Date()): Promise<void> {
  const patch = {spec: {template: {metadata: {annotations: {[RESTARTED_AT]: now.toISOString().replace(/\.\d{3}Z$/, 'Z')}}}}}
  try {
    await api.patch(workloadPath(namespace, ref), JSON.stringify(patch), 'application/strategic-merge-patch+json', {query: {fieldManager: 'kubesnap'}})
  } catch (err) {
    const resource = ref.kind === 'StatefulSet' ? 'statefulsets.apps' : 'deployments.apps'
    throw apiFailure(err, `restart ${ref.kind}/${ref.name} (a patch of its pod template, as kubectl rollout restart does)`, `the identity needs patch on ${resource} in ${namespace}: grant it in its Role (kubesnap rbac -n ${namespace} --for restore prints one) and run again`)
  }
}

/** Whether a rollout is complete, with `kubectl rollout status`'s rules, and what it waits for when not. Pure. */
export function rolloutStatus(kind: WorkloadKind, workload: WorkloadObject): {done: boolean; waiting?: string} {
  const spec = workload.spec ?? {}
  const status = workload.status ?? {}
  const want = spec.replicas ?? 1
  if ((status.observedGeneration ?? 0) < (workload.metadata?.generation ?? 0)) return {done: false, waiting: 'the controller has not seen the latest spec yet'}
  const updated = status.updatedReplicas ?? 0
  const ready = status.readyReplicas ?? 0
  if (kind === 'Deployment') {
    if (updated < want) return {done: false, waiting: `${updated} of ${want} replicas updated`}
    if ((status.replicas ?? 0) > updated) return {done: false, waiting: `${(status.replicas ?? 0) - updated} old replicas pending termination`}
    if ((status.availableReplicas ?? 0) < updated || ready < want) return {done: false, waiting: `${Math.min(status.availableReplicas ?? 0, ready)} of ${want} replicas available`}
    return {done: true}
  }
  if (ready < want) return {done: false, waiting: `${ready} of ${want} pods ready`}
  const partition = spec.updateStrategy?.type === 'OnDelete' ? undefined : spec.updateStrategy?.rollingUpdate?.partition ?? 0
  if (partition === 0 && want > 0) {
    if (updated < want) return {done: false, waiting: `${updated} of ${want} pods updated`}
    if (status.currentRevision !== status.updateRevision) return {done: false, waiting: `revision ${status.updateRevision} rolling out`}
  }
  return {done: true}
}

/** How one workload's wait ended. */
export interface RolloutResult extends WorkloadRef {
  ready: boolean
  /** What it still waited for at the deadline, or why it could not be read. */
  waiting?: string
}

/** Waits until every workload's rollout is complete or the deadline passes; never throws for a workload that is slow or gone. */
export async function waitForRollouts(api: KubeApi, namespace: string, refs: WorkloadRef[], options: {timeoutMs: number; onStatus?: (line: string) => void; signal?: AbortSignal}): Promise<RolloutResult[]> {
  const deadline = Date.now() + options.timeoutMs
  const results = new Map<string, RolloutResult>(refs.map((ref) => [workloadKey(ref), {...ref, ready: false}]))
  for (;;) {
    const pending = [...results.values()].filter((r) => !r.ready)
    for (const result of pending) {
      try {
        const object = await api.get<WorkloadObject>(workloadPath(namespace, result))
        const status = rolloutStatus(result.kind, object)
        result.ready = status.done
        result.waiting = status.waiting
      } catch (err) {
        result.waiting = `cannot be read: ${messageOf(err)}`
      }
    }
    const left = [...results.values()].filter((r) => !r.ready)
    // A signal ends the wait too: the run reports at once what was not ready yet.
    if (left.length === 0 || Date.now() > deadline || options.signal?.aborted) return [...results.values()]
    options.onStatus?.(`waiting for ${left.map((r) => `${workloadKey(r)} (${r.waiting})`).join(', ')}`)
    await sleep(1000)
  }
}

/** Parses a kubectl-style duration (`90s`, `5m`, `1h30m`, or plain seconds) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text)
  if (!match || text === '') return undefined
  const [, h = '0', m = '0', s = '0'] = match
  return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000
}
