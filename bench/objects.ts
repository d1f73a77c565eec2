/**
 * Benchmark: a namespace of 10,000 objects (Secrets, ConfigMaps and custom
 * resources of mixed sizes) snapshotted by the namespace-only user.
 */
import {createHash} from 'node:crypto'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import yaml from 'js-yaml'
import pLimit from 'p-limit'
import type {ObjectEntry} from '../src/archive/manifest.js'
import {openArchive} from '../src/archive/reader.js'
import {KubeApi} from '../src/cluster/index.js'
import {collectionPath} from '../src/cluster/discovery.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {cleanForRestore} from '../src/resources/clean.js'
import {ensureCrd} from '../test/cluster/documents.js'
import type {TestCluster} from '../test/cluster/index.js'
import {KUBESNAP_BIN} from '../test/helpers/cli.js'
import {controlPlaneCpuSeconds, measure} from './measure.js'

const CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: {name: 'widgets.bench.kubesnap.test'},
  spec: {
    group: 'bench.kubesnap.test',
    scope: 'Namespaced',
    names: {plural: 'widgets', singular: 'widget', kind: 'Widget'},
    versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}],
  },
}

/** Deterministic filler of a given size (no Math.random: runs compare). */
function filler(seed: number, bytes: number): string {
  let out = ''
  let block = createHash('sha256').update(String(seed)).digest('hex')
  while (out.length < bytes) {
    out += block
    block = createHash('sha256').update(block).digest('hex')
  }
  return out.slice(0, bytes)
}

/** Sizes from 200 B to 16 KiB, with one in a hundred at 100 KiB. */
function sizeOf(i: number): number {
  return i % 100 === 0 ? 100 * 1024 : [200, 1024, 4096, 16 * 1024][i % 4]
}

/** Loads `count` objects into a fresh namespace; returns it. */
export async function loadObjects(cluster: TestCluster, count: number): Promise<string> {
  const ns = await cluster.createNamespace({prefix: 'bench'})
  const api = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  try {
    await ensureCrd(cluster.admin(), CRD)
    const limit = pLimit(32)
    await Promise.all(Array.from({length: count}, (_, i) => limit(() => {
      const name = `obj-${String(i).padStart(6, '0')}`
      const data = filler(i, sizeOf(i))
      switch (i % 5) {
        case 0:
        case 1:
          return api.post(`/api/v1/namespaces/${ns}/secrets`, {metadata: {name}, stringData: {value: data}})
        case 2:
        case 3:
          return api.post(`/api/v1/namespaces/${ns}/configmaps`, {metadata: {name}, data: {value: data}})
        default:
          return api.post(`/apis/bench.kubesnap.test/v1/namespaces/${ns}/widgets`, {apiVersion: 'bench.kubesnap.test/v1', kind: 'Widget', metadata: {name}, spec: {payload: data}})
      }
    })))
  } finally {
    api.close()
  }
  return ns
}

/** One cleaned object as restore would create it: where it is POSTed, and its JSON. */
interface CleanedObject {
  collection: string
  json: string
}

/**
 * The archive's objects cleaned for `namespace` as restore cleans them, read
 * once: the input of the baselines, so they send what kubesnap sends.
 */
export async function cleanedObjects(archive: string, namespace: string): Promise<CleanedObject[]> {
  const reader = await openArchive(archive)
  const source = reader.manifest.namespace
  const out: CleanedObject[] = []
  for (const entry of reader.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')) {
    const stored = JSON.parse((await reader.readObject(entry)).toString('utf8'))
    const cleaned = cleanForRestore(stored, entry, {sourceNamespace: source, targetNamespace: namespace})
    out.push({collection: collectionPath(entry, namespace), json: JSON.stringify(cleaned)})
  }
  return out
}

/** The server, CA and bearer token of a kubeconfig's current context (the test cluster's: token users). */
function credentials(kubeconfig: string): {server: string; ca: Buffer; token: string} {
  const config = yaml.load(readFileSync(kubeconfig, 'utf8')) as {
    'current-context': string
    contexts: {name: string; context: {cluster: string; user: string}}[]
    clusters: {name: string; cluster: {server: string; 'certificate-authority-data': string}}[]
    users: {name: string; user: {token: string}}[]
  }
  const context = config.contexts.find((c) => c.name === config['current-context'])!.context
  const cluster = config.clusters.find((c) => c.name === context.cluster)!.cluster
  const user = config.users.find((u) => u.name === context.user)!.user
  return {server: cluster.server, ca: Buffer.from(cluster['certificate-authority-data'], 'base64'), token: user.token}
}

/**
 * The ceiling: `objects` POSTed by the least client there is (node:https on
 * keep-alive sockets, bodies serialized beforehand, no retries, no kubesnap
 * code), `concurrency` at a time. Returns the seconds it took; throws on the
 * first answer that is neither 201 nor 409 (what the namespace made by itself,
 * its `default` ServiceAccount, restore skips too).
 */
export async function postAll(kubeconfig: string, objects: CleanedObject[], concurrency: number): Promise<number> {
  const {server, ca, token} = credentials(kubeconfig)
  const base = new URL(server)
  const agent = new https.Agent({keepAlive: true, maxSockets: concurrency, ca})
  const post = (o: CleanedObject) => new Promise<void>((resolve, reject) => {
    const req = https.request({
      host: base.hostname, port: base.port, path: o.collection, method: 'POST', agent,
      headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(o.json)},
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => (res.statusCode === 201 || res.statusCode === 409 ? resolve() : reject(new Error(`POST ${o.collection}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`))))
    })
    req.on('error', reject)
    req.end(o.json)
  })
  let next = 0
  const started = process.hrtime.bigint()
  try {
    await Promise.all(Array.from({length: concurrency}, async () => {
      while (next < objects.length) await post(objects[next++])
    }))
  } finally {
    agent.destroy()
  }
  return Number(process.hrtime.bigint() - started) / 1e9
}

/** `kubectl apply --server-side -f FILE` of `objects` (one JSON file), as a user would script it; returns its measurement. */
export async function kubectlApply(kubeconfig: string, objects: CleanedObject[]): Promise<{seconds: number; peakRssMiB: number; cpuSeconds: number}> {
  const file = join(mkdtempSync(join(tmpdir(), 'kubesnap-bench-kubectl-')), 'objects.json')
  // One List, as `kubectl get -o json` writes them (a file that starts with `{` is read as JSON: no `---` between documents).
  writeFileSync(file, `{"apiVersion":"v1","kind":"List","items":[\n${objects.map((o) => o.json).join(',\n')}\n]}\n`)
  const run = await measure('/usr/bin/kubectl', ['apply', '--server-side', '-f', file, '--kubeconfig', kubeconfig, '-o', 'name'])
  if (run.code !== 0) throw new Error(`kubectl apply failed (exit ${run.code}): ${run.stderr.slice(0, 1000)}`)
  const applied = run.stdout.split('\n').filter(Boolean).length
  if (applied !== objects.length) throw new Error(`kubectl apply applied ${applied} objects, not ${objects.length}`)
  return {seconds: run.ms / 1000, peakRssMiB: run.peakRssMiB, cpuSeconds: run.cpuSeconds}
}

/** Concurrencies the ceiling client is tried at; the best is the ceiling. */
export const CEILING_CONCURRENCY = [8, 16, 32, 64]

export interface ObjectsBenchResult {
  objects: number
  loadSeconds: number
  snapshotSeconds: number
  peakRssMiB: number
  apiRequests: number
  archiveMiB: number
  archive: string
  restoreSeconds: number
  restorePeakRssMiB: number
  restored: number
  /** CPU-seconds of the restore: kubesnap's process, and the control plane serving it. */
  restoreCpu: RunCpu
  /** The minimal client's seconds for the same objects, per concurrency. */
  ceiling: {concurrency: number; seconds: number; cpu: RunCpu}[]
  kubectl: {seconds: number; peakRssMiB: number; cpu: RunCpu}
}

/** Where a run's CPU went: the client's process, and the control plane (API server, etcd, controllers) serving it. */
export interface RunCpu {
  client: number
  controlPlane: number
}

/** Runs `work` and returns its result with the control plane's CPU-seconds meanwhile. */
async function withControlPlaneCpu<T>(cluster: TestCluster, work: () => Promise<T>): Promise<[T, number]> {
  const before = controlPlaneCpuSeconds(cluster.dir)
  const result = await work()
  return [result, controlPlaneCpuSeconds(cluster.dir) - before]
}

/** Loads 10,000 objects and snapshots them as the namespace-only user. */
export async function benchObjects(cluster: TestCluster, count = 10_000): Promise<ObjectsBenchResult> {
  const loadStarted = Date.now()
  const ns = await loadObjects(cluster, count)
  const loadSeconds = (Date.now() - loadStarted) / 1000
  const out = mkdtempSync(join(tmpdir(), 'kubesnap-bench-out-'))
  const run = await measure(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', out, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  if (run.code !== 0) throw new Error(`snapshot failed (exit ${run.code}): ${run.stderr}`)
  const summary = JSON.parse(run.stdout)
  // Restore into an empty namespace, as the same user: every object is created.
  const target = await cluster.createNamespace({prefix: 'bench-restore'})
  const [restore, restoreServerCpu] = await withControlPlaneCpu(cluster, () => measure(process.execPath, [KUBESNAP_BIN, 'restore', summary.path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user, '--json']))
  if (restore.code !== 0) throw new Error(`restore failed (exit ${restore.code}): ${restore.stderr}`)
  const restored = JSON.parse(restore.stdout)
  // Each baseline into a fresh namespace, each namespace deleted before the next run: the server holds the same each time.
  await cluster.deleteNamespace(target, {wait: true})
  const ceiling = []
  for (const concurrency of CEILING_CONCURRENCY) {
    const into = await cluster.createNamespace({prefix: 'bench-ceiling'})
    const objects = await cleanedObjects(summary.path, into)
    // The client runs in this process: its CPU is this process's over the run.
    const started = process.cpuUsage()
    const [seconds, controlPlane] = await withControlPlaneCpu(cluster, () => postAll(cluster.kubeconfigs.user, objects, concurrency))
    const used = process.cpuUsage(started)
    ceiling.push({concurrency, seconds, cpu: {client: (used.user + used.system) / 1e6, controlPlane}})
    await cluster.deleteNamespace(into, {wait: true})
  }
  const into = await cluster.createNamespace({prefix: 'bench-kubectl'})
  const cleaned = await cleanedObjects(summary.path, into)
  const [applied, kubectlServerCpu] = await withControlPlaneCpu(cluster, () => kubectlApply(cluster.kubeconfigs.user, cleaned))
  const kubectl = {seconds: applied.seconds, peakRssMiB: applied.peakRssMiB, cpu: {client: applied.cpuSeconds, controlPlane: kubectlServerCpu}}
  await cluster.deleteNamespace(into, {wait: true})
  return {
    ceiling,
    kubectl,
    restoreSeconds: restore.ms / 1000,
    restorePeakRssMiB: restore.peakRssMiB,
    restoreCpu: {client: restore.cpuSeconds, controlPlane: restoreServerCpu},
    restored: restored.objects.create,
    objects: summary.objects,
    loadSeconds,
    snapshotSeconds: run.ms / 1000,
    peakRssMiB: run.peakRssMiB,
    apiRequests: summary.apiRequests,
    archiveMiB: summary.bytes / 1024 / 1024,
    archive: summary.path,
  }
}
