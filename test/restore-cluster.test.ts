/**
 * Restore into another cluster, as after a disaster: the `softwarefactory`
 * fixture snapshotted in the shared test cluster (A), then restored into a
 * second, independent cluster (B: its own etcd, control plane, PKI, users,
 * node and storage) whose only StorageClass is `fast` — as B's namespace-only
 * user, into a namespace B's admin created and bound kubesnap's Role in.
 *
 * B starts here (≈15 s) and stops at the end: no other test pays for it.
 *
 *   npm test -- restore-cluster
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, startTestCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {archivedObjects, assertRestored, FIXTURE_CLAIMS, isHarness, seededTrees, seedTree, versions, volumeDir, volumeTrees, workloadReadiness, type ArchivedObject} from './helpers/restore.js'
import {hashTree} from '../fixtures/seed.js'
import {loadFixtureDocuments} from '../fixtures/index.js'
import {ensureCrd} from './cluster/documents.js'
import {waitFor} from './cluster/wait.js'

const SF_WORKLOADS = ['Deployment/gateway 1/1', 'StatefulSet/mariadb 1/1', 'StatefulSet/zookeeper 1/1']

let a: TestCluster
let b: TestCluster
let adminA: KubeApi
let adminB: KubeApi
let source: string
let archive: string
let objects: ArchivedObject[]
const dirs: string[] = []
const namespacesB: string[] = []

/** Runs `kubesnap restore ARCHIVE --to-namespace NS …` against cluster B as its namespace-only user. */
function restoreIntoB(namespace: string, args: string[] = []) {
  return kubesnap(['restore', archive, '--to-namespace', namespace, '--kubeconfig', b.kubeconfigs.user, '--timeout', '90s', '--json', ...args], {timeoutMs: 240_000})
}

/** A namespace in B made as its admin would for a DR restore: created, with kubesnap's Role bound to the user. */
async function namespaceInB(prefix: string): Promise<string> {
  const ns = await b.createNamespace({prefix})
  namespacesB.push(ns)
  return ns
}

test.before(async () => {
  a = await sharedCluster()
  const started = Date.now()
  // Another cluster: nothing shared with A but the machine (its own dir, ports, PKI and node).
  b = await startTestCluster({storageClass: 'fast', nodeName: 'kubesnap-node-b'})
  console.log(`# cluster B (StorageClass fast) started in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  adminA = new KubeApi(loadKubeConfig({kubeconfig: a.kubeconfigs.admin}))
  adminB = new KubeApi(loadKubeConfig({kubeconfig: b.kubeconfigs.admin}))
  source = await a.createNamespace({prefix: 'dr-src', fixture: 'softwarefactory'})
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-dr-'))
  dirs.push(dir)
  const r = await kubesnap(['snapshot', '-n', source, '-o', dir, '--kubeconfig', a.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr)
  archive = r.json.path
  objects = (await archivedObjects(archive)).filter(({entry}) => !isHarness(entry))
  // The runbook's first step in the new cluster: its admin installs the CRDs the custom resources need.
  for (const crd of (await loadFixtureDocuments('softwarefactory')).filter((d) => d.kind === 'CustomResourceDefinition')) await ensureCrd(b.admin(), crd)
})

test('cluster B is another cluster: its own server, node and default StorageClass fast, no standard', async () => {
  assert.is.not(b.server, a.server)
  assert.is(b.storageClass, 'fast')
  assert.is(b.nodeName, 'kubesnap-node-b')
  const classes = await adminB.get<any>('/apis/storage.k8s.io/v1/storageclasses')
  assert.equal(classes.items.map((c: any) => c.metadata.name), ['fast'])
  const nodes = await adminB.get<any>('/api/v1/nodes')
  assert.equal(nodes.items.map((n: any) => n.metadata.name), ['kubesnap-node-b'])
  assert.not.ok((await adminA.get<any>('/api/v1/nodes')).items.some((n: any) => n.metadata.name === 'kubesnap-node-b'), 'A does not see B\'s node')
})

test('without a right to read StorageClasses: a warning before the first write, then a claim of the missing class fails within seconds with its event\'s reason and the flag', async () => {
  const ns = await namespaceInB('dr-pending')
  const started = Date.now()
  const r = await restoreIntoB(ns, ['--resource', 'pvc/mariadb-logs-mariadb-0'])
  const seconds = (Date.now() - started) / 1000
  assert.is(r.code, 3, r.stderr + r.stdout)
  assert.ok(r.json.warnings.some((w: string) => /may not list StorageClasses.*StorageClass standard exists here.*--map-storage-class/.test(w)), r.json.warnings.join('\n'))
  assert.equal(r.json.outcomes.map((o: any) => `${o.action} ${o.kind}/${o.name}`), ['create PersistentVolumeClaim/mariadb-logs-mariadb-0'])
  const [volume] = r.json.volumes
  assert.is(volume.action, 'failed')
  assert.match(volume.error, /claim mariadb-logs-mariadb-0 is Pending: storageclass\.storage\.k8s\.io "standard" not found; map it with --map-storage-class standard=NEW/)
  // Not after --timeout (90 s): the claim's events say it at once.
  assert.ok(seconds < 30, `reported after ${seconds.toFixed(1)} s`)
  console.log(`# Pending claim reported after ${seconds.toFixed(1)} s`)
})

test('preflight, as a user who may read StorageClasses: without a mapping, exit 1 before any write, naming class standard and the flag', async () => {
  // The runbook's step for the target's admin: read access to StorageClasses, so the preflight can check them.
  await adminB.post('/apis/rbac.authorization.k8s.io/v1/clusterroles', {metadata: {name: 'kubesnap-storageclasses'}, rules: [{apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list']}]})
  await adminB.post('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: {name: 'kubesnap-storageclasses'},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubesnap-storageclasses'},
    subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: b.userName}],
  })
  const user = new KubeApi(loadKubeConfig({kubeconfig: b.kubeconfigs.user}))
  // RBAC reaches the authorizer through an informer: a moment after the write.
  await waitFor('the user to read StorageClasses', () => user.get('/apis/storage.k8s.io/v1/storageclasses').then(() => true, () => false), {timeoutMs: 30_000})
  user.close()
  const ns = await namespaceInB('dr-nomap')
  const before = await versions(adminB, ns)
  const r = await restoreIntoB(ns)
  assert.is(r.code, 1, r.stderr + r.stdout)
  const message = r.json?.error?.message ?? r.stderr
  assert.match(message, /nothing was changed/)
  assert.not.match(message, /CustomResourceDefinition/, 'the CRD is installed: the class is the only problem')
  const named = /StorageClass standard \(([^)]*)\) does not exist in this cluster: map it with --map-storage-class standard=NEW \(this cluster has fast\)\./.exec(message)
  assert.ok(named, message)
  // The fixture's volumeClaimTemplates name no class (the default's); the claims made from them were given standard.
  assert.equal(named![1].split(', ').sort(), ['claim mariadb-logs-mariadb-0', 'claim zookeeper-data-zookeeper-0'], message)
  assert.equal(await versions(adminB, ns), before, 'nothing was created or changed in B')
})

test('--resource names what the archive lacks: exit 2 naming it; a Deployment alone: its pull Secret is named with the flag that brings it', async () => {
  const ns = await namespaceInB('dr-res')
  const missing = await restoreIntoB(ns, ['--resource', 'secret/no-such-secret'])
  assert.is(missing.code, 2, missing.stderr + missing.stdout)
  assert.match(missing.json?.error?.message ?? missing.stderr, /--resource secret\/no-such-secret: the archive holds no secrets named no-such-secret/)
  const alone = await restoreIntoB(ns, ['--resource', 'deploy/gateway', '--map-storage-class', 'standard=fast'])
  assert.is(alone.code, 1, alone.stderr + alone.stdout)
  assert.match(alone.json?.error?.message ?? alone.stderr, /image-pull Secret registry-pull \(used by Deployment gateway\) is neither restored nor present in .*: the archive has it but the selection leaves it out: add --resource secret\/registry-pull/)
})

test('--resource secret and claim: exactly those two objects, and the claim\'s data byte for byte', async () => {
  const ns = await namespaceInB('dr-one')
  const r = await restoreIntoB(ns, ['--resource', 'secret/mariadb-root-password', '--resource', 'persistentvolumeclaims/mariadb-logs-mariadb-0', '--map-storage-class', 'standard=fast'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.equal(r.json.outcomes.map((o: any) => `${o.action} ${o.kind}/${o.name}`).sort(), ['create PersistentVolumeClaim/mariadb-logs-mariadb-0', 'create Secret/mariadb-root-password'])
  assert.equal(r.json.volumes.map((v: any) => [v.claim, v.action]), [['mariadb-logs-mariadb-0', 'restored']])
  await assertRestored(adminB, objects.filter(({entry}) => ['mariadb-root-password', 'mariadb-logs-mariadb-0'].includes(entry.name) && ['secrets', 'persistentvolumeclaims'].includes(entry.resource)), source, ns, {storageClasses: {standard: 'fast'}})
  assert.equal(await hashTree(await volumeDir(adminB, ns, 'mariadb-logs-mariadb-0')), await seedTree(FIXTURE_CLAIMS.softwarefactory['mariadb-logs-mariadb-0']))
  const live = await versions(adminB, ns)
  assert.not.ok(Object.keys(live).some((k) => k.startsWith('statefulsets/') || k.startsWith('configmaps/sf')), Object.keys(live).join(' '))
})

test('with --map-storage-class standard=fast: every object equal to the archive after cleaning and mapping, every volume file equal, StatefulSets Ready', async () => {
  const ns = await namespaceInB('sf-dr')
  const dry = await restoreIntoB(ns, ['--map-storage-class', 'standard=fast', '--dry-run'])
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.ok(dry.json.outcomes.every((o: any) => o.action === 'create' || (o.action === 'skip' && isHarnessName(o))), JSON.stringify(dry.json.outcomes.filter((o: any) => o.action !== 'create')))
  const started = Date.now()
  const r = await restoreIntoB(ns, ['--map-storage-class', 'standard=fast'])
  const seconds = (Date.now() - started) / 1000
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  assert.is(r.json.objects.failed, 0)
  assert.equal(r.json.volumes.map((v: any) => [v.claim, v.action]).sort(), [['mariadb-logs-mariadb-0', 'restored'], ['zookeeper-data-zookeeper-0', 'restored']])
  await assertRestored(adminB, objects, source, ns, {storageClasses: {standard: 'fast'}})
  const claims = await adminB.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims`)
  assert.equal(claims.items.map((c: any) => `${c.metadata.name} ${c.spec.storageClassName} ${c.status.phase}`).sort(), ['mariadb-logs-mariadb-0 fast Bound', 'zookeeper-data-zookeeper-0 fast Bound'])
  assert.equal(await volumeTrees(adminB, ns), await seededTrees('softwarefactory'), 'every file: sha256, owner, mode, links')
  assert.equal(await workloadReadiness(adminB, ns), SF_WORKLOADS)
  console.log(`# cross-cluster restore of softwarefactory: ${seconds.toFixed(1)} s, ${r.json.objects.create} objects created`)
})

/** Whether a dry-run outcome is one of the harness's objects (present in every test namespace, so skipped). */
function isHarnessName(o: {resource: string; name: string}): boolean {
  const [resource, ...group] = o.resource.split('.')
  return isHarness({resource, group: group.join('.'), name: o.name} as any)
}

test.after(async () => {
  if (source) await a.deleteNamespace(source).catch(() => {})
  adminA?.close()
  adminB?.close()
  await b?.stop()
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
})

test.run()
