/**
 * Volume data in snapshots (src/volumes): the pure parts (which mount, the tar
 * check, the pod-side script run by the host's busybox and dash), then
 * `kubesnap snapshot` against the real control plane: each volume extracted
 * with plain tar and gzip equals the seed tree written on its PV, through the
 * application's container or a helper pod; CSI VolumeSnapshots; and, on a node
 * of the test's own, streams cut at a random byte (retried, still exact) and
 * cut every time (exit 1, no archive).
 *
 *   cd /work/main && npm run build && node --import tsx test/volumes.test.ts
 */
import {createHash, randomInt} from 'node:crypto'
import {mkdir, mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {CoreV1Api, CustomObjectsApi} from '@kubernetes/client-node'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {hashTree, writeSeedTree} from '../fixtures/seed.js'
import {openArchive, verifyArchive} from '../src/archive/index.js'
import type {StreamEntry} from '../src/archive/manifest.js'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {HELPER_LABELS, helperName, helperPodSpec} from '../src/volumes/helper.js'
import {chooseMount, mountsOfClaim, nodeOfClaimUsers, type PodLike} from '../src/volumes/mounts.js'
import {TarCheck} from '../src/volumes/tar-check.js'
import {parseStreamReport, TAR_OUT_SCRIPT} from '../src/volumes/tar-out.js'
import {sharedCluster, type PrivateNode, type TestCluster} from './cluster/index.js'
import {KUBESNAP_BIN, kubesnap} from './helpers/cli.js'
import {helperPods} from './helpers/restore.js'
import {waitFor} from './cluster/wait.js'

// ---------------------------------------------------------------------------
// Pure parts

const pod = (name: string, opts: {phase?: string; node?: string; mounts: Array<{claim: string; mountPath: string; subPath?: string; readOnly?: boolean; container?: string}>; running?: boolean}): PodLike => ({
  metadata: {name},
  spec: {
    nodeName: opts.node,
    volumes: opts.mounts.map((m, i) => ({name: `v${i}`, persistentVolumeClaim: {claimName: m.claim}})),
    containers: [...new Set(opts.mounts.map((m) => m.container ?? 'main'))].map((c) => ({
      name: c,
      volumeMounts: opts.mounts.flatMap((m, i) => ((m.container ?? 'main') === c ? [{name: `v${i}`, mountPath: m.mountPath, subPath: m.subPath, readOnly: m.readOnly}] : [])),
    })),
  },
  status: {phase: opts.phase ?? 'Running', containerStatuses: [{name: 'main', state: opts.running === false ? {} : {running: {}}}, {name: 'side', state: {running: {}}}]},
})

test('mounts: the running container that sees the whole claim is chosen; sub-path and stopped pods are not', () => {
  const pods = [
    pod('pending', {phase: 'Pending', node: 'n1', mounts: [{claim: 'data', mountPath: '/a'}]}),
    pod('partial', {node: 'n1', mounts: [{claim: 'data', mountPath: '/b', subPath: 'logs'}]}),
    pod('crashed', {node: 'n1', running: false, mounts: [{claim: 'data', mountPath: '/c'}]}),
    pod('good', {node: 'n1', mounts: [{claim: 'data', mountPath: '/d', readOnly: true, container: 'side'}]}),
    pod('other', {node: 'n2', mounts: [{claim: 'cache', mountPath: '/e'}]}),
  ]
  const mounts = mountsOfClaim(pods, 'data')
  assert.equal(mounts.map((m) => [m.pod, m.mountPath, m.running, m.subPath ?? null]), [
    ['pending', '/a', false, null], ['partial', '/b', true, 'logs'], ['crashed', '/c', false, null], ['good', '/d', true, null],
  ])
  assert.equal(chooseMount(mounts), {pod: 'good', container: 'side', image: undefined, nodeName: 'n1', mountPath: '/d', readOnly: true, running: true, helper: false})
  // A helper another run left (or runs) mounts the claim whole and runs: never a source, it may go at any time.
  const leftover = {...pod('kubesnap-data-1a2b3c', {node: 'n1', mounts: [{claim: 'data', mountPath: '/kubesnap/volume'}]}), metadata: {name: 'kubesnap-data-1a2b3c', labels: {...HELPER_LABELS}}}
  assert.is(chooseMount(mountsOfClaim([leftover], 'data')), undefined)
  assert.is(nodeOfClaimUsers(mountsOfClaim([leftover], 'data')), 'n1', 'but a new helper is pinned beside it')
  assert.is(chooseMount(mountsOfClaim(pods.slice(0, 3), 'data')), undefined, 'only a sub-path mount runs: a helper is needed')
  assert.is(nodeOfClaimUsers(mounts), 'n1')
  assert.is(nodeOfClaimUsers(mountsOfClaim(pods, 'nobody')), undefined)
})

test('helper pods: names fit a hostname; the spec mounts the claim read-only and pins the node when asked', () => {
  const name = helperName('a-very-long-claim-name-that-goes-on-and-on-and-on-and-on-and-on-and-on')
  assert.ok(name.length <= 63 && /^kubesnap-[a-z0-9-]+-[0-9a-f]{6}$/.test(name), name)
  const spec = helperPodSpec({name: 'h', claim: 'data', image: 'busybox:1.36', nodeName: 'n1'}) as any
  assert.equal(spec.spec.volumes, [{name: 'volume', persistentVolumeClaim: {claimName: 'data', readOnly: true}}, {name: 'tmp', emptyDir: {}}])
  assert.is(spec.spec.containers[0].volumeMounts[0].readOnly, true)
  assert.is(spec.spec.nodeName, 'n1')
  assert.is(spec.metadata.labels['app.kubernetes.io/managed-by'], 'kubesnap')
  assert.is((helperPodSpec({name: 'h', claim: 'data', image: 'x'}) as any).spec.nodeName, undefined)
})

test('parseStreamReport reads the last report line', () => {
  const sha = 'a'.repeat(64)
  assert.equal(parseStreamReport(`tar: warning\nkubesnap-stream: tar-exit=0 sha256=${sha}\n`), {tarExit: 0, sha256: sha})
  assert.equal(parseStreamReport('kubesnap-stream: tar-exit=2 unhashed\n'), {tarExit: 2})
  assert.is(parseStreamReport('nothing\n'), undefined)
})

let seedDir: Promise<string> | undefined
/** A seed tree on local disk, for the tests that need no cluster. */
function localSeed(): Promise<string> {
  seedDir ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-seed-'))
    await writeSeedTree('jenkins/jenkins-home', dir)
    return dir
  })()
  return seedDir
}

/** Runs `tar cf - -C dir .` with the host's tar and returns the stream. */
async function hostTar(dir: string): Promise<Buffer> {
  const r = await execa('tar', ['cf', '-', '-C', dir, '.'], {encoding: 'buffer'})
  return Buffer.from(r.stdout)
}

async function checkOf(data: Buffer, chunk = 7777): Promise<TarCheck> {
  const check = new TarCheck()
  const chunks: Buffer[] = []
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk))
  await pipeline(Readable.from(chunks), check, new Writable({write: (_c, _e, cb) => cb()}))
  return check
}

test('TarCheck: a whole tar passes; cut anywhere, corrupted, or with trailing junk it fails', async () => {
  const tar = await hostTar(await localSeed())
  const whole = await checkOf(tar)
  assert.is(whole.verdict(), undefined)
  assert.ok(whole.members > 50, `${whole.members} members`)
  // GNU tar pads to a 10 KiB record: find where the real end-of-archive marker starts.
  let end = tar.length
  while (end > 0 && tar[end - 1] === 0) end--
  for (const at of [512, 1000, Math.floor(tar.length / 2), Math.ceil(end / 512) * 512]) {
    assert.match((await checkOf(tar.subarray(0, at))).verdict() ?? '', /without its end-of-archive marker|cut short/, `cut at ${at}`)
  }
  const corrupt = Buffer.from(tar)
  corrupt[3] ^= 0xff
  assert.match((await checkOf(corrupt)).verdict() ?? '', /corrupt: the header at byte 0 has a wrong checksum/)
  assert.match((await checkOf(Buffer.concat([tar, Buffer.from('junk')]))).verdict() ?? '', /data after its end-of-archive marker/)
  // Bytes lost in the middle shift every later header: the next checksum fails.
  const holed = Buffer.concat([tar.subarray(0, 4096), tar.subarray(4096 + 1000)])
  assert.ok((await checkOf(holed)).verdict(), 'a stream with a hole fails')
})

for (const shell of [['busybox', 'sh'], ['dash']]) {
  test(`the pod-side script under ${shell.join(' ')}: streams tar and reports its exact sha256`, async () => {
    const dir = await localSeed()
    const r = await execa(shell[0], [...shell.slice(1), '-c', TAR_OUT_SCRIPT, 'kubesnap-tar', dir], {encoding: 'buffer', env: {PATH: process.env.PATH}})
    const out = Buffer.from(r.stdout)
    const report = parseStreamReport(Buffer.from(r.stderr).toString())
    assert.equal(report, {tarExit: 0, sha256: createHash('sha256').update(out).digest('hex')})
    assert.is((await checkOf(out)).verdict(), undefined)
    const missing = await execa(shell[0], [...shell.slice(1), '-c', TAR_OUT_SCRIPT, 'kubesnap-tar', join(dir, 'no-such-dir')], {reject: false, encoding: 'buffer'})
    assert.is.not(missing.exitCode, 0, 'tar failing makes the script fail')
    // Without a writable temporary directory the stream still flows, unhashed.
    const unhashed = await execa(shell[0], [...shell.slice(1), '-c', TAR_OUT_SCRIPT, 'kubesnap-tar', dir], {encoding: 'buffer', env: {PATH: process.env.PATH, TMPDIR: '/nonexistent'}})
    assert.equal(parseStreamReport(Buffer.from(unhashed.stderr).toString()), {tarExit: 0})
    assert.is(Buffer.from(unhashed.stdout).length, out.length)
  })
}

// ---------------------------------------------------------------------------
// Snapshots against the real control plane

let cluster: TestCluster
let admin: KubeApi
/** Pods and claims may not exist yet when polling starts. */
const RETRY_60S = {timeoutMs: 60_000, retryErrors: true}
const fixtureNs: Record<'softwarefactory' | 'jenkins', string> = {softwarefactory: '', jenkins: ''}
/** The seed tree's description (hashTree) per namespace and claim. */
const seeded = new Map<string, Record<string, string>>()

/** The host directory of a claim's volume (hostPath PV). */
async function volumeDir(ns: string, claim: string): Promise<string> {
  const core = cluster.admin().makeApiClient(CoreV1Api)
  const pvc = await core.readNamespacedPersistentVolumeClaim({namespace: ns, name: claim})
  const pv = await core.readPersistentVolume({name: pvc.spec!.volumeName!})
  return pv.spec!.hostPath!.path
}

/** Writes seed tree `key` onto the claim's volume (where the node mounts it from) and remembers its description. */
async function seedClaim(ns: string, claim: string, key: string): Promise<void> {
  const dir = await volumeDir(ns, claim)
  await writeSeedTree(key, dir)
  seeded.set(`${ns}/${claim}`, await hashTree(dir))
}

async function createClaim(ns: string, name: string): Promise<void> {
  const core = cluster.admin().makeApiClient(CoreV1Api)
  await core.createNamespacedPersistentVolumeClaim({namespace: ns, body: {metadata: {name}, spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}}}})
  await waitFor(`claim ${name} Bound`, async () => (await core.readNamespacedPersistentVolumeClaim({namespace: ns, name})).status?.phase === 'Bound', RETRY_60S)
}

/** Runs `kubesnap snapshot` as the namespace-only user; returns the CLI result. */
function snapshot(ns: string, dir: string, ...args: string[]) {
  return kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json', ...args], {timeoutMs: 240_000})
}

/** Extracts a volume entry as the archive README says, with only tar, cat and gzip (for `.tar.gz` parts); returns the directory. */
async function extractVolume(archive: string, claim: string, compression: StreamEntry['compression']): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'kubesnap-vol-out-'))
  await execa('tar', ['xf', archive, '-C', out])
  const dest = join(out, 'data')
  await mkdir(dest)
  const recipe = compression === 'gzip' ? 'cat "$1"/volumes/"$2"/part-*.tar.gz | gzip -dc | tar xpf - -C "$3"' : 'cat "$1"/volumes/"$2"/part-*.tar | tar xpf - -C "$3"'
  await execa('sh', ['-c', recipe, 'sh', out, claim, dest])
  return dest
}

/** Asserts that the archive's entry for `claim` extracts to exactly the seed tree on its volume. */
async function assertVolumeExact(archive: string, ns: string, claim: string): Promise<StreamEntry> {
  const {manifest} = await openArchive(archive)
  const entry = manifest.entries.find((e) => e.type === 'volume' && e.name === claim) as StreamEntry | undefined
  assert.ok(entry, `the archive has a volume entry for ${claim}: ${manifest.entries.filter((e) => e.type === 'volume').map((e) => e.name).join(', ')}`)
  const dir = await extractVolume(archive, claim, entry!.compression)
  try {
    assert.equal(await hashTree(dir), seeded.get(`${ns}/${claim}`), `volume ${claim} comes back file for file`)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
  return entry!
}

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  const [sf, jenkins] = await Promise.all([
    cluster.createNamespace({prefix: 'volsf', fixture: 'softwarefactory'}),
    cluster.createNamespace({prefix: 'voljk', fixture: 'jenkins'}),
  ])
  fixtureNs.softwarefactory = sf
  fixtureNs.jenkins = jenkins
  await seedClaim(sf, 'zookeeper-data-zookeeper-0', 'softwarefactory/zookeeper-data')
  await seedClaim(sf, 'mariadb-logs-mariadb-0', 'softwarefactory/mariadb-logs')
  await seedClaim(jenkins, 'jenkins-home-jenkins-0', 'jenkins/jenkins-home')
  await seedClaim(jenkins, 'agent-cache', 'jenkins/agent-cache')
  // A claim no pod mounts: only a helper pod can read it.
  await createClaim(jenkins, 'orphan')
  await seedClaim(jenkins, 'orphan', 'softwarefactory/zookeeper-data')
})

test('snapshot of the softwarefactory fixture: each volume streamed out of its pod extracts to the seed tree', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-'))
  const r = await snapshot(fixtureNs.softwarefactory, dir)
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.volumes, 2)
  for (const claim of ['zookeeper-data-zookeeper-0', 'mariadb-logs-mariadb-0']) {
    const entry = await assertVolumeExact(r.json.path, fixtureNs.softwarefactory, claim)
    assert.is(entry.compression, 'gzip')
    assert.is(entry.extra?.helper, false)
    assert.is(entry.extra?.verified, 'pod-sha256', 'the pod hashed the stream and it matched')
    assert.is(entry.extra?.strategy, 'tar')
  }
  const zk = (await openArchive(r.json.path)).manifest.entries.find((e) => e.type === 'volume' && e.name === 'zookeeper-data-zookeeper-0') as StreamEntry
  assert.equal([zk.extra?.pod, zk.extra?.container, zk.extra?.mountPath], ['zookeeper-0', 'zookeeper', '/data'])
  assert.equal((await verifyArchive(r.json.path)).ok, true)
})

test('--compression none stores each volume\'s tar as it came: one hash, parts named .tar, extracted with cat and tar, verified', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-'))
  const r = await snapshot(fixtureNs.softwarefactory, dir, '--compression', 'none')
  assert.is(r.code, 0, r.stderr + r.stdout)
  for (const claim of ['zookeeper-data-zookeeper-0', 'mariadb-logs-mariadb-0']) {
    const entry = await assertVolumeExact(r.json.path, fixtureNs.softwarefactory, claim)
    assert.is(entry.compression, 'none')
    assert.ok(entry.parts.every((p) => p.path.endsWith('.tar')), entry.parts.map((p) => p.path).join(', '))
    // Stored bytes are the pod's bytes: the pod's sha256 is the stored one.
    assert.equal([entry.size, entry.sha256], [entry.rawSize, entry.rawSha256])
    assert.is(entry.extra?.verified, 'pod-sha256')
  }
  assert.equal((await verifyArchive(r.json.path)).ok, true)
  const bad = await snapshot(fixtureNs.softwarefactory, dir, '--compression', 'zstd')
  assert.is(bad.code, 2, bad.stderr)
  assert.match(bad.stderr + bad.stdout, /gzip, none/)
})

test('snapshot of the jenkins fixture: the distroless pod\'s claim and an unmounted claim go through helper pods, removed afterwards', async () => {
  const ns = fixtureNs.jenkins
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-'))
  const r = await snapshot(ns, dir)
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.volumes, 3)
  const home = await assertVolumeExact(r.json.path, ns, 'jenkins-home-jenkins-0')
  assert.is(home.extra?.helper, false)
  const cache = await assertVolumeExact(r.json.path, ns, 'agent-cache')
  assert.is(cache.extra?.helper, true, 'distroless has no tar: a helper pod read it')
  assert.match(String(cache.extra?.pod), /^kubesnap-agent-cache-/)
  const orphan = await assertVolumeExact(r.json.path, ns, 'orphan')
  assert.is(orphan.extra?.helper, true)
  assert.ok(r.json.warnings.some((w: string) => /agent-cache was copied through a helper pod: container cache of pod jenkins-agent-cache-\S+ cannot run sh and tar/.test(w)), r.json.warnings.join('\n'))
  assert.ok(r.json.warnings.some((w: string) => /orphan was copied through a helper pod: no pod mounts it/.test(w)), r.json.warnings.join('\n'))
  await waitFor('helper pods gone', async () => (await helperPods(admin, ns)).length === 0, {timeoutMs: 15_000, retryErrors: true})
})

test('--volumes none and -l leave volume data out; --include-kinds without PVCs too', async () => {
  const ns = fixtureNs.jenkins
  const none = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')), '--volumes', 'none')
  assert.is(none.code, 0, none.stderr)
  assert.is(none.json.volumes, 0)
  const onlyHome = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')), '-l', 'app.kubernetes.io/name=jenkins')
  assert.is(onlyHome.code, 0, onlyHome.stderr)
  const {manifest} = await openArchive(onlyHome.json.path)
  assert.equal(manifest.entries.filter((e) => e.type === 'volume').map((e) => e.name), ['jenkins-home-jenkins-0'], 'volumes follow the claims the selector picked')
  const secrets = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')), '--include-kinds', 'secrets')
  assert.is(secrets.json.volumes, 0)
})

test('--volumes csi takes a VolumeSnapshot per claim, waits until ready, and records it', async () => {
  const ns = fixtureNs.softwarefactory
  const r = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')), '--volumes', 'csi', '--snapshot-timeout', '60')
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.volumes, 0)
  assert.is(r.json.volumeSnapshots, 2)
  const {manifest} = await openArchive(r.json.path)
  const recorded = manifest.entries.filter((e) => e.type === 'object' && e.resource === 'volumesnapshots')
  assert.is(recorded.length, 2)
  const custom = cluster.admin().makeApiClient(CustomObjectsApi)
  for (const entry of recorded) {
    const live = await custom.getNamespacedCustomObject({group: 'snapshot.storage.k8s.io', version: 'v1', namespace: ns, plural: 'volumesnapshots', name: entry.name}) as any
    assert.is(live.status.readyToUse, true, entry.name)
    assert.match(live.spec.source.persistentVolumeClaimName, /^(zookeeper-data-zookeeper-0|mariadb-logs-mariadb-0)$/)
  }
})

// ---------------------------------------------------------------------------
// Faults, on a node of this test's own

interface FaultEnv {
  node: PrivateNode
  ns: string
  pod: string
}

let faultEnv: Promise<FaultEnv> | undefined

/** A namespace with claim `data` (the mariadb seed tree) mounted by pod `db` on a private node. */
function faults(): Promise<FaultEnv> {
  faultEnv ??= (async () => {
    const node = await cluster.startPrivateNode({prefix: 'vol-test'})
    const ns = await cluster.createNamespace({prefix: 'volfault'})
    await createClaim(ns, 'data')
    await seedClaim(ns, 'data', 'softwarefactory/mariadb-logs')
    const core = cluster.admin().makeApiClient(CoreV1Api)
    await core.createNamespacedPod({namespace: ns, body: {
      metadata: {name: 'db'},
      spec: {
        ...node.placement,
        terminationGracePeriodSeconds: 0,
        containers: [{name: 'db', image: 'busybox:1.36', command: ['sleep', 'infinity'], volumeMounts: [{name: 'data', mountPath: '/var/lib/mysql'}]}],
        volumes: [{name: 'data', persistentVolumeClaim: {claimName: 'data'}}],
      },
    }})
    await waitFor('pod db Running', async () => (await core.readNamespacedPod({namespace: ns, name: 'db'})).status?.phase === 'Running', RETRY_60S)
    return {node, ns, pod: 'db'}
  })()
  return faultEnv
}

test('a stream cut at a random byte is streamed again and the archive is still exact', async () => {
  const {node, ns, pod} = await faults()
  const cutAt = randomInt(1000, 500_000)
  const scope = node.agent.faults.forPod(pod)
  scope.cutAfterBytes = cutAt
  scope.execs = 1
  try {
    const r = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')))
    assert.is(r.code, 0, `cut at ${cutAt}: ${r.stderr}${r.stdout}`)
    const entry = await assertVolumeExact(r.json.path, ns, 'data')
    assert.is(entry.extra?.attempts, 2, `cut at byte ${cutAt}, then streamed whole`)
    assert.equal((await verifyArchive(r.json.path)).ok, true)
  } finally {
    node.agent.faults.reset()
  }
})

test('a stream whose status is lost is not trusted: streamed again', async () => {
  const {node, ns, pod} = await faults()
  const scope = node.agent.faults.forPod(pod)
  scope.dropStatus = true
  scope.execs = 1
  try {
    const r = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')))
    assert.is(r.code, 0, r.stderr)
    assert.is((await assertVolumeExact(r.json.path, ns, 'data')).extra?.attempts, 2)
  } finally {
    node.agent.faults.reset()
  }
})

test('on a v4-only node (clusters before 1.30) volumes stream the same', async () => {
  const {node, ns} = await faults()
  node.agent.setV4Only(true)
  try {
    const r = await snapshot(ns, await mkdtemp(join(tmpdir(), 'kubesnap-vol-')))
    assert.is(r.code, 0, r.stderr)
    await assertVolumeExact(r.json.path, ns, 'data')
  } finally {
    node.agent.setV4Only(false)
  }
})

test('when every attempt is cut the claim is left out: exit 3, an archive that verifies and names it; --volumes-required: exit 1, no archive', async () => {
  const {node, ns, pod} = await faults()
  node.agent.faults.forPod(pod).cutAfterBytes = 50_000
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-'))
  try {
    const strict = await snapshot(ns, dir, '--volume-attempts', '2', '--volumes-required')
    assert.is(strict.code, 1, strict.stdout)
    assert.match(strict.json?.error?.message ?? strict.stderr, /Could not copy the data of claim data: .*stream cut.*\(attempt 2 of 2\)/)
    assert.equal(await readdir(dir), [], 'no archive, no partial file, no lock')

    const r = await snapshot(ns, dir, '--volume-attempts', '2')
    assert.is(r.code, 3, r.stderr + r.stdout)
    assert.is(r.json.status, 'partial')
    assert.is(r.json.volumes, 0)
    const skipped = r.json.skipped.find((s: any) => s.name === 'data' && s.resource === 'persistentvolumeclaims')
    assert.is(skipped?.failed, true, JSON.stringify(r.json.skipped))
    assert.match(skipped.reason, /^data not copied: .*stream cut.*\(attempt 2 of 2\)$/)
    assert.ok(r.json.warnings.some((w: string) => /^Could not copy the data of claim data: .*The snapshot is partial/.test(w)), r.json.warnings.join('\n'))
    const {manifest} = await openArchive(r.json.path)
    assert.ok(manifest.entries.some((e) => e.type === 'object' && e.resource === 'persistentvolumeclaims' && e.name === 'data'), 'the claim object is kept')
    assert.equal(manifest.entries.filter((e) => e.type === 'volume'), [], 'no trace of the cut streams')
    assert.equal((await verifyArchive(r.json.path)).ok, true)
    assert.equal((await readdir(dir)).filter((f) => f.startsWith('.')), [], 'no partial file or lock left')
  } finally {
    node.agent.faults.reset()
  }
})

test('Ctrl-C while a helper pod streams: the helper pod is deleted and no archive is left', async () => {
  const {node} = await faults()
  // A distroless pod on the private node mounts the claim: the helper is pinned beside it.
  const ns = await cluster.createNamespace({prefix: 'volsig'})
  try {
    await createClaim(ns, 'cache')
    await seedClaim(ns, 'cache', 'jenkins/agent-cache')
    const core = cluster.admin().makeApiClient(CoreV1Api)
    await core.createNamespacedPod({namespace: ns, body: {
      metadata: {name: 'cache-server'},
      spec: {
        ...node.placement,
        terminationGracePeriodSeconds: 0,
        containers: [{name: 'cache', image: 'gcr.io/distroless/static:nonroot', command: ['/agent-cache'], volumeMounts: [{name: 'cache', mountPath: '/cache'}]}],
        volumes: [{name: 'cache', persistentVolumeClaim: {claimName: 'cache'}}],
      },
    }})
    await waitFor('pod cache-server Running', async () => (await core.readNamespacedPod({namespace: ns, name: 'cache-server'})).status?.phase === 'Running', RETRY_60S)
    // Slow enough that the signal surely lands mid-stream.
    node.agent.faults.slowWriterBytesPerSec = 50_000
    const dir = await mkdtemp(join(tmpdir(), 'kubesnap-vol-'))
    const child = execa(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user], {reject: false})
    let helper: string | undefined
    await waitFor('a helper pod', async () => {
      helper = (await helperPods(admin, ns))[0]
      return helper !== undefined && (await core.readNamespacedPod({namespace: ns, name: helper})).status?.phase === 'Running'
    }, {timeoutMs: 30_000, retryErrors: true})
    assert.is((await core.readNamespacedPod({namespace: ns, name: helper!})).spec?.nodeName, node.name, 'pinned to the node of the claim\'s user')
    await sleep(1000)
    child.kill('SIGINT')
    const result = await child
    assert.ok(result.signal === 'SIGINT' || result.exitCode === 130, `ended by the signal (${result.signal ?? result.exitCode}): ${result.stderr}`)
    assert.equal(await helperPods(admin, ns), [], 'the helper pod was deleted before kubesnap exited')
    assert.equal(await readdir(dir), [], 'no archive, no partial file, no lock')
  } finally {
    node.agent.faults.reset()
    await cluster.deleteNamespace(ns)
  }
})

test.after(async () => {
  if (faultEnv) {
    const {node, ns} = await faultEnv
    await cluster.deleteNamespace(ns)
    await node.stop()
  }
  for (const ns of Object.values(fixtureNs)) if (ns) await cluster.deleteNamespace(ns)
  if (seedDir) await rm(await seedDir, {recursive: true, force: true})
  admin?.close()
})

test.run()
