/**
 * The namespace's StatefulSets and Deployments as kubesnap reads them: what
 * their pod templates use (Secrets, ConfigMaps, claims), which of them mounts
 * a claim, and where the API serves them. Read by the snapshot (a helper runs
 * as the claim's workload runs), check, and the restore (scaling, restarts).
 */
import type {KubeApi} from '../cluster/api.js'
import {BUILTIN_TYPES, listObjects} from '../cluster/paging.js'
import type {SecurityContextLike} from './identity.js'

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

/** The namespace's StatefulSets and Deployments. */
export async function listWorkloads(api: KubeApi, namespace: string): Promise<Array<WorkloadRef & {object: WorkloadObject}>> {
  const out: Array<WorkloadRef & {object: WorkloadObject}> = []
  for (const kind of ['StatefulSet', 'Deployment'] as const) {
    const type = kind === 'StatefulSet' ? BUILTIN_TYPES.statefulSets : BUILTIN_TYPES.deployments
    for (const object of await listObjects<WorkloadObject>(api, type, {namespace})) out.push({kind, name: object.metadata?.name ?? '', object})
  }
  return out
}
