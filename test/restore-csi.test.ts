/**
 * `kubesnap restore --volumes csi` against the real control plane and our
 * storage (provisioner + snapshot controller), as the namespace-only user: the
 * jenkins fixture snapshotted with --volumes csi, its StatefulSet and claim
 * deleted (the VolumeSnapshots stay), planned with --dry-run (nothing
 * written), and restored: the claim is re-created with `dataSource:
 * VolumeSnapshot` and its new volume holds the seed tree; a default (tar)
 * restore of the csi archive says it has no tar data; a VolumeSnapshot that is
 * gone refuses the restore before any write.
 *
 *   node --import tsx test/restore-csi.test.ts   (after npm run build)
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {hashTree} from '../fixtures/seed.js'
import {openArchive} from '../src/archive/index.js'
import type {ObjectEntry} from '../src/archive/manifest.js'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {quantityBytes} from '../src/restore/volumes.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {waitFor} from './cluster/wait.js'
import {kubesnap} from './helpers/cli.js'
import {seedTree, volumeDir} from './helpers/restore.js'

const CLAIM = 'jenkins-home-jenkins-0'
const SNAPSHOTS = '/apis/snapshot.storage.k8s.io/v1/namespaces/NS/volumesnapshots'

let cluster: TestCluster
let admin: KubeApi
let seed: Record<string, string>
let ns = ''
let dir = ''
let archive = ''
/** VolumeSnapshot name by claim, as the archive recorded them. */
let snapshotOf: Record<string, string> = {}

test('quantityBytes reads Kubernetes quantities', () => {
  assert.equal([quantityBytes('1Gi'), quantityBytes('500M'), quantityBytes('1073741824'), quantityBytes(2048), quantityBytes(undefined), quantityBytes('lots')], [2 ** 30, 5e8, 2 ** 30, 2048, 0, 0])
})

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  seed = await seedTree('jenkins/jenkins-home')
})

function restore(args: string[], json = true) {
  return kubesnap(['restore', archive, ...args, '--kubeconfig', cluster.kubeconfigs.user, ...(json ? ['--json'] : [])], {timeoutMs: 300_000})
}

async function gone(path: string): Promise<boolean> {
  return admin.get(path).then(() => false, (err) => err?.statusCode === 404)
}

/** Deletes an object and waits until it is gone. */
async function remove(path: string): Promise<void> {
  await admin.delete(path, {query: {propagationPolicy: 'Foreground'}}).catch(() => undefined)
  await waitFor(`${path} to be deleted`, () => gone(path), {timeoutMs: 120_000, intervalMs: 250})
}

/** The disaster: the StatefulSet and its claim are deleted; the VolumeSnapshots stay. */
async function deleteJenkinsAndClaim(): Promise<void> {
  await remove(`/apis/apps/v1/namespaces/${ns}/statefulsets/jenkins`)
  await remove(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${CLAIM}`)
}

/** resourceVersions of what restore could touch: proof that nothing was written. */
async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const path of ['/api/v1/namespaces/NS/secrets', '/api/v1/namespaces/NS/configmaps', '/api/v1/namespaces/NS/persistentvolumeclaims', '/api/v1/namespaces/NS/pods', '/apis/apps/v1/namespaces/NS/statefulsets', '/apis/apps/v1/namespaces/NS/deployments', SNAPSHOTS]) {
    const list = await admin.get<any>(path.replace('NS', ns))
    for (const item of list.items) out[`${path.split('/').pop()}/${item.metadata.name}`] = item.metadata.resourceVersion
  }
  return out
}

test('snapshot --volumes csi records one VolumeSnapshot per bound claim', async () => {
  ns = await cluster.createNamespace({prefix: 'rcsi-jenkins', fixture: 'jenkins'})
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-rcsi-'))
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--volumes', 'csi', '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.volumeSnapshots, 2)
  assert.is(r.json.volumes, 0, 'no tar data')
  archive = r.json.path
  const reader = await openArchive(archive)
  for (const e of reader.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object' && e.resource === 'volumesnapshots')) {
    const snap = JSON.parse((await reader.readObject(e)).toString('utf8'))
    snapshotOf[snap.spec.source.persistentVolumeClaimName] = e.name
  }
  assert.equal(Object.keys(snapshotOf).sort(), ['agent-cache', CLAIM])
  assert.match(snapshotOf[CLAIM], new RegExp(`^${CLAIM}-kubesnap-${r.json.number}-`))
})

test('StatefulSet and claim deleted: a tar restore says there is no tar data; the csi dry run plans the claim and writes nothing', async () => {
  assert.ok(archive, 'the snapshot test ran')
  await deleteJenkinsAndClaim()
  const before = await versions()

  const tar = await restore(['--dry-run'])
  assert.is(tar.code, 0, tar.stderr + tar.stdout)
  assert.ok(tar.json.warnings.some((w: string) => w.includes('holds no tar data for') && w.includes(`claim ${CLAIM} (VolumeSnapshot ${snapshotOf[CLAIM]})`) && w.includes('--volumes csi')), JSON.stringify(tar.json.warnings))
  assert.equal(tar.json.volumes, [])
  assert.ok(!tar.json.outcomes.some((o: any) => o.kind === 'VolumeSnapshot'), 'the archived VolumeSnapshots are not objects to re-create')

  const dry = await restore(['--dry-run', '--volumes', 'csi'], false)
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.match(dry.stdout, new RegExp(`volume\\s+${CLAIM}: re-created from VolumeSnapshot ${snapshotOf[CLAIM]}`))
  assert.match(dry.stdout + dry.stderr, /Claim agent-cache exists already, so it keeps its volume/)
  assert.not.match(dry.stdout, /VolumeSnapshot\//, 'no VolumeSnapshot object in the plan')
  assert.equal(await versions(), before, 'the dry runs wrote nothing')
})

test('restore --volumes csi: the claim comes back from its VolumeSnapshot, with every seeded file; the StatefulSet is Ready', async () => {
  assert.ok(archive, 'the snapshot test ran')
  const r = await restore(['--volumes', 'csi'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  assert.equal(r.json.volumes.map((v: any) => [v.claim, v.action, v.snapshot]), [[CLAIM, 'restored', snapshotOf[CLAIM]]])
  assert.ok(!r.json.outcomes.some((o: any) => o.kind === 'VolumeSnapshot'), 'no VolumeSnapshot re-created')
  const pvc = await admin.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${CLAIM}`)
  assert.equal(pvc.spec.dataSource, {apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: snapshotOf[CLAIM]})
  assert.equal(await hashTree(await volumeDir(admin, ns, CLAIM)), seed, 'every file, mode and link as seeded')
  assert.equal(r.json.rollouts.map((w: any) => [w.kind, w.name, w.ready]), [['StatefulSet', 'jenkins', true]])
  const snapshots = await admin.get<any>(SNAPSHOTS.replace('NS', ns))
  assert.equal(snapshots.items.map((s: any) => s.metadata.name).sort(), Object.values(snapshotOf).sort(), 'no VolumeSnapshot added')
})

test('the VolumeSnapshot was deleted: restore --volumes csi exits 1 naming it, before any write', async () => {
  assert.ok(archive, 'the snapshot test ran')
  await deleteJenkinsAndClaim()
  await remove(`${SNAPSHOTS.replace('NS', ns)}/${snapshotOf[CLAIM]}`)
  const before = await versions()
  const r = await restore(['--volumes', 'csi'])
  assert.is(r.code, 1, r.stdout + r.stderr)
  const message: string = r.json?.error?.message ?? r.stderr
  assert.match(message, /nothing was changed/)
  assert.ok(message.includes(`VolumeSnapshot ${snapshotOf[CLAIM]} is gone: the csi strategy keeps data in the cluster; restore from a tar snapshot`), message)
  assert.equal(await versions(), before, 'no claim, workload or object was written')
})

test.after(async () => {
  if (ns) await cluster.deleteNamespace(ns)
  if (dir) await rm(dir, {recursive: true, force: true})
  admin?.close()
})

test.run()
