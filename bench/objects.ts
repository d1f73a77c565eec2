/**
 * Benchmark: a namespace of 10,000 objects (Secrets, ConfigMaps and custom
 * resources of mixed sizes) snapshotted by the namespace-only user.
 */
import {createHash} from 'node:crypto'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import pLimit from 'p-limit'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {ensureCrd} from '../test/cluster/documents.js'
import type {TestCluster} from '../test/cluster/index.js'
import {KUBESNAP_BIN} from '../test/helpers/cli.js'
import {measure} from './measure.js'

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
  const restore = await measure(process.execPath, [KUBESNAP_BIN, 'restore', summary.path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  if (restore.code !== 0) throw new Error(`restore failed (exit ${restore.code}): ${restore.stderr}`)
  const restored = JSON.parse(restore.stdout)
  return {
    restoreSeconds: restore.ms / 1000,
    restorePeakRssMiB: restore.peakRssMiB,
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
