/**
 * The node's pod lifecycle, a kubelet's part minus the processes: watch the
 * pods bound to this node, give each a directory with a root filesystem per
 * container and its volumes, report it Running and Ready through the status
 * subresource, and finish its deletion. Nothing long-lived runs: a container
 * "runs" in that exec can start processes in it.
 */
import {appendFile, mkdir, rm} from 'node:fs/promises'
import path from 'node:path'
import type {ApiClient, WatchHandle} from './api.js'
import {isApiError} from './api.js'
import {prepareMountPoints} from './container.js'
import {containerEnv} from './env.js'
import type {ContainerDirectory, ExecTarget} from './exec-server.js'
import {createContainerRootfs, type Images} from './rootfs.js'
import {ContainerConfigError, containerIdentity, type ContainerIdentity} from './security.js'
import type {ObjectList, Pod, Status} from './types.js'
import {VolumeNotReady, containerMounts, resolveVolumes} from './volumes.js'

export interface PodManagerOptions {
  nodeName: string
  /** Where pod directories go: `<podsDir>/<uid>/`. */
  podsDir: string
  images: Images
  /** The container-init binary processes enter their container with. */
  containerInit: string
  log: (line: string) => void
}

/** A container's waiting state as the kubelet reports it. */
interface Waiting {
  reason: string
  message: string
}

/** Containers the kubelet would not create (runAsNonRoot with root, unknown capabilities): the pod stays Pending. */
class ContainersNotCreated extends Error {
  constructor(readonly waiting: Map<string, Waiting>) {
    super([...waiting.values()].map((w) => w.message).join('; '))
    this.name = 'ContainersNotCreated'
  }
}

/** What the node knows about one pod (by UID: a StatefulSet pod re-created under its old name is a new record). */
interface PodRecord {
  uid: string
  namespace: string
  name: string
  dir: string
  pod: Pod
  state: 'pending' | 'running' | 'gone'
  podIP?: string
  startTime?: string
  readySince?: string
  containers: Map<string, ExecTarget>
  /** Syncs of this pod run one after another. */
  queue: Promise<void>
  retry?: NodeJS.Timeout
  reportedPending?: string
}

// How long a pod whose volumes are not ready waits before the node tries again.
const RETRY_MS = 1000

/** Runs the pods bound to one node and answers the exec server's container look-ups. */
export class PodManager implements ContainerDirectory {
  private readonly pods = new Map<string, PodRecord>()
  private watch?: WatchHandle
  private resourceVersion = ''
  private stopped = false
  private relistTimer?: NodeJS.Timeout

  constructor(private readonly api: ApiClient, private readonly opts: PodManagerOptions) {}

  /** Lists the node's pods, syncs them, and keeps watching. Resolves after the first list. */
  async start(): Promise<void> {
    await this.relist()
  }

  /** Stops watching and kills every process in the node's pods; pod directories stay for inspection. */
  async stop(): Promise<void> {
    this.stopped = true
    this.watch?.stop()
    clearTimeout(this.relistTimer)
    for (const record of this.pods.values()) {
      clearTimeout(record.retry)
      killProcesses(record)
    }
    await Promise.allSettled([...this.pods.values()].map((r) => r.queue))
  }

  findContainer(namespace: string, pod: string, container: string): ExecTarget | undefined {
    for (const record of this.pods.values()) {
      if (record.namespace === namespace && record.name === pod && record.state === 'running') return record.containers.get(container)
    }
    return undefined
  }

  /** Lists the pods bound here, syncs each, forgets those gone, and watches from the list's resourceVersion. */
  private async relist(): Promise<void> {
    const selector = encodeURIComponent(`spec.nodeName=${this.opts.nodeName}`)
    const list = await this.api.get<ObjectList<Pod>>(`/api/v1/pods?fieldSelector=${selector}`)
    const seen = new Set<string>()
    for (const pod of list.items) {
      seen.add(pod.metadata.uid!)
      this.enqueue(pod)
    }
    // Deleted while the watch was down: no DELETED event will come for these.
    for (const record of this.pods.values()) if (!seen.has(record.uid)) this.forget(record)
    this.resourceVersion = list.metadata.resourceVersion
    this.startWatch()
  }

  private startWatch(): void {
    if (this.stopped) return
    const selector = encodeURIComponent(`spec.nodeName=${this.opts.nodeName}`)
    const url = `/api/v1/pods?watch=1&allowWatchBookmarks=true&fieldSelector=${selector}&resourceVersion=${this.resourceVersion}&timeoutSeconds=300`
    let expired = false
    this.watch = this.api.watch<Pod | Status>(url, (event) => {
      if (event.type === 'ERROR') {
        // 410 Gone: our resourceVersion is too old to resume from; only a relist catches up.
        expired = true
        this.opts.log(`pod watch: ${(event.object as Status).message ?? 'error'}; relisting`)
        return
      }
      const pod = event.object as Pod
      if (pod.metadata.resourceVersion) this.resourceVersion = pod.metadata.resourceVersion
      if (event.type === 'BOOKMARK') return
      if (event.type === 'DELETED') {
        const record = this.pods.get(pod.metadata.uid!)
        if (record) this.forget(record)
        return
      }
      this.enqueue(pod)
    }, (err) => {
      if (this.stopped) return
      if (err || expired) {
        if (err) this.opts.log(`pod watch ended: ${err.message}; relisting`)
        this.scheduleRelist()
      } else {
        this.startWatch()
      }
    })
  }

  private scheduleRelist(): void {
    clearTimeout(this.relistTimer)
    this.relistTimer = setTimeout(() => {
      this.relist().catch((err) => {
        this.opts.log(`pod relist failed: ${String(err)}`)
        if (!this.stopped) this.scheduleRelist()
      })
    }, RETRY_MS).unref()
  }

  /** Queues a sync of `pod` behind any sync of the same pod in progress. */
  private enqueue(pod: Pod): void {
    if (this.stopped) return
    const uid = pod.metadata.uid!
    let record = this.pods.get(uid)
    if (!record) {
      record = {
        uid,
        namespace: pod.metadata.namespace ?? 'default',
        name: pod.metadata.name,
        dir: path.join(this.opts.podsDir, uid),
        pod,
        state: 'pending',
        containers: new Map(),
        queue: Promise.resolve(),
      }
      this.pods.set(uid, record)
    }
    record.pod = pod
    const r = record
    r.queue = r.queue.then(() => this.sync(r)).catch((err) => {
      this.opts.log(`pod ${r.namespace}/${r.name}: ${String(err)}; retrying`)
      this.retryLater(r)
    })
  }

  private retryLater(record: PodRecord): void {
    clearTimeout(record.retry)
    record.retry = setTimeout(() => {
      if (record.state !== 'gone') this.enqueue(record.pod)
    }, RETRY_MS).unref()
  }

  /** Brings the node's side of one pod in line with its latest object. */
  private async sync(record: PodRecord): Promise<void> {
    const pod = record.pod
    if (record.state === 'gone' || this.stopped) return
    if (pod.metadata.deletionTimestamp) return this.terminate(record)
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return
    if (record.state === 'running') {
      // Our own status patch comes back as MODIFIED; patch again only if someone else changed it.
      if (pod.status?.phase !== 'Running' || pod.status.podIP !== record.podIP) await this.reportRunning(record)
      return
    }
    try {
      await this.setUp(record)
    } catch (err) {
      if (err instanceof ContainersNotCreated) {
        // The pod's securityContext cannot change: no retry, as the kubelet's would fail the same way.
        const names = [...err.waiting.keys()]
        this.opts.log(`pod ${record.namespace}/${record.name}: ${err.message}`)
        await this.reportPending(record, `containers with unready status: [${names.join(' ')}]`, (name) => err.waiting.get(name))
        return
      }
      if (!(err instanceof VolumeNotReady)) throw err
      await this.reportPending(record, err.message, () => undefined)
      this.retryLater(record)
      return
    }
    record.state = 'running'
    await this.reportRunning(record)
    this.opts.log(`pod ${record.namespace}/${record.name} running (${record.podIP})`)
  }

  /**
   * Builds the pod's directory: volumes, and per container a root filesystem,
   * mount points, env, identity and log. Throws `VolumeNotReady` or, after the
   * volumes (the kubelet mounts them first), `ContainersNotCreated`.
   */
  private async setUp(record: PodRecord): Promise<void> {
    const pod = record.pod
    record.podIP ??= pod.status?.podIP && pod.status.podIP !== '127.0.0.1' ? pod.status.podIP : allocatePodIP()
    record.startTime ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const identities = new Map<string, ContainerIdentity>()
    const refused = new Map<string, Waiting>()
    for (const container of pod.spec.containers) {
      try {
        identities.set(container.name, containerIdentity(pod, container))
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err
        refused.set(container.name, {reason: err.reason, message: err.message})
      }
    }
    const volumes = await resolveVolumes(this.api, pod, path.join(record.dir, 'volumes'))
    if (refused.size > 0) throw new ContainersNotCreated(refused)
    const hostname = pod.spec.hostname ?? pod.metadata.name
    const containers = new Map<string, ExecTarget>()
    for (const container of pod.spec.containers) {
      const containerDir = path.join(record.dir, 'containers', container.name)
      const rootfs = path.join(containerDir, 'rootfs')
      // A retry after VolumeNotReady starts over from a fresh copy.
      await rm(containerDir, {recursive: true, force: true})
      await mkdir(containerDir, {recursive: true})
      await createContainerRootfs(this.opts.images, container.image, rootfs, hostname)
      const sandbox = {
        rootfs,
        mounts: await containerMounts(container, volumes),
        env: await containerEnv(this.api, pod, container, record.podIP),
        workingDir: container.workingDir ?? '/',
        hostname,
        identity: identities.get(container.name)!,
        init: this.opts.containerInit,
      }
      await prepareMountPoints(sandbox)
      const logFile = path.join(containerDir, 'container.log')
      const command = [...(container.command ?? []), ...(container.args ?? [])]
      await appendFile(logFile, `${new Date().toISOString()} kubesnap-node: started container ${container.name} (image ${container.image ?? '?'})` +
        `${command.length ? `; its command ${JSON.stringify(command)} is not run, only exec is` : ''}\n`)
      containers.set(container.name, {podName: pod.metadata.name, image: container.image, sandbox, logFile, processes: new Set()})
    }
    record.containers = containers
  }

  /** Patches the pod's status to Running and Ready with every container started. */
  private async reportRunning(record: PodRecord): Promise<void> {
    // A repeated report (after a stale event) must not move the transition time.
    record.readySince ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const pod = record.pod
    const condition = (type: string) => ({type, status: 'True', lastProbeTime: null, lastTransitionTime: record.readySince})
    const status = {
      phase: 'Running',
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(condition),
      hostIP: '127.0.0.1',
      podIP: record.podIP,
      podIPs: [{ip: record.podIP}],
      startTime: record.startTime,
      initContainerStatuses: (pod.spec.initContainers ?? []).map((c) => ({
        name: c.name, image: c.image ?? '', imageID: imageID(c.image), containerID: `kubesnap://${record.uid}/${c.name}`,
        ready: true, restartCount: 0,
        // Init containers are not run: they count as having completed.
        state: {terminated: {exitCode: 0, reason: 'Completed', startedAt: record.startTime, finishedAt: record.startTime}},
      })),
      containerStatuses: pod.spec.containers.map((c) => ({
        name: c.name, image: c.image ?? '', imageID: imageID(c.image), containerID: `kubesnap://${record.uid}/${c.name}`,
        ready: true, started: true, restartCount: 0, state: {running: {startedAt: record.startTime}},
      })),
    }
    await this.patchStatus(record, status)
  }

  /**
   * Patches the pod's status to Pending, once per distinct state: `message` on
   * its conditions, each container waiting as `waitingOf` says (default:
   * ContainerCreating with `message`).
   */
  private async reportPending(record: PodRecord, message: string, waitingOf: (container: string) => Waiting | undefined): Promise<void> {
    const containerStatuses = record.pod.spec.containers.map((c) => ({
      name: c.name, image: c.image ?? '', imageID: '', ready: false, started: false, restartCount: 0,
      state: {waiting: waitingOf(c.name) ?? {reason: 'ContainerCreating', message}},
    }))
    const key = JSON.stringify([message, containerStatuses])
    if (record.reportedPending === key) return
    record.reportedPending = key
    this.opts.log(`pod ${record.namespace}/${record.name} pending: ${message}`)
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const notReady = (type: string) => ({type, status: 'False', reason: 'ContainersNotReady', message, lastProbeTime: null, lastTransitionTime: now})
    await this.patchStatus(record, {
      phase: 'Pending',
      hostIP: '127.0.0.1',
      conditions: [notReady('Ready'), notReady('ContainersReady')],
      containerStatuses,
    })
  }

  private async patchStatus(record: PodRecord, status: unknown): Promise<void> {
    try {
      // The UID precondition keeps a stale sync from touching a re-created pod of the same name.
      const updated = await this.api.patch<Pod>(`/api/v1/namespaces/${record.namespace}/pods/${record.name}/status`, {metadata: {uid: record.uid}, status})
      record.pod = {...record.pod, status: updated.status}
    } catch (err) {
      // Gone or replaced meanwhile (a changed UID is 422 Invalid): the watch brings the news.
      if (isApiError(err, 404) || isApiError(err, 409) || isApiError(err, 422)) return
      throw err
    }
  }

  /** Finishes a graceful deletion: stop the pod's processes, remove its directory, delete it for good. */
  private async terminate(record: PodRecord): Promise<void> {
    killProcesses(record)
    record.state = 'gone'
    clearTimeout(record.retry)
    await rm(record.dir, {recursive: true, force: true})
    try {
      await this.api.delete(`/api/v1/namespaces/${record.namespace}/pods/${record.name}`, {
        kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: {uid: record.uid},
      })
    } catch (err) {
      if (!isApiError(err, 404) && !isApiError(err, 409)) throw err
    }
    this.opts.log(`pod ${record.namespace}/${record.name} deleted`)
  }

  /** Drops a pod that is gone from the API: kill, clean, forget. */
  private forget(record: PodRecord): void {
    killProcesses(record)
    clearTimeout(record.retry)
    record.state = 'gone'
    this.pods.delete(record.uid)
    record.queue = record.queue.then(() => rm(record.dir, {recursive: true, force: true})).catch(() => {})
  }
}

function killProcesses(record: PodRecord): void {
  for (const container of record.containers.values()) {
    for (const child of container.processes) {
      if (child.pid === undefined) continue
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // Already exited.
      }
    }
  }
}

/** A stable fake image ID: the runtime would report the image's digest. */
function imageID(image: string | undefined): string {
  return `kubesnap://image/${image ?? 'unknown'}`
}

let nextPodIP = 2

/** Returns a pod IP from 10.244.0.0/16 not handed out before in this process (Endpoints refuse loopback). */
export function allocatePodIP(): string {
  const n = nextPodIP++
  return `10.244.${Math.floor(n / 254) % 256}.${(n % 254) + 1}`
}
