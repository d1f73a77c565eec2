import {test} from 'uvu'
import * as assert from 'uvu/assert'
import pLimit from 'p-limit'
import {BUILTIN_TYPES, KubeApi, discoverResourceTypes, listAll, listObjects, namespacedListable, type ResourceType} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'

let cluster: TestCluster
let ns: string
let admin: KubeApi
let user: KubeApi
const COUNT = 1234
const configmaps: ResourceType = {group: '', version: 'v1', apiVersion: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, verbs: ['list'], shortNames: []}

test.before(async () => {
  cluster = await sharedCluster()
  ns = await cluster.createNamespace({prefix: 'paging'})
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  user = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
  const limit = pLimit(16)
  await Promise.all(Array.from({length: COUNT}, (_, i) => limit(() => admin.post(`/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: `cm-${String(i).padStart(5, '0')}`, labels: {half: String(i % 2)}}, data: {i: String(i)},
  }))))
})

test('discovery finds core, apps and batch types at their preferred versions', async () => {
  const {types, failed} = await discoverResourceTypes(user)
  assert.equal(failed, [])
  const byName = new Map(types.map((t) => [`${t.resource}.${t.group}`, t]))
  assert.is(byName.get('secrets.')?.apiVersion, 'v1')
  assert.is(byName.get('statefulsets.apps')?.apiVersion, 'apps/v1')
  assert.is(byName.get('cronjobs.batch')?.apiVersion, 'batch/v1beta1', '1.20 serves CronJob at v1beta1')
  assert.is(byName.get('namespaces.')?.namespaced, false)
  assert.ok(namespacedListable(types).every((t) => t.namespaced && t.verbs.includes('list')))
  assert.not.ok(types.some((t) => t.resource.includes('/')), 'no subresources')
})

for (const who of ['admin', 'user'] as const) {
  test(`listAll as ${who} returns every object once across pages`, async () => {
    const api = who === 'admin' ? admin : user
    const before = api.requests
    const names: string[] = []
    for await (const {object: obj} of listAll(api, configmaps, {namespace: ns, limit: 100})) {
      assert.is(obj.kind, 'ConfigMap', 'list items get their kind')
      assert.is(obj.apiVersion, 'v1')
      names.push(obj.metadata!.name!)
    }
    const ours = names.filter((n) => n.startsWith('cm-'))
    assert.is(ours.length, COUNT)
    assert.is(new Set(names).size, names.length, 'no duplicates')
    // 1234 ours + kube-root-ca.crt = 1235 objects → 13 pages of 100.
    assert.is(api.requests - before, Math.ceil(names.length / 100))
  })
}

test('listAll gives each object as a GET of it returns it, byte for byte', async () => {
  let checked = 0
  for await (const {object, json} of listAll(user, configmaps, {namespace: ns, limit: 100})) {
    assert.equal(JSON.parse(json), object)
    if (checked < 3) {
      const one = await user.get<unknown>(`/api/v1/namespaces/${ns}/configmaps/${object.metadata!.name}`)
      assert.equal(object, one)
      assert.ok(json.startsWith('{"kind":"ConfigMap","apiVersion":"v1","metadata":{'), json.slice(0, 60))
      checked++
    }
  }
  assert.is(checked, 3)
})

test('listAll passes the label selector to the server', async () => {
  let count = 0
  for await (const {object: obj} of listAll(user, configmaps, {namespace: ns, labelSelector: 'half=1', limit: 500})) {
    assert.is(obj.metadata?.labels?.half, '1')
    count++
  }
  assert.is(count, COUNT / 2)
})

test('listObjects gathers every page; each built-in type kubesnap lists by name is served where BUILTIN_TYPES says', async () => {
  const all = await listObjects(user, configmaps, {namespace: ns, limit: 100})
  assert.is(all.filter((o) => o.metadata?.name?.startsWith('cm-')).length, COUNT)
  assert.is(new Set(all.map((o) => o.metadata?.uid)).size, all.length)
  const {types} = await discoverResourceTypes(user)
  for (const [name, type] of Object.entries(BUILTIN_TYPES)) {
    const served = types.find((t) => t.group === type.group && t.resource === type.resource)
    assert.equal(served && {group: served.group, version: served.version, apiVersion: served.apiVersion, resource: served.resource, kind: served.kind}, type, name)
    assert.equal(await listObjects(user, type, {namespace: ns}), [], `${name}: none in the namespace`)
  }
})

test('listAll as the namespace-only user outside its namespace is Forbidden', async () => {
  try {
    for await (const _ of listAll(user, configmaps, {namespace: 'kube-system'})) break
    assert.unreachable('should be forbidden')
  } catch (err) {
    assert.is((err as {statusCode?: number}).statusCode, 403)
  }
})

test.after(async () => {
  admin.close()
  user.close()
  await cluster.deleteNamespace(ns)
})

test.run()
