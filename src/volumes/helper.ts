/**
 * Helper pods: when no running container can stream a claim (none mounts it,
 * or the one that does has no sh or tar, as distroless images), kubesnap
 * starts a small pod that mounts the claim read-only and sleeps, streams the
 * volume out of it, and deletes it: when done, when the stream fails, and on
 * Ctrl-C (HelperPods.use). A ReadWriteOnce claim already in use is pinned to
 * its user's node, the only node that can mount it.
 */
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {KubesnapError, messageOf} from '../errors.js'
import {HELPER_COMPONENT, MANAGED_BY} from '../labels.js'
import {isGoneOnThisHost, parseHolder, thisProcess} from '../archive/lock.js'
import {pendingClaimReason} from './pending.js'
import {describeHelperIdentity, helperMode, helperSecurityContext, type HelperMode, type IdentitySource} from './identity.js'

export const DEFAULT_HELPER_IMAGE = 'busybox:1.36'
/** Where a helper mounts the claim. */
export const HELPER_MOUNT = '/kubesnap/volume'
const HELPER_CONTAINER = 'helper'
/** Labels every helper carries: `kubectl delete pod -l app.kubernetes.io/component=kubesnap-helper` cleans up after a killed run. */
export const HELPER_LABELS = {...MANAGED_BY, ...HELPER_COMPONENT}
/** The annotation naming the kubesnap process that started a helper (host, pid, boot id, start time): the next run removes helpers of gone processes. */
export const HELPER_OWNER_ANNOTATION = 'kubesnap.io/owner'
/** A helper left behind by a killed kubesnap ends by itself after a day (the longest a copy is expected to take). */
const HELPER_LIFETIME_SECONDS = 86_400

export interface HelperOptions {
  image?: string
  /** How long a helper may take to start (default 120 s; restore passes its --timeout). */
  startTimeoutMs?: number
  /** Run every helper as root with the few capabilities a copy needs (`--helper-as-root`), whatever the application runs as. */
  asRoot?: boolean
}

/** A running helper pod. */
export interface HelperPod {
  name: string
  container: string
  mountPath: string
  nodeName?: string
  /** How it runs (identity.ts), and that in words for messages. */
  mode: HelperMode
  runsAs: string
  /** The uid and gids its processes have, when kubesnap chose them (not in `platform` mode). */
  uid?: number
  gids?: number[]
  /** What kubesnap had to give up to get it admitted, for the run's warnings. */
  warnings: string[]
}

/** Where a helper's scripts may write (its root file system is read-only). */
const HELPER_TMP = '/tmp'

/** Whether a helper for a claim would be admitted, and as whom (`refused` says what the policy refused first). */
export interface HelperAdmission {
  claim: string
  admitted: boolean
  runsAs: string
  refused?: string
}

/** The helper pods of one run, deleted when done and when the run is interrupted (use). */
export class HelperPods {
  readonly image: string
  private readonly live = new Set<string>()
  /** The run's stop signal while use() runs: no helper starts after it, and none waits on. */
  private signal?: AbortSignal
  private readonly startTimeoutMs: number
  /** `--helper-as-root`: every helper runs as root with the copy's capabilities. */
  readonly asRoot: boolean

  constructor(private readonly api: KubeApi, private readonly namespace: string, options: HelperOptions = {}) {
    this.image = options.image ?? DEFAULT_HELPER_IMAGE
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000
    this.asRoot = options.asRoot ?? false
  }

  /**
   * Starts a helper mounting `claim` read-only (read-write for a restore:
   * `{readOnly: false}`) on `nodeName` when given, running as the application
   * `app` runs (identity.ts), and waits until it runs. When the namespace's
   * policy refuses the ids kubesnap asked for, it tries once more with the ids
   * the platform assigns and says so in the helper's warnings.
   */
  async start(claim: string, nodeName?: string, options: {readOnly?: boolean; app?: IdentitySource} = {}): Promise<HelperPod> {
    this.signal?.throwIfAborted()
    const name = helperName(claim)
    const warnings: string[] = []
    let mode = helperMode(options.app?.identity, this.asRoot)
    const create = () => this.api.post(`/api/v1/namespaces/${this.namespace}/pods`, helperPodSpec({name, claim, image: this.image, nodeName, readOnly: options.readOnly, mode, app: options.app}), {retries: 0})
    try {
      await create()
    } catch (err) {
      const refused = policyRefusal(err)
      if (!refused || mode === 'platform') throw refused ? helperRefused(this.namespace, claim, refused) : err
      warnings.push(`The helper pod for claim ${claim} was refused as ${describeHelperIdentity(mode, options.app)} by the namespace's policy (${refused}); it ran with the uid the platform assigns instead, so files owned by other users may be unreadable or not keep their owners.`)
      mode = 'platform'
      try {
        await create()
      } catch (again) {
        const still = policyRefusal(again)
        throw still ? helperRefused(this.namespace, claim, still) : again
      }
    }
    this.live.add(name)
    try {
      const running = await this.waitRunning(name, claim)
      const security = helperSecurityContext(mode, options.app?.identity).pod as {runAsUser?: number; runAsGroup?: number; fsGroup?: number; supplementalGroups?: number[]}
      const gids = security.runAsUser === undefined ? undefined
        : [security.runAsGroup ?? 0, ...(security.fsGroup !== undefined ? [security.fsGroup] : []), ...(security.supplementalGroups ?? [])]
      return {
        name, container: HELPER_CONTAINER, mountPath: HELPER_MOUNT, nodeName: running,
        mode, runsAs: describeHelperIdentity(mode, options.app), uid: security.runAsUser, gids, warnings,
      }
    } catch (err) {
      await this.remove(name)
      throw err
    }
  }

  /**
   * Asks the API server whether a helper for `claim` would be admitted, with a
   * server-side dry run of its create (admission runs, nothing is stored): as
   * kubesnap would ask first, else with the platform's ids.
   */
  async admission(claim: string, app?: IdentitySource): Promise<HelperAdmission> {
    const first = helperMode(app?.identity, this.asRoot)
    const attempt = async (mode: HelperMode) => {
      const spec = helperPodSpec({name: helperName(claim), claim, image: this.image, mode, app})
      try {
        await this.api.post(`/api/v1/namespaces/${this.namespace}/pods`, spec, {query: {dryRun: 'All'}, retries: 0})
        return undefined
      } catch (err) {
        const refused = policyRefusal(err)
        if (!refused) throw err
        return refused
      }
    }
    const refused = await attempt(first)
    if (!refused) return {claim, admitted: true, runsAs: describeHelperIdentity(first, app)}
    const fallback = first === 'platform' ? refused : await attempt('platform')
    return fallback
      ? {claim, admitted: false, runsAs: describeHelperIdentity(first, app), refused}
      : {claim, admitted: true, runsAs: describeHelperIdentity('platform', app), refused}
  }

  /**
   * Deletes the helpers earlier runs left (a `kill -9`, a crashed bastion):
   * those whose owner process on this host is gone, and those whose `sleep`
   * has ended. A helper of a live run, or of another host, stays (another
   * host's process cannot be checked; it ends by itself within a day).
   * Returns one sentence per helper removed.
   */
  async removeStale(): Promise<string[]> {
    const selector = Object.entries(HELPER_LABELS).map(([k, v]) => `${k}=${v}`).join(',')
    const pods = await this.api.get<{items?: Array<{metadata?: {name?: string; annotations?: Record<string, string>}; status?: {phase?: string}}>}>(`/api/v1/namespaces/${this.namespace}/pods`, {query: {labelSelector: selector}})
    const removed: string[] = []
    for (const pod of pods.items ?? []) {
      const name = pod.metadata?.name
      if (!name || this.live.has(name)) continue
      const owner = parseHolder(pod.metadata?.annotations?.[HELPER_OWNER_ANNOTATION] ?? '')
      const ended = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
      if (!ended && (owner === 'unreadable' || !isGoneOnThisHost(owner))) continue
      await this.remove(name)
      removed.push(`Removed helper pod ${name}, left by an earlier run${owner === 'unreadable' ? '' : ` (pid ${owner.pid} on ${owner.hostname}, no longer running)`}.`)
    }
    return removed
  }

  /** Deletes a helper at once (grace period 0); an already deleted one is fine. */
  async remove(name: string): Promise<void> {
    try {
      await this.api.delete(`/api/v1/namespaces/${this.namespace}/pods/${name}`, {query: {gracePeriodSeconds: 0}, timeoutMs: 15_000})
    } catch (err) {
      if (!isStatus(err, 404)) throw new KubesnapError(`Could not delete helper pod ${this.namespace}/${name} (${messageOf(err)}); delete it with \`kubectl delete pod -n ${this.namespace} ${name}\`.`, {cause: err})
    }
    this.live.delete(name)
  }

  /** Deletes every helper still running. */
  async removeAll(): Promise<void> {
    await Promise.all([...this.live].map((name) => this.remove(name).catch(() => {})))
  }

  /**
   * Runs `fn` with these helpers, the one lifecycle of a run's helpers: first
   * deletes the helpers earlier runs left (removeStale; fn gets one sentence
   * per helper removed, for the run's warnings), then runs fn, then deletes
   * every helper still running, whether fn succeeded or failed. When `signal`
   * aborts (interruptOnSignals) the helpers are deleted at once, no helper
   * starts after it, and a start under way stops waiting.
   */
  async use<T>(fn: (removedStale: string[]) => Promise<T>, options: {signal?: AbortSignal} = {}): Promise<T> {
    const {signal} = options
    signal?.throwIfAborted()
    this.signal = signal
    let removing: Promise<void> | undefined
    const onAbort = () => {
      removing = this.removeAll()
    }
    signal?.addEventListener('abort', onAbort, {once: true})
    try {
      return await fn(await this.removeStale())
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.signal = undefined
      await removing
      await this.removeAll()
    }
  }

  /** Waits for the helper's container to run; returns the node it runs on. Fails early on image and scheduling errors. */
  private async waitRunning(name: string, claim: string): Promise<string | undefined> {
    const deadline = Date.now() + this.startTimeoutMs
    let last = 'not scheduled yet'
    while (Date.now() < deadline) {
      this.signal?.throwIfAborted()
      const pod = await this.api.get<HelperPodStatus>(`/api/v1/namespaces/${this.namespace}/pods/${name}`)
      const phase = pod.status?.phase
      const container = pod.status?.containerStatuses?.find((c) => c.name === HELPER_CONTAINER)
      if (phase === 'Running' && container?.state?.running) return pod.spec?.nodeName
      if (phase === 'Failed' || phase === 'Succeeded') {
        throw new KubesnapError(`Helper pod ${this.namespace}/${name} for claim ${claim} stopped (${phase}: ${pod.status?.message ?? pod.status?.reason ?? 'no reason given'}); check that image ${this.image} has sleep, sh and tar, or pass another --helper-image.`)
      }
      const waiting = container?.state?.waiting
      if (waiting && /ErrImagePull|ImagePullBackOff|InvalidImageName/.test(waiting.reason ?? '')) {
        throw new KubesnapError(`Helper pod ${this.namespace}/${name} cannot pull image ${this.image} (${waiting.reason}); pass an image the cluster can pull with --helper-image.`)
      }
      if (waiting && /CreateContainerConfigError|CreateContainerError|RunContainerError/.test(waiting.reason ?? '')) {
        throw new KubesnapError(`Helper pod ${this.namespace}/${name} for claim ${claim} cannot start its container (${waiting.reason}: ${waiting.message ?? 'no message'}); set runAsUser on the pod template of the workload that mounts the claim, or pass a --helper-image whose default user is not root.`)
      }
      const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
      if (unscheduled && /unbound .*PersistentVolumeClaims|persistentvolumeclaim .* (not found|is being deleted)/i.test(unscheduled.message ?? '')) {
        // The scheduler only says the claim is unbound; the claim's events say why (a missing StorageClass).
        const stuck = await pendingClaimReason(this.api, this.namespace, claim)
        if (stuck?.permanent) throw new KubesnapError(`Helper pod ${this.namespace}/${name} cannot be scheduled: ${stuck.message}.`)
        if (stuck) {
          last = stuck.message
          await sleep(500)
          continue
        }
      }
      last = waiting?.reason ?? unscheduled?.message ?? phase ?? last
      await sleep(500)
    }
    throw new KubesnapError(`Helper pod ${this.namespace}/${name} for claim ${claim} did not start within ${Math.round(this.startTimeoutMs / 1000)} s (${last}); check the claim's node and quota, then try again.`)
  }
}

interface HelperPodStatus {
  spec?: {nodeName?: string}
  status?: {
    phase?: string
    reason?: string
    message?: string
    conditions?: Array<{type: string; status: string; message?: string}>
    containerStatuses?: Array<{name: string; state?: {running?: unknown; waiting?: {reason?: string; message?: string}}}>
  }
}

/** This process, as the owner of the helpers it starts. */
const OWNER = thisProcess()

/** A unique pod name for a helper of `claim`, at most 63 characters (it is also the hostname). */
export function helperName(claim: string): string {
  const suffix = randomBytes(3).toString('hex')
  const stem = claim.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63 - 'kubesnap--'.length - suffix.length).replace(/-+$/, '')
  return `kubesnap-${stem}-${suffix}`
}

/**
 * The helper pod: the claim mounted read-only (unless `readOnly: false`),
 * `sleep`, no service-account token, pinned to a node when given, and a
 * securityContext that passes Pod Security `restricted` by construction in
 * `app` and `platform` mode (non-root, no privilege escalation, every
 * capability dropped, seccomp RuntimeDefault, read-only root file system with
 * an emptyDir for the scripts' temporary files).
 */
export function helperPodSpec(options: {name: string; claim: string; image: string; nodeName?: string; readOnly?: boolean; mode?: HelperMode; app?: IdentitySource}): Record<string, unknown> {
  const readOnly = options.readOnly ?? true
  const security = helperSecurityContext(options.mode ?? helperMode(options.app?.identity), options.app?.identity)
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {name: options.name, labels: HELPER_LABELS, annotations: {'kubesnap.io/claim': options.claim, [HELPER_OWNER_ANNOTATION]: JSON.stringify(OWNER)}},
    spec: {
      // Pinned beside the claim's current user; tolerating everything, since a pinned pod skips the scheduler anyway.
      ...(options.nodeName ? {nodeName: options.nodeName, tolerations: [{operator: 'Exists'}]} : {}),
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      securityContext: security.pod,
      containers: [{
        name: HELPER_CONTAINER,
        image: options.image,
        command: ['sleep', String(HELPER_LIFETIME_SECONDS)],
        securityContext: security.container,
        volumeMounts: [{name: 'volume', mountPath: HELPER_MOUNT, readOnly}, {name: 'tmp', mountPath: HELPER_TMP}],
      }],
      volumes: [{name: 'volume', persistentVolumeClaim: {claimName: options.claim, readOnly}}, {name: 'tmp', emptyDir: {}}],
    },
  }
}

/**
 * The reason a pod create was refused by a pod security policy (Pod Security
 * admission, PodSecurityPolicy, an OpenShift SecurityContextConstraint), as
 * the server said it; undefined for any other failure (RBAC's 403 included).
 */
export function policyRefusal(err: unknown): string | undefined {
  if (!isStatus(err, 403) && !isStatus(err, 422) && !isStatus(err, 400)) return undefined
  const message = messageOf(err)
  if (!/PodSecurityPolicy|pod security policy|violates PodSecurity|security context constraint/i.test(message)) return undefined
  // The refused fields, without the long policy preamble: `spec.securityContext.runAsUser: Invalid value: 0: running with the root UID is forbidden`.
  // PodSecurityPolicy lists them space-separated inside [...]: each starts where a field path does.
  const starts = [...message.matchAll(/(?:spec|metadata)\.[\w.[\]-]+: Invalid value: /g)].map((m) => m.index!)
  const fields = starts.map((start, i) => {
    const field = message.slice(start, starts[i + 1] ?? message.length).trim().replace(/,$/, '')
    // The last one ends with the list's closing bracket.
    return i === starts.length - 1 ? field.replace(/\]\.?$/, '') : field
  })
  return fields.length > 0 ? [...new Set(fields)].join('; ') : message.replace(/\.$/, '')
}

function helperRefused(namespace: string, claim: string, refused: string): KubesnapError {
  return new KubesnapError(`The helper pod for claim ${claim} was refused by the pod security policy of namespace ${namespace} (${refused}); ask the namespace's owner to allow a non-root pod with those settings, or copy the claim's data with an application dump instead.`)
}
