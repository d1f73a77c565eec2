/**
 * The node's registration and heartbeat, as a kubelet does them: a Node object
 * whose InternalIP and kubelet port tell the apiserver where exec and logs
 * go, and a Lease in kube-node-lease renewed every 10 s plus a fresh Ready
 * condition, so the node lifecycle controller never marks the node Unknown,
 * taints it and turns its pods NotReady (it would after ≈40 s of silence).
 */
import os from 'node:os'
import type {ApiClient} from './api.js'
import {isApiError} from './api.js'

export interface NodeRegistration {
  name: string
  /** The HTTPS port of the node's kubelet API (exec, logs). */
  port: number
  /** Taints to register with, as `kubelet --register-with-taints` does. */
  taints?: NodeTaint[]
  log: (line: string) => void
}

/** A node taint: only pods that tolerate it are scheduled there. */
export interface NodeTaint {
  key: string
  value?: string
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute'
}

/** A running heartbeat; `stop()` ends it. */
export interface Heartbeat {
  stop(): void
}

const LEASE_NAMESPACE = 'kube-node-lease'
const LEASE_SECONDS = 40
const RENEW_MS = 10_000
// The Ready condition is refreshed less often: the Lease is the heartbeat the controller reads first.
const STATUS_EVERY_RENEWALS = 3

/** Creates the Node (or takes over an existing one of that name) and reports its status. */
export async function registerNode(api: ApiClient, reg: NodeRegistration): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: reg.name,
      labels: {'kubernetes.io/hostname': reg.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64'},
    },
    spec: reg.taints?.length ? {taints: reg.taints} : {},
    status: nodeStatus(reg),
  }
  try {
    await api.post('/api/v1/nodes', node)
    reg.log(`node ${reg.name} registered (kubelet port ${reg.port})`)
  } catch (err) {
    if (!isApiError(err, 409)) throw err
    reg.log(`node ${reg.name} exists; taking it over (kubelet port ${reg.port})`)
  }
  // Status on create may be dropped by the strategy; the subresource always takes it.
  await api.patch(`/api/v1/nodes/${reg.name}/status`, {status: nodeStatus(reg)})
}

/** Renews the node's Lease every 10 s and its Ready condition every 30 s until stopped. */
export function startHeartbeat(api: ApiClient, reg: NodeRegistration): Heartbeat {
  let renewals = 0
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const beat = async () => {
    try {
      await renewLease(api, reg.name)
      if (renewals++ % STATUS_EVERY_RENEWALS === 0) {
        await api.patch(`/api/v1/nodes/${reg.name}/status`, {status: {conditions: conditions()}})
      }
    } catch (err) {
      reg.log(`node heartbeat failed: ${String(err)}`)
    }
    // unref: the heartbeat must not keep the test process alive (sharedCluster stops on beforeExit).
    if (!stopped) timer = setTimeout(beat, RENEW_MS).unref()
  }
  void beat()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

/** Creates or renews the node's Lease. */
async function renewLease(api: ApiClient, name: string): Promise<void> {
  const url = `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases/${name}`
  const spec = {holderIdentity: name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime(new Date())}
  try {
    const lease = await api.get<{metadata: Record<string, unknown>}>(url)
    await api.put(url, {...lease, spec})
  } catch (err) {
    if (!isApiError(err, 404)) throw err
    await api.post(`/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases`, {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: {name, namespace: LEASE_NAMESPACE}, spec,
    })
  }
}

/** The node's full status: addresses, kubelet endpoint, capacity, conditions, node info. */
function nodeStatus(reg: NodeRegistration): Record<string, unknown> {
  // Generous, fixed numbers: the scheduler only has to find room; nothing really runs.
  const resources = {'cpu': '16', 'memory': '64Gi', 'pods': '110', 'ephemeral-storage': '100Gi'}
  return {
    capacity: resources,
    allocatable: resources,
    addresses: [{type: 'InternalIP', address: '127.0.0.1'}, {type: 'Hostname', address: reg.name}],
    daemonEndpoints: {kubeletEndpoint: {Port: reg.port}},
    conditions: conditions(),
    nodeInfo: {
      machineID: 'kubesnap', systemUUID: 'kubesnap', bootID: 'kubesnap',
      kernelVersion: os.release(), osImage: 'kubesnap test node (busybox chroots)',
      containerRuntimeVersion: 'kubesnap://0.1.0', kubeletVersion: 'v1.20.2', kubeProxyVersion: 'v1.20.2',
      operatingSystem: 'linux', architecture: 'amd64',
    },
  }
}

// Conditions never change on this node, so they keep the transition time of the agent's start.
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')

/** The node conditions with a fresh heartbeat time; strategic merge keys them by type. */
function conditions(): Record<string, string>[] {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  const condition = (type: string, status: string, reason: string, message: string) =>
    ({type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: startedAt})
  return [
    condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
    condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
    condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
    condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
  ]
}

/** Formats `date` as a metav1.MicroTime (RFC 3339 with microseconds), which Lease times are. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}
