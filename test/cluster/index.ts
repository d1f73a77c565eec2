/**
 * The test cluster as the API tests use it: a real control plane, our node and
 * our storage when present, namespaces with the kubesnap Role bound to a
 * namespace-only user, and fixtures loaded into them.
 *
 * One cluster serves a whole test run: `npm run cluster` (or a test runner)
 * starts it and writes a state file; test processes attach to it through
 * KUBESNAP_TEST_CLUSTER, or start their own when it is unset.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'
import {CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions} from '@kubernetes/client-node'
// Types only: the modules themselves are imported at run time, when present (see importOptional).
import type * as FixtureModule from '../../fixtures/index.js'
import type * as SeedModule from '../../fixtures/seed.js'
import type * as NodeModule from './node/index.js'
import type * as StorageModule from './storage/index.js'
import {startControlPlane, USER_NAME, type ControlPlane} from './controlplane.js'
import {applyDocuments} from './documents.js'
import {createTestNamespace, deleteTestNamespace, randomNamespaceName} from './namespaces.js'
import type {Pki} from './pki.js'
import type {PodSecurityLevel} from './podsecurity.js'
import {held, startProcess} from './processes.js'
import {waitForWorkloads} from './workloads.js'

export type {ControlPlane} from './controlplane.js'
export {startControlPlane} from './controlplane.js'
export type {Pki, CertificateAuthority, CertRequest, IssuedCert} from './pki.js'
export {issueCert} from './pki.js'
export {waitForWorkloads} from './workloads.js'
export type {PodSecurityLevel} from './podsecurity.js'
export {POD_SECURITY_LEVELS, PSP_ANNOTATION} from './podsecurity.js'

/** The fixtures a namespace can be created with (see fixtures/). */
export type FixtureName = FixtureModule.FixtureName

/** Options of {@link TestCluster.createNamespace}. */
export interface CreateNamespaceOptions {
  /** Name prefix; the namespace is `<prefix>-<5 random chars>`. Default `test`. */
  prefix?: string
  /** An exact name instead of a random one (the cluster CLI's `softwarefactory`, `jenkins`). */
  name?: string
  fixture?: FixtureName
  /** Bind the kubesnap Role to the namespace-only user. Default true. */
  bindUser?: boolean
  /**
   * The pod security policy everyone but the admin gets there (podsecurity.ts):
   * `privileged` runs pods as if there were no pod security, `restricted` holds
   * every pod, the controllers' included, to Pod Security `restricted`.
   * Default: what the fixture asks for (FIXTURE_POD_SECURITY), else `privileged`.
   */
  security?: PodSecurityLevel
}

/** Set by `npm test` for test files that run beside others (test/run.ts): they must leave the shared node schedulable. */
export const SHARED_RUN_VARIABLE = 'KUBESNAP_TEST_SHARED'

/** Options of {@link TestCluster.startPrivateNode}. */
export interface PrivateNodeOptions {
  /** Name prefix; the node is `<prefix>-<6 hex digits>`. Default `private`. */
  prefix?: string
  /**
   * Make it the only node new pods go to, as if the whole cluster were this
   * node: no taint, and every other schedulable node cordoned until `stop()`
   * (pods already running stay). For a namespace that must run entirely here,
   * fixture and kubesnap's helper pods included.
   */
  exclusive?: boolean
  /** The node's log lines: pods started and stopped, each exec with its subprotocol and byte counts. */
  log?: (line: string) => void
}

/**
 * A node of a test's own, run in the test's process next to the cluster's, so
 * the test can flip its exec fault switches and its v4-only switch (the
 * shared cluster's node runs in another process). It is tainted: only pods
 * given {@link PrivateNode.placement} (or pinned with `nodeName`) land on it,
 * unless started `exclusive`, when every new pod does.
 */
export interface PrivateNode {
  name: string
  /** The node itself: `agent.faults`, `agent.setV4Only()`. */
  agent: NodeModule.NodeAgent
  /** What a pod spec needs to be scheduled on this node and only there. */
  placement: {nodeSelector: Record<string, string>; tolerations: Array<{key: string; operator: string; effect: string}>}
  /** Stops the node and deletes its Node object. */
  stop(): Promise<void>
}

/** A running (or attached) test cluster. */
export interface TestCluster {
  server: string
  dir: string
  userName: string
  kubeconfigs: {admin: string; user: string}
  caCertFile: string
  /** The cluster's CA and keys: a test issues certificates from it, e.g. for a private node of its own. */
  pki: Pki
  /** The node's name when one runs: pods get scheduled and run. */
  nodeName?: string
  /** The default StorageClass when storage runs: claims get bound. */
  storageClass?: string
  /** The directory storage keeps volumes and snapshots in. */
  storageDir?: string
  /** The node itself (fault switches): only when started in this process, not when attached. */
  node?: NodeModule.NodeAgent
  /** The storage itself: only when started in this process, not when attached. */
  storage?: StorageModule.Storage
  /** A fresh client config for the admin (group `system:masters`). */
  admin(): KubeConfig
  /** A fresh client config for the namespace-only user. */
  user(): KubeConfig
  /** A fresh namespace with the kubesnap Role bound to the namespace-only user; optional fixture loaded (and its workloads Ready when a node runs). */
  createNamespace(opts?: CreateNamespaceOptions): Promise<string>
  /** Deletes a namespace (absent is fine); with `wait`, returns once it is gone. */
  deleteNamespace(ns: string, opts?: {wait?: boolean}): Promise<void>
  /** Waits until every StatefulSet and Deployment in `ns` is rolled out and Ready. */
  waitForWorkloads(ns: string, opts?: {timeoutMs?: number}): Promise<void>
  /** Starts a node in this process (tainted unless `exclusive`) whose fault and v4-only switches the test holds. */
  startPrivateNode(opts?: PrivateNodeOptions): Promise<PrivateNode>
  /** Stops what this process started; does nothing for an attached cluster. */
  stop(): Promise<void>
}

/** What `<dir>/cluster.json` holds: enough for another process to attach. */
export interface ClusterState {
  server: string
  dir: string
  userName: string
  caCertFile: string
  pki: Pki
  kubeconfigs: {admin: string; user: string}
  nodeName?: string
  storageClass?: string
  storageDir?: string
}

/** Options of {@link startTestCluster}. */
export interface StartTestClusterOptions {
  /** State directory; default a fresh temp dir removed on stop. */
  dir?: string
  /** Start our node (test/cluster/node) when present. Default true. */
  node?: boolean
  /** Start our storage (test/cluster/storage) when present. Default true. */
  storage?: boolean
  /** Make the node speak only v4.channel.k8s.io, as servers before 1.30. */
  v4Only?: boolean
  /** The node's name. Default `kubesnap-node`. */
  nodeName?: string
  /**
   * The name of the default StorageClass storage serves (default `standard`).
   * A second, independent cluster for cross-cluster restores starts with
   * `fast`: it then has no StorageClass named like the shared cluster's.
   */
  storageClass?: string
  /** Progress lines (components started, parts skipped). Default: silent. */
  log?: (line: string) => void
}

/** Starts the control plane, then our node and storage when asked and present; writes `<dir>/cluster.json`. */
export function startTestCluster(opts: StartTestClusterOptions = {}): Promise<TestCluster> {
  // Its children, node and storage hold the event loop with nothing (so a
  // forgotten cluster never keeps a process alive): while starting, hold it.
  return held(startUnheld(opts))
}

async function startUnheld(opts: StartTestClusterOptions): Promise<TestCluster> {
  const log = opts.log ?? (() => {})
  const controlPlane = await startControlPlane({dir: opts.dir, log})
  const stops: Array<() => Promise<void>> = [controlPlane.stop]
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    // Newest first: storage and node still reach the apiserver while they stop.
    stopped ??= held(stops.reduceRight((done, next) => done.then(next), Promise.resolve()))
    return stopped
  }
  try {
    const state: ClusterState = {
      server: controlPlane.server,
      dir: controlPlane.dir,
      userName: controlPlane.userName,
      caCertFile: controlPlane.caCertFile,
      pki: controlPlane.pki,
      kubeconfigs: controlPlane.kubeconfigs,
    }
    let node: NodeModule.NodeAgent | undefined
    let storage: StorageModule.Storage | undefined
    const nodeModule = opts.node ?? true ? await importOptional<typeof NodeModule>('./node/index.js', log) : undefined
    if (nodeModule) {
      const started = await nodeModule.startNode({
        dir: await subdir(controlPlane, 'node'),
        server: controlPlane.server,
        caCertFile: controlPlane.caCertFile,
        pki: controlPlane.pki,
        kubeconfig: controlPlane.kubeconfigs.admin,
        name: opts.nodeName,
        v4Only: opts.v4Only,
        log,
      })
      node = started
      stops.push(() => started.stop())
      state.nodeName = started.name
      log(`node ${started.name} started (kubelet port ${started.port})`)
    }
    const storageModule = opts.storage ?? true ? await importOptional<typeof StorageModule>('./storage/index.js', log) : undefined
    if (storageModule) {
      const storageDir = await subdir(controlPlane, 'storage')
      const started = await storageModule.startStorage({dir: storageDir, kubeconfig: controlPlane.kubeconfigs.admin, storageClass: opts.storageClass, log})
      storage = started
      stops.push(() => started.stop())
      state.storageClass = started.storageClass
      state.storageDir = storageDir
      log(`storage started (StorageClass ${started.storageClass})`)
    }
    await writeFile(path.join(controlPlane.dir, 'cluster.json'), JSON.stringify(state, null, 2) + '\n')
    return {...clusterFrom(state, stop), node, storage}
  } catch (err) {
    await stop()
    throw err
  }
}

/** Connects to a cluster another process started, from its `cluster.json`; `stop()` leaves it running. */
export async function attachTestCluster(stateFile: string): Promise<TestCluster> {
  let state: ClusterState
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as ClusterState
  } catch (err) {
    throw new Error(`cannot read the test cluster state file ${stateFile}: ${(err as Error).message}; start one with \`npm run cluster\` or unset KUBESNAP_TEST_CLUSTER`, {cause: err})
  }
  return clusterFrom(state, async () => {})
}

let shared: Promise<TestCluster> | undefined

/**
 * The cluster of this test process: the one KUBESNAP_TEST_CLUSTER names (a
 * state file), else one started on first use and stopped when this process ends.
 *
 * The started one runs in a process of its own (cli.ts --bare), so a test
 * sees the same thing in both cases, and because our node and storage keep
 * servers and watches open that would keep a test process from ever ending.
 * The kernel sends that process SIGTERM when we die, however we die, and it
 * then stops the cluster and removes its state.
 */
export function sharedCluster(): Promise<TestCluster> {
  shared ??= (async () => {
    const stateFile = process.env.KUBESNAP_TEST_CLUSTER
    return attachTestCluster(stateFile ? stateFile : await startClusterProcess())
  })()
  return shared
}

/** Starts cli.ts --bare in its own process; resolves with its state file once the cluster is ready. */
async function startClusterProcess(timeoutMs = 20 * 60_000): Promise<string> {
  // The cluster process writes this file when ready and removes it when it stops.
  const stateFile = path.join(os.tmpdir(), `kubesnap-shared-${process.pid}-${Date.now().toString(36)}.json`)
  const cli = fileURLToPath(new URL('cli.ts', import.meta.url))
  const proc = startProcess({
    name: 'cluster',
    command: process.execPath,
    // tsx resolved from here, so the cluster starts whatever the test's working directory.
    args: ['--import', import.meta.resolve('tsx'), cli, '--bare', '--quiet', '--state-file', stateFile],
    logDir: os.tmpdir(),
    // Its start-up errors (and a first build's progress) belong in the test output.
    output: 'stderr',
    parentDeathSignal: 'TERM',
  })
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (existsSync(stateFile)) return stateFile
    if (!proc.running()) throw new Error(`the test cluster process exited with code ${await proc.exited} before it was ready (its errors are above)`)
    await sleep(100)
  }
  await proc.stop()
  throw new Error(`the test cluster was not ready within ${timeoutMs / 1000} s`)
}

function clusterFrom(state: ClusterState, stop: () => Promise<void>): TestCluster {
  const load = (file: string): KubeConfig => {
    const kc = new KubeConfig()
    kc.loadFromFile(file)
    return kc
  }
  const admin = (): KubeConfig => load(state.kubeconfigs.admin)
  const cluster: TestCluster = {
    server: state.server,
    dir: state.dir,
    userName: state.userName ?? USER_NAME,
    kubeconfigs: state.kubeconfigs,
    caCertFile: state.caCertFile,
    pki: state.pki,
    nodeName: state.nodeName,
    storageClass: state.storageClass,
    storageDir: state.storageDir,
    admin,
    user: () => load(state.kubeconfigs.user),
    async createNamespace(opts = {}) {
      const name = opts.name ?? randomNamespaceName(opts.prefix)
      const fixtures = opts.fixture ? await importOptional<typeof FixtureModule>('../../fixtures/index.js') : undefined
      if (opts.fixture && !fixtures) throw new Error(`fixture ${opts.fixture} requested but fixtures/index.ts is missing`)
      const security = opts.security ?? (opts.fixture ? fixtures?.FIXTURE_POD_SECURITY[opts.fixture] : undefined) ?? 'privileged'
      await createTestNamespace(admin(), name, {bindUser: opts.bindUser === false ? undefined : cluster.userName, security})
      if (opts.fixture && fixtures) {
        await applyDocuments(admin(), name, withOwnNodePorts(await fixtures.loadFixtureDocuments(opts.fixture)))
        // Without a node nothing runs, so nothing can become Ready.
        if (cluster.nodeName) await waitForWorkloads(admin(), name)
        if (cluster.storageClass) await seedVolumes(admin(), name, opts.fixture)
      }
      return name
    },
    deleteNamespace: (ns, opts = {}) => deleteTestNamespace(admin(), ns, opts),
    waitForWorkloads: (ns, opts = {}) => waitForWorkloads(admin(), ns, opts),
    async startPrivateNode(opts = {}) {
      // Cordoning the shared node would strand the pods of test files running beside this one.
      if (opts.exclusive && process.env[SHARED_RUN_VARIABLE]) {
        const message = 'an exclusive private node cordons the shared node while other test files run: give this test file the line `// npm test: runs alone` (see test/run.ts)'
        // Also printed: uvu drops what a before hook throws (its runner returns from a finally block).
        console.error(message)
        throw new Error(message)
      }
      const nodeModule = await importOptional<typeof NodeModule>('./node/index.js')
      if (!nodeModule) throw new Error('a private node was requested but test/cluster/node is missing')
      const name = `${opts.prefix ?? 'private'}-${randomBytes(3).toString('hex')}`
      const taint = {key: `kubesnap.test/${name}`, value: 'true', effect: 'NoSchedule' as const}
      const dir = await mkdtemp(path.join(os.tmpdir(), `kubesnap-${name}-`))
      const core = admin().makeApiClient(CoreV1Api)
      const agent = await nodeModule.startNode({
        dir, server: state.server, caCertFile: state.caCertFile, pki: state.pki, kubeconfig: state.kubeconfigs.admin, name,
        taints: opts.exclusive ? [] : [taint], log: opts.log,
      })
      const cordoned: string[] = []
      const setUnschedulable = (node: string, unschedulable: boolean) =>
        core.patchNode({name: node, body: {spec: {unschedulable}}}, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
      if (opts.exclusive) {
        for (const node of (await core.listNode()).items) {
          if (node.metadata?.name === name || node.spec?.unschedulable) continue
          cordoned.push(node.metadata!.name!)
          await setUnschedulable(node.metadata!.name!, true)
        }
      }
      return {
        name,
        agent,
        placement: {nodeSelector: {'kubernetes.io/hostname': name}, tolerations: [{key: taint.key, operator: 'Exists', effect: taint.effect}]},
        async stop() {
          for (const node of cordoned) await setUnschedulable(node, false).catch(() => {})
          await agent.stop()
          // A stopped node would go NotReady and linger in a shared cluster.
          await core.deleteNode({name}).catch(() => {})
          await rm(dir, {recursive: true, force: true})
        },
      }
    },
    stop,
  }
  return cluster
}

// Where the node ports of the next fixture namespace start (per process, spread by pid): 30000–32767 is the range.
let nextNodePort = 30000 + (process.pid % 100) * 20

/**
 * The fixture's documents with each explicitly chosen nodePort replaced by one
 * no earlier fixture namespace of this run used. A fixed port shared by every
 * copy of a fixture makes each test wait for the last copy's deletion, and on
 * 1.20 the allocator's repair loop can hold a just-released port as leaked for
 * minutes (measured: 30080 still taken 4 minutes after its Service was gone).
 * The ports stay explicit, so restore's rules for chosen ports are what is tested.
 */
function withOwnNodePorts<T extends {kind?: string; spec?: unknown}>(documents: T[]): T[] {
  return documents.map((document) => {
    const spec = document.spec as {ports?: Array<{nodePort?: number}>} | undefined
    if (document.kind !== 'Service' || !spec?.ports?.some((p) => p.nodePort !== undefined)) return document
    const ports = spec.ports.map((p) => {
      if (p.nodePort === undefined) return p
      const nodePort = nextNodePort
      nextNodePort = nextNodePort >= 32767 ? 30000 : nextNodePort + 1
      return {...p, nodePort}
    })
    return {...document, spec: {...spec, ports}}
  })
}

/** A per-part directory in the state dir, so node and storage files never collide with ours. */
async function subdir(controlPlane: ControlPlane, name: string): Promise<string> {
  const dir = path.join(controlPlane.dir, name)
  await mkdir(dir, {recursive: true})
  return dir
}

/**
 * Imports a module relative to this file, or returns undefined when that
 * module is not there (parts are written by different people and land at
 * different times). An error inside an existing module is thrown.
 */
async function importOptional<T>(relative: string, log?: (line: string) => void): Promise<T | undefined> {
  const url = new URL(relative, import.meta.url)
  try {
    return (await import(url.href)) as T
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // Only the module itself missing counts; a missing import inside it is its bug.
    const missing = e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(url.pathname.replace(/\.js$/, ''))
    if (!missing) throw err
    log?.(`${relative} is not there: skipped`)
    return undefined
  }
}

/**
 * Writes the fixture's seed trees onto its claims' volumes, where the node
 * mounts them from: `<fixture>/<claim>` for a plain claim, and
 * `<fixture>/<template>` for a StatefulSet's `<template>-<set>-<ordinal>`.
 */
async function seedVolumes(admin: KubeConfig, namespace: string, fixture: FixtureName): Promise<void> {
  const seeds = await importOptional<typeof SeedModule>('../../fixtures/seed.js')
  if (!seeds) return
  const core = admin.makeApiClient(CoreV1Api)
  const claims = await core.listNamespacedPersistentVolumeClaim({namespace})
  for (const claim of claims.items) {
    const name = claim.metadata?.name ?? ''
    const key = Object.keys(seeds.SEEDS).find((k) => {
      const [owner, seed] = k.split('/')
      return owner === fixture && (name === seed || name.startsWith(`${seed}-`))
    })
    if (!key || !claim.spec?.volumeName) continue
    const pv = await core.readPersistentVolume({name: claim.spec.volumeName})
    if (pv.spec?.hostPath) await seeds.writeSeedTree(key, pv.spec.hostPath.path)
  }
}
