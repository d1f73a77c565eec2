/**
 * Helper pods: when no running container can stream a claim (none mounts it,
 * or the one that does has no sh or tar, as distroless images), kubesnap
 * starts a small pod that mounts the claim read-only and sleeps, streams the
 * volume out of it, and deletes it: when done, when the stream fails, and on
 * Ctrl-C. A ReadWriteOnce claim already in use is pinned to its user's node,
 * the only node that can mount it.
 */
import {randomBytes} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {KubesnapError, messageOf} from '../errors.js'
import {MANAGED_BY} from '../labels.js'

export const DEFAULT_HELPER_IMAGE = 'busybox:1.36'
/** Where a helper mounts the claim. */
export const HELPER_MOUNT = '/kubesnap/volume'
const HELPER_CONTAINER = 'helper'
/** Labels every helper carries: `kubectl delete pod -l app.kubernetes.io/component=kubesnap-helper` cleans up after a killed run. */
export const HELPER_LABELS = {...MANAGED_BY, 'app.kubernetes.io/component': 'kubesnap-helper'}
/** A helper left behind by a killed kubesnap ends by itself after a day (the longest a copy is expected to take). */
const HELPER_LIFETIME_SECONDS = 86_400

export interface HelperOptions {
  image?: string
  /** How long a helper may take to start (default 120 s). */
  startTimeoutMs?: number
}

/** A running helper pod. */
export interface HelperPod {
  name: string
  container: string
  mountPath: string
  nodeName?: string
}

/** The helper pods of one run, deleted when done and on SIGINT/SIGTERM/SIGHUP. */
export class HelperPods {
  readonly image: string
  private readonly live = new Set<string>()
  private readonly startTimeoutMs: number

  constructor(private readonly api: KubeApi, private readonly namespace: string, options: HelperOptions = {}) {
    this.image = options.image ?? DEFAULT_HELPER_IMAGE
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000
  }

  /** Starts a helper mounting `claim` read-only (read-write for a restore: `{readOnly: false}`) on `nodeName` when given, and waits until it runs. */
  async start(claim: string, nodeName?: string, options: {readOnly?: boolean} = {}): Promise<HelperPod> {
    const name = helperName(claim)
    await this.api.post(`/api/v1/namespaces/${this.namespace}/pods`, helperPodSpec({name, claim, image: this.image, nodeName, readOnly: options.readOnly}), {retries: 0})
    this.live.add(name)
    try {
      const running = await this.waitRunning(name, claim)
      return {name, container: HELPER_CONTAINER, mountPath: HELPER_MOUNT, nodeName: running}
    } catch (err) {
      await this.remove(name)
      throw err
    }
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
   * On SIGINT, SIGTERM or SIGHUP: deletes the live helpers (for at most 10 s),
   * then re-raises the signal so the process ends as it would have.
   * Returns a function that removes the handlers.
   */
  deleteOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']): () => void {
    let handling = false
    const handler = (signal: NodeJS.Signals) => {
      if (handling) return
      handling = true
      void Promise.race([this.removeAll(), sleep(10_000)]).finally(() => {
        uninstall()
        process.kill(process.pid, signal)
      })
    }
    const uninstall = () => {
      for (const s of signals) process.off(s, handler)
    }
    for (const s of signals) process.on(s, handler)
    return uninstall
  }

  /** Waits for the helper's container to run; returns the node it runs on. Fails early on image and scheduling errors. */
  private async waitRunning(name: string, claim: string): Promise<string | undefined> {
    const deadline = Date.now() + this.startTimeoutMs
    let last = 'not scheduled yet'
    while (Date.now() < deadline) {
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
      const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
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

/** A unique pod name for a helper of `claim`, at most 63 characters (it is also the hostname). */
export function helperName(claim: string): string {
  const suffix = randomBytes(3).toString('hex')
  const stem = claim.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63 - 'kubesnap--'.length - suffix.length).replace(/-+$/, '')
  return `kubesnap-${stem}-${suffix}`
}

/** The helper pod: the claim mounted read-only (unless `readOnly: false`), `sleep`, no service-account token, pinned to a node when given. */
export function helperPodSpec(options: {name: string; claim: string; image: string; nodeName?: string; readOnly?: boolean}): Record<string, unknown> {
  const readOnly = options.readOnly ?? true
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {name: options.name, labels: HELPER_LABELS, annotations: {'kubesnap.io/claim': options.claim}},
    spec: {
      // Pinned beside the claim's current user; tolerating everything, since a pinned pod skips the scheduler anyway.
      ...(options.nodeName ? {nodeName: options.nodeName, tolerations: [{operator: 'Exists'}]} : {}),
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      containers: [{
        name: HELPER_CONTAINER,
        image: options.image,
        command: ['sleep', String(HELPER_LIFETIME_SECONDS)],
        volumeMounts: [{name: 'volume', mountPath: HELPER_MOUNT, readOnly}],
      }],
      volumes: [{name: 'volume', persistentVolumeClaim: {claimName: options.claim, readOnly}}],
    },
  }
}
