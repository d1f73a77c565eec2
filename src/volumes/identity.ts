/**
 * Who a helper pod runs as. A helper runs *as the application runs*: the
 * pod-level ids, fsGroup and SELinux options of the pod that mounts the claim
 * (the mounting container's own runAsUser, runAsGroup and seLinuxOptions win,
 * as they do for that container), taken from the live pod, or, after a
 * disaster when no pod runs, from the workload whose template mounts the
 * claim. Pure functions over pod specs, so every rule has a table test.
 */

import {isKubesnapHelper} from '../labels.js'

/** The parts of a pod's or container's securityContext read here. */
export interface SecurityContextLike {
  runAsUser?: number
  runAsGroup?: number
  runAsNonRoot?: boolean
  fsGroup?: number
  fsGroupChangePolicy?: string
  supplementalGroups?: number[]
  seLinuxOptions?: Record<string, string>
}

/** The parts of a pod spec read here (a live pod's or a workload template's). */
export interface IdentityPodSpec {
  securityContext?: SecurityContextLike
  volumes?: Array<{name?: string; persistentVolumeClaim?: {claimName?: string}}>
  containers?: IdentityContainer[]
  initContainers?: IdentityContainer[]
}

interface IdentityContainer {
  securityContext?: SecurityContextLike
  volumeMounts?: Array<{name?: string}>
}

/** A StatefulSet, Deployment or other pod-template owner, as read here. */
export interface IdentityWorkload {
  kind?: string
  metadata?: {name?: string}
  spec?: {
    template?: {spec?: IdentityPodSpec}
    jobTemplate?: {spec?: {template?: {spec?: IdentityPodSpec}}}
    volumeClaimTemplates?: Array<{metadata?: {name?: string}}>
  }
}

/**
 * The pod-level securityContext a helper takes over from the application: the
 * same fields, merged from the pod and its mounting container (`runAsNonRoot`:
 * the application never runs as root, its uid may come from its image).
 */
export type AppIdentity = SecurityContextLike

/** An application identity and where it was read, for messages (`pod db-0`, `StatefulSet db in the archive`). */
export interface IdentitySource {
  identity: AppIdentity
  from: string
}

/**
 * The identity of the container in `spec` that mounts one of `volumeNames`
 * (the first such container; init containers after the others), or
 * undefined when none does.
 */
export function identityOfSpec(spec: IdentityPodSpec | undefined, volumeNames: ReadonlySet<string>): AppIdentity | undefined {
  if (!spec || volumeNames.size === 0) return undefined
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? [])]
  const mounting = containers.find((c) => (c.volumeMounts ?? []).some((m) => m.name !== undefined && volumeNames.has(m.name)))
  if (!mounting) return undefined
  const pod = spec.securityContext ?? {}
  const own = mounting.securityContext ?? {}
  const identity: AppIdentity = {
    runAsUser: own.runAsUser ?? pod.runAsUser,
    runAsGroup: own.runAsGroup ?? pod.runAsGroup,
    runAsNonRoot: own.runAsNonRoot ?? pod.runAsNonRoot,
    fsGroup: pod.fsGroup,
    fsGroupChangePolicy: pod.fsGroupChangePolicy,
    supplementalGroups: pod.supplementalGroups?.length ? [...pod.supplementalGroups] : undefined,
    seLinuxOptions: own.seLinuxOptions ?? pod.seLinuxOptions,
  }
  return Object.fromEntries(Object.entries(identity).filter(([, v]) => v !== undefined)) as AppIdentity
}

/** The names of the volumes of `spec` that are claim `claim`. */
function claimVolumes(spec: IdentityPodSpec | undefined, claim: string): Set<string> {
  return new Set((spec?.volumes ?? []).flatMap((v) => (v.name !== undefined && v.persistentVolumeClaim?.claimName === claim ? [v.name] : [])))
}

/** The identity of the container of a live pod that mounts `claim`. */
export function identityOfPod(pod: {spec?: IdentityPodSpec}, claim: string): AppIdentity | undefined {
  return identityOfSpec(pod.spec, claimVolumes(pod.spec, claim))
}

/**
 * The identity of the container of a workload's pod template that mounts
 * `claim`: through its volumes, or for a StatefulSet through a claim template
 * (`<template>-<set>-<ordinal>` is mounted as volume `<template>`).
 */
export function identityOfWorkload(workload: IdentityWorkload, claim: string): AppIdentity | undefined {
  const spec = workload.spec?.template?.spec ?? workload.spec?.jobTemplate?.spec?.template?.spec
  const names = claimVolumes(spec, claim)
  if (workload.kind === 'StatefulSet') {
    const set = workload.metadata?.name ?? ''
    for (const template of workload.spec?.volumeClaimTemplates ?? []) {
      const prefix = `${template.metadata?.name}-${set}-`
      if (claim.startsWith(prefix) && /^\d+$/.test(claim.slice(prefix.length))) names.add(template.metadata!.name!)
    }
  }
  return identityOfSpec(spec, names)
}

/**
 * The application identity for a helper of `claim`: the first live pod that
 * mounts it, else the first workload whose template does. Undefined when
 * nothing mounts it (an orphan claim).
 */
export function identityOfClaim(
  claim: string,
  sources: {pods?: Array<{metadata?: {name?: string; labels?: Record<string, string>}; spec?: IdentityPodSpec}>; workloads?: IdentityWorkload[]; workloadsFrom?: string},
): IdentitySource | undefined {
  // Not a helper's (this run's or another's): it runs as kubesnap chose, not as the application.
  for (const pod of (sources.pods ?? []).filter((p) => !isKubesnapHelper(p.metadata?.labels))) {
    const identity = identityOfPod(pod, claim)
    if (identity) return {identity, from: `pod ${pod.metadata?.name}`}
  }
  for (const workload of sources.workloads ?? []) {
    const identity = identityOfWorkload(workload, claim)
    if (identity) return {identity, from: `${workload.kind} ${workload.metadata?.name}${sources.workloadsFrom ? ` ${sources.workloadsFrom}` : ''}`}
  }
  return undefined
}

/**
 * How a helper runs:
 * - `app`: as the application's non-root uid (compliant with Pod Security `restricted`);
 * - `root`: uid 0 with only the capabilities a copy needs (reading every file, keeping owners),
 *   when the application itself runs as root or `--helper-as-root` asks for it;
 * - `platform`: no uid at all, the platform assigns one (an OpenShift SCC's range, the image's user),
 *   when the application says only `runAsNonRoot`, or after the policy refused the first two.
 */
export type HelperMode = 'app' | 'root' | 'platform'

/** The mode for an application identity (undefined: nothing mounts the claim) and the user's `--helper-as-root`. */
export function helperMode(identity: AppIdentity | undefined, asRoot = false): HelperMode {
  if (asRoot) return 'root'
  if (identity?.runAsUser !== undefined && identity.runAsUser > 0) return 'app'
  if (identity?.runAsUser === undefined && identity?.runAsNonRoot) return 'platform'
  return 'root'
}

/**
 * The capabilities a root helper keeps, dropping all others: read and write
 * files of any owner and mode (DAC_OVERRIDE, which covers DAC_READ_SEARCH),
 * give files their archived owners (CHOWN), modes and times (FOWNER), and keep
 * setuid/setgid bits when it does (FSETID). All four are in Pod Security
 * `baseline`'s allowed list, so a root helper passes `baseline`.
 */
export const ROOT_HELPER_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID'] as const

/** The pod-level and container-level securityContext of a helper in `mode`. */
export function helperSecurityContext(mode: HelperMode, identity: AppIdentity | undefined): {pod: Record<string, unknown>; container: Record<string, unknown>} {
  const seccompProfile = {type: 'RuntimeDefault'}
  const shared = {
    ...(identity?.fsGroup !== undefined ? {fsGroup: identity.fsGroup} : {}),
    ...(identity?.fsGroupChangePolicy ? {fsGroupChangePolicy: identity.fsGroupChangePolicy} : {}),
    ...(identity?.supplementalGroups?.length ? {supplementalGroups: identity.supplementalGroups} : {}),
    ...(identity?.seLinuxOptions ? {seLinuxOptions: identity.seLinuxOptions} : {}),
  }
  const locked = {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false}
  if (mode === 'root') {
    return {
      pod: {runAsUser: 0, runAsGroup: identity?.runAsGroup ?? 0, ...shared, seccompProfile},
      container: {...locked, runAsNonRoot: false, capabilities: {drop: ['ALL'], add: [...ROOT_HELPER_CAPABILITIES]}},
    }
  }
  if (mode === 'platform') {
    return {pod: {runAsNonRoot: true, seccompProfile}, container: {...locked, runAsNonRoot: true, capabilities: {drop: ['ALL']}}}
  }
  return {
    pod: {
      runAsNonRoot: true,
      runAsUser: identity!.runAsUser,
      ...(identity?.runAsGroup !== undefined ? {runAsGroup: identity.runAsGroup} : {}),
      ...shared,
      seccompProfile,
    },
    container: {...locked, runAsNonRoot: true, capabilities: {drop: ['ALL']}},
  }
}

/** Describes a mode for people: `uid 999 (as pod db-0)`, `root with CHOWN, …`, `the uid the platform assigns`. */
export function describeHelperIdentity(mode: HelperMode, source: IdentitySource | undefined): string {
  const from = source ? ` (as ${source.from})` : ''
  if (mode === 'app') {
    const {runAsUser, runAsGroup, fsGroup} = source!.identity
    return `uid ${runAsUser}${runAsGroup !== undefined ? `, gid ${runAsGroup}` : ''}${fsGroup !== undefined ? `, fsGroup ${fsGroup}` : ''}${from}`
  }
  if (mode === 'root') return `root with only ${ROOT_HELPER_CAPABILITIES.join(', ')}${from}`
  return `the uid the platform assigns${from}`
}
