/**
 * The test cluster's storage against the real v1.20.2 control plane: claims
 * are provisioned and bound by the real PV controller, released volumes are
 * removed, snapshots copy data exactly and claims restored from them get it
 * back, and errors surface where clients look for them.
 */
import {createHash} from 'node:crypto'
import {lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {
  CoreV1Api,
  CustomObjectsApi,
  StorageV1Api,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {sharedCluster, type TestCluster} from '../index.js'
import {startStorage, type Storage} from './index.js'
import type {VolumeSnapshot, VolumeSnapshotContent} from './snapshots.js'
import {waitFor} from '../wait.js'

const GROUP = 'snapshot.storage.k8s.io'
const VERSION = 'v1'

let cluster: TestCluster
let ownStorage: Storage | undefined
let core: CoreV1Api
let custom: CustomObjectsApi
let ns: string

test.before(async () => {
  cluster = await sharedCluster()
  // The shared cluster normally runs our storage; if it was started without it, run it here.
  if (!cluster.storageClass) {
    ownStorage = await startStorage({dir: path.join(cluster.dir, 'storage-test'), kubeconfig: cluster.kubeconfigs.admin})
  }
  core = cluster.admin().makeApiClient(CoreV1Api)
  custom = cluster.admin().makeApiClient(CustomObjectsApi)
  ns = await cluster.createNamespace({prefix: 'storage', bindUser: false})
})

test.after(async () => {
  if (ns) await cluster.deleteNamespace(ns)
  await ownStorage?.stop()
})

test('standard is the default StorageClass, served by our provisioner', async () => {
  const cls = await cluster.admin().makeApiClient(StorageV1Api).readStorageClass({name: 'standard'})
  assert.is(cls.provisioner, 'hostpath.kubesnap.test')
  assert.is(cls.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true')
  assert.is(cls.volumeBindingMode, 'Immediate')
  assert.is(cls.reclaimPolicy, 'Delete')
  assert.is(cls.allowVolumeExpansion, true)
})

test('a claim without a class gets the default class and is bound to a hostPath volume whose directory exists', async () => {
  const claim = await createClaim('plain', {storage: '1Gi', accessModes: ['ReadWriteOnce']})
  assert.is(claim.spec?.storageClassName, 'standard', 'the DefaultStorageClass admission plugin sets the class')
  const bound = await waitForBound('plain')
  const pv = await core.readPersistentVolume({name: bound.spec!.volumeName!})
  assert.is(pv.spec?.claimRef?.uid, bound.metadata?.uid)
  assert.is(pv.spec?.capacity?.storage, '1Gi')
  assert.equal(pv.spec?.accessModes, ['ReadWriteOnce'])
  assert.is(pv.spec?.storageClassName, 'standard')
  assert.is(pv.spec?.persistentVolumeReclaimPolicy, 'Delete')
  assert.is(pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'], 'hostpath.kubesnap.test')
  assert.is(bound.metadata?.annotations?.['volume.beta.kubernetes.io/storage-provisioner'], 'hostpath.kubesnap.test', 'the real PV controller asked for us')
  assert.is(bound.status?.capacity?.storage, '1Gi')
  const dir = pv.spec!.hostPath!.path
  const stat = await lstat(dir)
  assert.ok(stat.isDirectory())
  assert.is(stat.mode & 0o777, 0o777)
})

test('deleting a claim removes its volume and the directory', async () => {
  await createClaim('doomed', {storage: '100Mi'})
  const bound = await waitForBound('doomed')
  const pv = await core.readPersistentVolume({name: bound.spec!.volumeName!})
  const dir = pv.spec!.hostPath!.path
  await writeFile(path.join(dir, 'data'), 'x')
  await core.deleteNamespacedPersistentVolumeClaim({namespace: ns, name: 'doomed'})
  await waitFor('the volume to be deleted', async () => !(await exists(() => core.readPersistentVolume({name: pv.metadata!.name!}))))
  assert.not.ok(await exists(() => lstat(dir)), `${dir} is gone`)
})

test('a claim can grow: the volume and the claim report the new size', async () => {
  await createClaim('growing', {storage: '1Gi'})
  const bound = await waitForBound('growing')
  bound.spec!.resources!.requests!.storage = '2Gi'
  await core.replaceNamespacedPersistentVolumeClaim({namespace: ns, name: 'growing', body: bound})
  await waitFor('the claim to report 2Gi', async () => (await readClaim('growing')).status?.capacity?.storage === '2Gi')
  const pv = await core.readPersistentVolume({name: bound.spec!.volumeName!})
  assert.is(pv.spec?.capacity?.storage, '2Gi')
})

test('a snapshot copies the volume exactly and a claim restored from it has the same files', async () => {
  await createClaim('source', {storage: '1Gi'})
  const source = await volumeOf(await waitForBound('source'))
  await seedTree(source.spec!.hostPath!.path)
  const before = await treeManifest(source.spec!.hostPath!.path)

  await createSnapshot('snap', {persistentVolumeClaimName: 'source'})
  const snapshot = await waitForSnapshot('snap', (s) => s.status?.readyToUse === true)
  assert.is(snapshot.spec.volumeSnapshotClassName, 'standard-snapshot', 'the default class is written into the spec')
  assert.is(snapshot.status?.restoreSize, '1Gi')
  assert.ok(snapshot.status?.creationTime && !Number.isNaN(Date.parse(snapshot.status.creationTime)))
  assert.is(snapshot.status?.error, undefined)
  const content = await readContent(snapshot.status!.boundVolumeSnapshotContentName!)
  assert.is(content.spec.volumeSnapshotRef.uid, snapshot.metadata.uid, 'bound both ways')
  assert.is(content.spec.volumeSnapshotRef.name, 'snap')
  assert.is(content.spec.volumeSnapshotRef.namespace, ns)
  assert.is(content.spec.source.volumeHandle, source.metadata!.name)
  assert.is(content.spec.driver, 'hostpath.kubesnap.test')
  assert.is(content.spec.deletionPolicy, 'Delete')
  assert.is(content.status?.readyToUse, true)
  assert.is(content.status?.restoreSize, 2 ** 30)
  assert.ok(content.status?.snapshotHandle)

  // Written after the snapshot: must not show up in the restore.
  await writeFile(path.join(source.spec!.hostPath!.path, 'after-snapshot'), 'late')

  await createClaim('restored', {storage: '1Gi', dataSource: {apiGroup: GROUP, kind: 'VolumeSnapshot', name: 'snap'}})
  const restoredClaim = await readClaim('restored')
  assert.equal({...restoredClaim.spec?.dataSource}, {apiGroup: GROUP, kind: 'VolumeSnapshot', name: 'snap'}, 'the 1.20 apiserver keeps a VolumeSnapshot dataSource')
  const restored = await volumeOf(await waitForBound('restored'))
  assert.equal(await treeManifest(restored.spec!.hostPath!.path), before)
})

test('a claim can be cloned from another claim', async () => {
  await createClaim('original', {storage: '1Gi'})
  const original = await volumeOf(await waitForBound('original'))
  await seedTree(original.spec!.hostPath!.path)
  await createClaim('clone', {storage: '1Gi', dataSource: {kind: 'PersistentVolumeClaim', name: 'original'}})
  const clone = await volumeOf(await waitForBound('clone'))
  assert.equal(await treeManifest(clone.spec!.hostPath!.path), await treeManifest(original.spec!.hostPath!.path))
})

test('a snapshot of a missing claim reports the error and is not ready', async () => {
  await createSnapshot('orphan', {persistentVolumeClaimName: 'no-such-claim'})
  const snapshot = await waitForSnapshot('orphan', (s) => s.status?.error !== undefined)
  assert.is(snapshot.status?.readyToUse, false)
  assert.match(snapshot.status!.error!.message!, /no-such-claim.*not found/)
  assert.ok(snapshot.status?.error?.time)
})

test('a pre-provisioned content restores into another namespace', async () => {
  const snapshot = await readSnapshot('snap')
  const original = await readContent(snapshot.status!.boundVolumeSnapshotContentName!)
  const other = await cluster.createNamespace({prefix: 'storage-other', bindUser: false})
  try {
    const contentName = `imported-${other}`
    await custom.createClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', body: {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'VolumeSnapshotContent', metadata: {name: contentName},
      spec: {
        driver: 'hostpath.kubesnap.test', deletionPolicy: 'Retain', volumeSnapshotClassName: 'standard-snapshot',
        source: {snapshotHandle: original.status!.snapshotHandle}, volumeSnapshotRef: {name: 'imported', namespace: other},
      },
    }})
    await custom.createNamespacedCustomObject({group: GROUP, version: VERSION, namespace: other, plural: 'volumesnapshots', body: {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'VolumeSnapshot', metadata: {name: 'imported'},
      spec: {volumeSnapshotClassName: 'standard-snapshot', source: {volumeSnapshotContentName: contentName}},
    }})
    const imported = await waitForSnapshot('imported', (s) => s.status?.readyToUse === true, other)
    assert.is(imported.status?.boundVolumeSnapshotContentName, contentName)
    assert.is(imported.status?.restoreSize, '1Gi')
    assert.is((await readContent(contentName)).spec.volumeSnapshotRef.uid, imported.metadata.uid)

    await core.createNamespacedPersistentVolumeClaim({namespace: other, body: claimBody('restored', {storage: '1Gi', dataSource: {apiGroup: GROUP, kind: 'VolumeSnapshot', name: 'imported'}})})
    const restored = await volumeOf(await waitForBound('restored', other))
    // The first namespace's restore came from the same snapshot.
    const sourceVolume = await volumeOf(await readClaim('restored'))
    assert.equal(await treeManifest(restored.spec!.hostPath!.path), await treeManifest(sourceVolume.spec!.hostPath!.path))
  } finally {
    await cluster.deleteNamespace(other)
    // Retain: the content outlives its snapshot and is ours to remove.
    await custom.deleteClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name: `imported-${other}`}).catch(() => {})
  }
})

test('pods on the node see our volumes: what one writes, a snapshot carries to a restored claim another reads', async () => {
  if (!cluster.nodeName) {
    console.log('  (no node in the shared cluster: pods not tried)')
    return
  }
  await createClaim('app-data', {storage: '1Gi'})
  await waitForBound('app-data')
  await createPod('writer', 'app-data')
  await exec('writer', 'echo written-in-a-pod > /data/greeting && chmod 600 /data/greeting')
  const volume = await volumeOf(await readClaim('app-data'))
  assert.is(await readFile(path.join(volume.spec!.hostPath!.path, 'greeting'), 'utf8'), 'written-in-a-pod\n', 'the pod wrote into our directory')

  await createSnapshot('app-snap', {persistentVolumeClaimName: 'app-data'})
  await waitForSnapshot('app-snap', (s) => s.status?.readyToUse === true)
  await createClaim('app-restored', {storage: '1Gi', dataSource: {apiGroup: GROUP, kind: 'VolumeSnapshot', name: 'app-snap'}})
  await waitForBound('app-restored')
  await createPod('reader', 'app-restored')
  assert.is(await exec('reader', 'cat /data/greeting && stat -c %a /data/greeting'), 'written-in-a-pod\n600')
})

test('deleting a snapshot deletes its content and data (policy Delete)', async () => {
  const snapshot = await readSnapshot('snap')
  const content = await readContent(snapshot.status!.boundVolumeSnapshotContentName!)
  const restored = await volumeOf(await readClaim('restored'))
  const dataDir = path.join(path.dirname(path.dirname(restored.spec!.hostPath!.path)), 'snapshots', content.status!.snapshotHandle!)
  assert.ok(await exists(() => lstat(dataDir)), `${dataDir} holds the snapshot`)
  await custom.deleteNamespacedCustomObject({group: GROUP, version: VERSION, namespace: ns, plural: 'volumesnapshots', name: 'snap'})
  await waitFor('the content to be deleted', async () => !(await exists(() => readContent(content.metadata.name))))
  assert.not.ok(await exists(() => lstat(dataDir)), `${dataDir} is gone`)
  // A restored claim is independent of its snapshot.
  assert.ok(await exists(() => lstat(path.join(restored.spec!.hostPath!.path, 'etc', 'app.conf'))))
})

test.run()

// ----- helpers -----

interface ClaimSpec {
  storage: string
  accessModes?: string[]
  dataSource?: {apiGroup?: string; kind: string; name: string}
}

function claimBody(name: string, spec: ClaimSpec): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name},
    spec: {accessModes: spec.accessModes ?? ['ReadWriteOnce'], resources: {requests: {storage: spec.storage}}, ...(spec.dataSource ? {dataSource: spec.dataSource} : {})},
  }
}

function createClaim(name: string, spec: ClaimSpec): Promise<V1PersistentVolumeClaim> {
  return core.createNamespacedPersistentVolumeClaim({namespace: ns, body: claimBody(name, spec)})
}

function readClaim(name: string, namespace = ns): Promise<V1PersistentVolumeClaim> {
  return core.readNamespacedPersistentVolumeClaim({namespace, name})
}

async function waitForBound(name: string, namespace = ns): Promise<V1PersistentVolumeClaim> {
  let claim: V1PersistentVolumeClaim | undefined
  await waitFor(`claim ${namespace}/${name} to be Bound`, async () => (claim = await readClaim(name, namespace)).status?.phase === 'Bound')
  return claim!
}

function volumeOf(claim: V1PersistentVolumeClaim): Promise<V1PersistentVolume> {
  return core.readPersistentVolume({name: claim.spec!.volumeName!})
}

/** Starts a pod that mounts `claim` at /data and waits until it is Ready. */
async function createPod(name: string, claim: string): Promise<void> {
  await core.createNamespacedPod({namespace: ns, body: {
    metadata: {name},
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [{name: 'main', image: 'busybox:1.36', command: ['sleep', 'infinity'], volumeMounts: [{name: 'data', mountPath: '/data'}]}],
      volumes: [{name: 'data', persistentVolumeClaim: {claimName: claim}}],
    },
  }})
  await waitFor(`pod ${name} to be Ready`, async () => {
    const pod = await core.readNamespacedPod({namespace: ns, name})
    return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
  })
}

/** Runs `script` in pod `name` with kubectl exec; returns its stdout. */
async function exec(name: string, script: string): Promise<string> {
  const {stdout} = await execa('kubectl', ['--kubeconfig', cluster.kubeconfigs.admin, '-n', ns, 'exec', name, '--', 'sh', '-c', script])
  return stdout
}

function createSnapshot(name: string, source: VolumeSnapshot['spec']['source']): Promise<unknown> {
  return custom.createNamespacedCustomObject({group: GROUP, version: VERSION, namespace: ns, plural: 'volumesnapshots', body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'VolumeSnapshot', metadata: {name}, spec: {source},
  }})
}

async function readSnapshot(name: string, namespace = ns): Promise<VolumeSnapshot> {
  return await custom.getNamespacedCustomObject({group: GROUP, version: VERSION, namespace, plural: 'volumesnapshots', name}) as VolumeSnapshot
}

async function waitForSnapshot(name: string, ok: (s: VolumeSnapshot) => boolean, namespace = ns): Promise<VolumeSnapshot> {
  let snapshot: VolumeSnapshot | undefined
  await waitFor(`snapshot ${namespace}/${name}`, async () => ok(snapshot = await readSnapshot(name, namespace)))
  return snapshot!
}

async function readContent(name: string): Promise<VolumeSnapshotContent> {
  return await custom.getClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name}) as VolumeSnapshotContent
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read()
    return true
  } catch (err) {
    const e = err as {code?: unknown}
    if (e.code === 404 || e.code === 'ENOENT') return false
    throw err
  }
}

/** Writes files that a sloppy copy would get wrong: modes, nesting, symlinks (relative, absolute, dangling), binary data, old mtimes. */
async function seedTree(root: string): Promise<void> {
  await mkdir(path.join(root, 'etc'), {mode: 0o750})
  await mkdir(path.join(root, 'data', 'deep', 'deeper'), {recursive: true})
  await writeFile(path.join(root, 'etc', 'app.conf'), 'port=8080\n', {mode: 0o640})
  await writeFile(path.join(root, 'data', 'secret.key'), 'k3y', {mode: 0o600})
  await writeFile(path.join(root, 'data', 'run.sh'), '#!/bin/sh\necho hi\n', {mode: 0o755})
  await writeFile(path.join(root, 'data', 'empty'), '')
  await writeFile(path.join(root, 'data', 'deep', 'deeper', 'blob.bin'), Buffer.from(Array.from({length: 70_000}, (_, i) => (i * 31) % 256)))
  await symlink('../etc/app.conf', path.join(root, 'data', 'conf-link'))
  await symlink('/nonexistent/target', path.join(root, 'data', 'dangling'))
  await symlink('deep', path.join(root, 'data', 'dir-link'))
  const old = new Date('2020-01-02T03:04:05Z')
  await utimes(path.join(root, 'etc', 'app.conf'), old, old)
  await utimes(path.join(root, 'data', 'deep', 'deeper', 'blob.bin'), old, old)
}

/** One line per entry under `root`: path, type, mode, size, mtime and sha256 (or symlink target). */
async function treeManifest(root: string): Promise<string[]> {
  const lines: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = path.join(dir, name)
      const rel = path.relative(root, full)
      const stat = await lstat(full)
      const mode = (stat.mode & 0o7777).toString(8)
      if (stat.isSymbolicLink()) {
        lines.push(`${rel} link -> ${await readlink(full)}`)
      } else if (stat.isDirectory()) {
        lines.push(`${rel} dir ${mode}`)
        await walk(full)
      } else {
        const sha = createHash('sha256').update(await readFile(full)).digest('hex')
        lines.push(`${rel} file ${mode} ${stat.size} ${stat.mtime.toISOString()} ${sha}`)
      }
    }
  }
  await walk(root)
  return lines
}
