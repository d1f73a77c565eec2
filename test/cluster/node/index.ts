/**
 * The project's own Kubernetes node, run inside the test process: it does a
 * kubelet's duties toward the real control plane (registration, heartbeat,
 * pod status, finishing deletions) and serves exec and logs, running real
 * commands in busybox root filesystems with the pods' volumes bind-mounted
 * and their securityContext applied.
 *
 *   const node = await startNode({dir, server, caCertFile, pki, kubeconfig})
 *   node.faults.cutAfterBytes = 1 << 20   // break the next exec streams
 *   node.setV4Only(true)                  // behave like a node before 1.30
 *   await node.stop()
 */
import {mkdir, readFile, rm} from 'node:fs/promises'
import path from 'node:path'
import {issueCert, type Pki} from '../pki.js'
import {ApiClient} from './api.js'
import {registerNode, startHeartbeat, type NodeTaint} from './agent.js'
import {buildContainerInit} from './container.js'
import {startExecServer} from './exec-server.js'
import {ExecFaults} from './faults.js'
import {PodManager} from './pods.js'
import {buildImages} from './rootfs.js'

export {ExecFaults} from './faults.js'
export type {FaultSwitches} from './faults.js'
export type {NodeTaint} from './agent.js'

export interface NodeOptions {
  /** A state directory for this node: images, pod directories, certificates. */
  dir: string
  /** https://127.0.0.1:PORT of the apiserver. */
  server: string
  /** The cluster CA: the node trusts the apiserver by it and requires the apiserver's kubelet-client cert to chain to it. */
  caCertFile: string
  /** Issues the node's client cert (system:node:<name>) and serving cert. */
  pki: Pki
  /** An admin kubeconfig. Unused: the node acts only as system:node:<name>, as a kubelet does. */
  kubeconfig: string
  /** Default 'kubesnap-node'. */
  name?: string
  /** Offer only v4.channel.k8s.io for exec, as nodes before 1.30 do. */
  v4Only?: boolean
  /** Taints the Node registers with, so that only pods tolerating them land here (a test's private node). */
  taints?: NodeTaint[]
  log?: (line: string) => void
}

export interface NodeAgent {
  name: string
  /** The kubelet API's HTTPS port on 127.0.0.1. */
  port: number
  /** Fault switches for exec streams, flipped at run time. */
  faults: ExecFaults
  setV4Only(v: boolean): void
  /** Stops heartbeat, watch and server and kills the pods' processes; the Node object stays. */
  stop(): Promise<void>
}

/** Starts a node: certificates, images, container-init, kubelet API server, Node registration, heartbeat, pod watch. */
export async function startNode(opts: NodeOptions): Promise<NodeAgent> {
  const name = opts.name ?? 'kubesnap-node'
  const log = opts.log ?? (() => {})
  await mkdir(opts.dir, {recursive: true})
  const [client, serving] = await Promise.all([
    // The Node authorizer grants a kubelet's rights to exactly this identity.
    issueCert(opts.pki.ca, {name: `node-${name}-client`, cn: `system:node:${name}`, organizations: ['system:nodes'], usage: 'client'}),
    // The apiserver dials the node's InternalIP, 127.0.0.1, and verifies the cert against the cluster CA.
    issueCert(opts.pki.ca, {name: `node-${name}-serving`, cn: name, sans: {ip: ['127.0.0.1'], dns: ['localhost', name]}, usage: 'server'}),
  ])
  const imagesDir = path.join(opts.dir, 'images')
  await rm(imagesDir, {recursive: true, force: true})
  const [images, containerInit] = await Promise.all([buildImages(imagesDir), buildContainerInit()])

  const api = await ApiClient.create({server: opts.server, caCertFile: opts.caCertFile, ...client})
  const faults = new ExecFaults()
  let v4Only = opts.v4Only ?? false
  const pods = new PodManager(api, {nodeName: name, podsDir: path.join(opts.dir, 'pods'), images, containerInit, log})
  const server = await startExecServer({
    cert: await readFile(serving.certFile),
    key: await readFile(serving.keyFile),
    ca: await readFile(opts.caCertFile),
    containers: pods,
    faults,
    v4Only: () => v4Only,
    log,
  })
  const registration = {name, port: server.port, taints: opts.taints, log}
  let heartbeat: {stop(): void} | undefined
  try {
    await registerNode(api, registration)
    heartbeat = startHeartbeat(api, registration)
    await pods.start()
  } catch (err) {
    heartbeat?.stop()
    await pods.stop()
    await server.close()
    api.close()
    throw new Error(`node ${name} could not start: ${(err as Error).message}`, {cause: err})
  }
  return {
    name,
    port: server.port,
    faults,
    setV4Only(v: boolean) {
      v4Only = v
    },
    async stop() {
      heartbeat?.stop()
      await pods.stop()
      await server.close()
      api.close()
    },
  }
}
