/**
 * The test control plane is real: version, authentication, RBAC with the
 * kubesnap Role, controllers, namespace lifecycle, fixture loading, and a stop
 * that leaves no process behind.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Deployment,
} from '@kubernetes/client-node'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {applyDocuments} from './documents.js'
import {sharedCluster, startTestCluster} from './index.js'
import {waitFor} from './wait.js'

/** The HTTP status of a failed API call, or 0 when it did not fail. */
async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call
    return 0
  } catch (err) {
    if (err instanceof ApiException) return err.code
    throw err
  }
}

test('kubectl sees a v1.20.2 server', async () => {
  const cluster = await sharedCluster()
  const {stdout} = await execa('kubectl', ['--kubeconfig', cluster.kubeconfigs.admin, 'version', '-o', 'json'])
  const version = JSON.parse(stdout) as {serverVersion?: {gitVersion?: string}}
  assert.is(version.serverVersion?.gitVersion, 'v1.20.2')
})

test('the admin can create a namespace', async () => {
  const cluster = await sharedCluster()
  const core = cluster.admin().makeApiClient(CoreV1Api)
  const name = `admin-made-${Date.now().toString(36)}`
  await core.createNamespace({body: {metadata: {name}}})
  const read = await core.readNamespace({name})
  assert.is(read.metadata?.name, name)
  await cluster.deleteNamespace(name)
})

test('the user reads Secrets in its namespace and is Forbidden elsewhere', async () => {
  const cluster = await sharedCluster()
  const ns = await cluster.createNamespace({prefix: 'rbac'})
  const other = await cluster.createNamespace({prefix: 'other', bindUser: false})
  assert.match(ns, /^rbac-[a-z0-9]{5}$/)
  const core = cluster.user().makeApiClient(CoreV1Api)
  const secrets = await core.listNamespacedSecret({namespace: ns})
  assert.ok(Array.isArray(secrets.items))
  assert.is(await statusOf(core.listSecretForAllNamespaces()), 403, 'cluster-wide')
  assert.is(await statusOf(core.listNamespacedSecret({namespace: other})), 403, 'another namespace')
  assert.is(await statusOf(core.listNamespace()), 403, 'namespaces')
  // The user's kubeconfig leaves the namespace unset, as a fresh one would.
  assert.is(cluster.user().getContextObject(cluster.user().getCurrentContext())?.namespace, undefined)
  await Promise.all([cluster.deleteNamespace(ns), cluster.deleteNamespace(other)])
})

test('a bad token gets 401', async () => {
  const cluster = await sharedCluster()
  const good = cluster.user()
  const bad = new KubeConfig()
  bad.loadFromOptions({
    clusters: good.clusters,
    users: [{name: 'intruder', token: 'not-a-token'}],
    contexts: [{name: 'intruder', cluster: good.clusters[0].name, user: 'intruder'}],
    currentContext: 'intruder',
  })
  assert.is(await statusOf(bad.makeApiClient(CoreV1Api).listNamespacedSecret({namespace: 'default'})), 401)
})

test('the controller-manager runs: ServiceAccounts, ReplicaSets', async () => {
  const cluster = await sharedCluster()
  const admin = cluster.admin()
  const core = admin.makeApiClient(CoreV1Api)
  const name = `controllers-${Date.now().toString(36)}`
  await core.createNamespace({body: {metadata: {name}}})
  await waitFor('the default ServiceAccount', () => core.readNamespacedServiceAccount({name: 'default', namespace: name}).then(() => true, () => false), {timeoutMs: 10_000})
  await waitFor('kube-root-ca.crt', () => core.readNamespacedConfigMap({name: 'kube-root-ca.crt', namespace: name}).then(() => true, () => false), {timeoutMs: 10_000})

  const deployment: V1Deployment = {
    metadata: {name: 'web'},
    spec: {
      replicas: 1,
      selector: {matchLabels: {app: 'web'}},
      template: {metadata: {labels: {app: 'web'}}, spec: {containers: [{name: 'web', image: 'busybox'}]}},
    },
  }
  const apps = admin.makeApiClient(AppsV1Api)
  const created = await apps.createNamespacedDeployment({namespace: name, body: deployment})
  await waitFor('a ReplicaSet owned by the Deployment', async () => {
    const sets = await apps.listNamespacedReplicaSet({namespace: name})
    return sets.items.some((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === created.metadata?.uid))
  }, {timeoutMs: 10_000})
  await cluster.deleteNamespace(name)
})

test('deleteNamespace waits until the namespace is gone', async () => {
  const cluster = await sharedCluster()
  const ns = await cluster.createNamespace({prefix: 'gone'})
  const core = cluster.admin().makeApiClient(CoreV1Api)
  await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'something'}, data: {a: 'b'}}})
  await cluster.deleteNamespace(ns, {wait: true})
  assert.is(await statusOf(core.readNamespace({name: ns})), 404)
  // Deleting what is gone is not an error: clean-up code may run twice.
  await cluster.deleteNamespace(ns, {wait: true})
})

test('documents load: CRD cluster-wide and Established, objects in the namespace, twice', async () => {
  const cluster = await sharedCluster()
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {name: 'widgets.test.kubesnap.io'},
    spec: {
      group: 'test.kubesnap.io',
      scope: 'Namespaced',
      names: {plural: 'widgets', singular: 'widget', kind: 'Widget'},
      versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}],
    },
  }
  const documents = [
    crd,
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'settings'}, data: {mode: 'test'}},
    {apiVersion: 'test.kubesnap.io/v1', kind: 'Widget', metadata: {name: 'w1'}, spec: {size: 3}},
  ]
  // Two namespaces: the second finds the CRD already there.
  for (const prefix of ['docs-a', 'docs-b']) {
    const ns = await cluster.createNamespace({prefix})
    await applyDocuments(cluster.admin(), ns, documents)
    const widget = await cluster.user().makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({group: 'test.kubesnap.io', version: 'v1', namespace: ns, plural: 'widgets', name: 'w1'}) as {spec?: {size?: number}}
    assert.is(widget.spec?.size, 3)
    const cm = await cluster.user().makeApiClient(CoreV1Api).readNamespacedConfigMap({name: 'settings', namespace: ns})
    assert.is(cm.data?.mode, 'test')
    await cluster.deleteNamespace(ns)
  }
})

test('a fixture loads whole: its custom resource keeps its spec, its workloads run', async () => {
  const cluster = await sharedCluster()
  const ns = await cluster.createNamespace({prefix: 'sf', fixture: 'softwarefactory'})
  const sf = await cluster.user().makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'sf.softwarefactory-project.io', version: 'v1', namespace: ns, plural: 'softwarefactories', name: 'my-sf',
  }) as {spec?: {fqdn?: string}}
  // The CRD's x-kubernetes-preserve-unknown-fields must survive loading, or the spec is pruned.
  assert.is(sf.spec?.fqdn, 'sfop.me')
  if (cluster.nodeName) {
    const sets = await cluster.admin().makeApiClient(AppsV1Api).listNamespacedStatefulSet({namespace: ns})
    assert.ok(sets.items.length > 0 && sets.items.every((s) => s.status?.readyReplicas === s.spec?.replicas))
  }
  await cluster.deleteNamespace(ns)
})

/** Each live process's parent, from /proc. */
function parents(): Map<number, number> {
  const map = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // Fields after the command's closing parenthesis: state, ppid, pgrp…
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      map.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // Gone between readdir and read.
    }
  }
  return map
}

/** Pids of the processes under `roots` (roots included). */
function treeOf(roots: number[]): Set<number> {
  const ppids = parents()
  const found = new Set<number>(roots)
  let frontier = roots
  while (frontier.length > 0) {
    frontier = [...ppids].filter(([pid, ppid]) => frontier.includes(ppid) && !found.has(pid)).map(([pid]) => pid)
    frontier.forEach((pid) => found.add(pid))
  }
  return found
}

/** This process's direct children. */
function children(): number[] {
  return [...parents()].filter(([, ppid]) => ppid === process.pid).map(([pid]) => pid)
}

/** Pids (of `among`) still present, or still leading or in a process group of `among`. */
function survivors(among: Set<number>): number[] {
  const left: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
      if (among.has(Number(entry)) || among.has(pgrp)) left.push(Number(entry))
    } catch {
      // Gone: good.
    }
  }
  return left
}

test('stop() leaves no process and no state dir behind (own cluster)', async () => {
  const before = new Set(children())
  const cluster = await startTestCluster()
  // Only what this cluster started: the shared cluster's process and its pods are older.
  const ours = treeOf(children().filter((pid) => !before.has(pid)))
  assert.ok(ours.size >= 4, `expected at least etcd, apiserver, controller-manager and scheduler, found ${[...ours].join(', ')}`)
  await cluster.stop()
  // Reaping is asynchronous: give the kernel a moment before calling a pid a survivor.
  let left = survivors(ours)
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await sleep(100)
    left = survivors(ours)
  }
  assert.equal(left, [], `processes left: ${left.join(', ')}`)
  assert.not.ok(existsSync(cluster.dir), `${cluster.dir} removed`)
})

test.run()
