/**
 * The controller loop behind the provisioner and the snapshot controller, on
 * bad days: its watch is cut and its relists fail (through the fault proxy,
 * against the real apiserver), and it still reconciles every change.
 *
 *   cd /work/main && node --import tsx test/cluster/storage/informer.test.ts
 */
import {CoreV1Api, KubeConfig, type V1ConfigMap} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {type FaultProxy, startFaultProxy, withProxy} from '../faults/proxy.js'
import {sharedCluster, type TestCluster} from '../index.js'
import {type Informer, startInformer} from './informer.js'
import {waitFor} from '../wait.js'

let cluster: TestCluster
let proxy: FaultProxy
let ns: string
let informer: Informer | undefined
const seen = new Map<string, string>()
const gone = new Set<string>()
const logLines: string[] = []
const INFORMER_WAIT = {timeoutMs: 15_000, intervalMs: 50, detail: () => `informer log: ${logLines.join(' | ')}`}

test.before(async () => {
  cluster = await sharedCluster()
  ns = await cluster.createNamespace({prefix: 'informer', bindUser: false})
  const ca = cluster.admin().getCurrentCluster()!
  proxy = await startFaultProxy({target: cluster.server, caCertFile: ca.caFile, caCert: ca.caData ? Buffer.from(ca.caData, 'base64') : undefined})
  const kubeconfig = new KubeConfig()
  kubeconfig.loadFromFile(await withProxy(cluster.kubeconfigs.admin, proxy))
  const api = kubeconfig.makeApiClient(CoreV1Api)
  informer = startInformer<V1ConfigMap>({
    name: 'test',
    kubeconfig,
    path: `/api/v1/namespaces/${ns}/configmaps`,
    list: () => api.listNamespacedConfigMap({namespace: ns}),
    reconcile: async (cm) => void seen.set(cm.metadata!.name!, cm.data?.value ?? ''),
    deleted: async (cm) => void gone.add(cm.metadata!.name!),
    resyncMs: 60_000, // longer than any test: recovery must come from relisting, not from the resync
    log: (line) => logLines.push(line),
  })
  await informer.synced
})

test.after(async () => {
  await informer?.stop()
  await proxy?.stop()
  if (ns) await cluster.deleteNamespace(ns)
})

test('reconciles what is created, changed and deleted', async () => {
  await put('a', '1')
  await waitFor('a=1', () => seen.get('a') === '1', INFORMER_WAIT)
  await put('a', '2')
  await waitFor('a=2', () => seen.get('a') === '2', INFORMER_WAIT)
  await api().deleteNamespacedConfigMap({namespace: ns, name: 'a'})
  await waitFor('a deleted', () => gone.has('a'), INFORMER_WAIT)
})

test('a cut watch is resumed by relisting: changes made while it was down arrive', async () => {
  assert.ok(proxy.cutConnections() >= 1, 'the watch was open')
  // While the informer reconnects, its list fails twice.
  proxy.addRule({method: 'GET', pathPattern: new RegExp(`/namespaces/${ns}/configmaps$`), status: 500, times: 2})
  await put('b', 'during-outage')
  await waitFor('b after the outage', () => seen.get('b') === 'during-outage', INFORMER_WAIT)
  assert.ok(proxy.log.filter((e) => e.status === 500).length === 2, 'the failing lists were retried')
  await put('c', 'after')
  await waitFor('c through the new watch', () => seen.get('c') === 'after', INFORMER_WAIT)
})

test('an object deleted while the watch was down is reported deleted after the relist', async () => {
  await put('d', 'x')
  await waitFor('d', () => seen.get('d') === 'x', INFORMER_WAIT)
  proxy.addRule({method: 'GET', pathPattern: new RegExp(`/namespaces/${ns}/configmaps$`), status: 503, times: 1})
  proxy.cutConnections()
  await api().deleteNamespacedConfigMap({namespace: ns, name: 'd'})
  await waitFor('d deleted', () => gone.has('d'), INFORMER_WAIT)
})

test.run()

function api(): CoreV1Api {
  return cluster.admin().makeApiClient(CoreV1Api)
}

async function put(name: string, value: string): Promise<void> {
  try {
    await api().replaceNamespacedConfigMap({namespace: ns, name, body: {metadata: {name}, data: {value}}})
  } catch {
    await api().createNamespacedConfigMap({namespace: ns, body: {metadata: {name}, data: {value}}})
  }
}

