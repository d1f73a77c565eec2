// npm test: runs alone (its exclusive private nodes cordon the shared node)
/**
 * Volume data and restarts in `kubesnap restore`: the pure parts (which tar
 * members are refused, which workloads restart, when a rollout is done, the
 * pod-side untar script run by the host's busybox), then against the real
 * control plane as the namespace-only user: the jenkins fixture snapshotted,
 * wiped (objects and claims), planned with --dry-run (nothing written), and
 * restored byte for byte; a hostile archive refused before any write; a
 * Secret-only restore that restarts the StatefulSet reading it; the
 * `head -c N` framing on a v4-only node. Then the round trips, each
 * checked for every object (cleaned), every volume file (sha256, mode, link)
 * and Ready workloads: softwarefactory copied with --to-namespace beside its
 * untouched original, then wiped and restored in place; and jenkins on a
 * cluster whose only node speaks v4 (snapshot and restore through the CLI).
 *
 *   cd /work/main && npm run build && node --import tsx test/restore-volumes.test.ts
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {CoreV1Api} from '@kubernetes/client-node'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {FixtureName} from '../fixtures/index.js'
import {hashTree} from '../fixtures/seed.js'
import {createArchiveWriter, openArchive} from '../src/archive/index.js'
import type {StreamEntry} from '../src/archive/manifest.js'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {parseDuration, planRestarts, RESTARTED_AT, rolloutStatus} from '../src/restore/restart.js'
import {templateUses, type WorkloadObject} from '../src/volumes/workloads.js'
import {HelperPods} from '../src/volumes/helper.js'
import {parseUntarReport, scanVolumeTar, streamVolumeIn, TAR_IN_SCRIPT, unsafeMemberReason, type TarMember} from '../src/volumes/tar-in.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap, KUBESNAP_BIN, type CliResult} from './helpers/cli.js'
import {waitFor} from './cluster/wait.js'
import {paxData, rawEntry, rawHeader, rawTar, tarOf} from './helpers/tar.js'
import {archivedObjects, assertRestored, FIXTURE_CLAIMS, helperPods, isHarness, seededTrees, seedTree, versions, volumeDir, volumeTrees, wipe, workloadReadiness, type ArchivedObject} from './helpers/restore.js'

// ---------------------------------------------------------------------------
// Pure parts

test('tar members: absolute, .., links out of the mount, writes through symlinks and devices are refused', () => {
  const cases: Array<[TarMember[], string | undefined]> = [
    [[{path: './', type: 'Directory'}, {path: './a/b.txt', type: 'File'}], undefined],
    [[{path: 'jobs/x/lastStable', type: 'SymbolicLink', linkpath: 'builds/2'}], undefined],
    [[{path: 'v/.marker', type: 'SymbolicLink', linkpath: '../restore/in-progress'}], undefined],
    [[{path: 'dangling', type: 'SymbolicLink', linkpath: 'gone/nowhere'}], undefined],
    [[{path: 'a', type: 'File'}, {path: 'b', type: 'Link', linkpath: 'a'}], undefined],
    [[{path: '/etc/passwd', type: 'File'}], 'absolute path'],
    [[{path: '../escape', type: 'File'}], '.. component'],
    [[{path: 'a/../../escape', type: 'File'}], '.. component'],
    [[{path: 'out', type: 'SymbolicLink', linkpath: '../../etc'}], 'leaves the mount'],
    [[{path: 'a/b/out', type: 'SymbolicLink', linkpath: '../../..'}], 'leaves the mount'],
    [[{path: 'abs', type: 'SymbolicLink', linkpath: '/etc'}], 'absolute path /etc'],
    [[{path: 'in', type: 'SymbolicLink', linkpath: 'sub'}, {path: 'in/file', type: 'File'}], 'through the symlink in'],
    [[{path: 'in', type: 'SymbolicLink', linkpath: 'sub'}, {path: 'in', type: 'Directory'}], 'through the symlink in'],
    [[{path: 'h', type: 'Link', linkpath: '../x'}], 'hard link'],
    [[{path: 'h', type: 'Link', linkpath: '/etc/shadow'}], 'hard link'],
    [[{path: 'dev', type: 'BlockDevice'}], 'BlockDevice'],
    [[{path: 'p', type: 'FIFO'}, {path: 'h', type: 'Link', linkpath: 'p'}], undefined],
    [[{path: 'h', type: 'Link', linkpath: 'later'}, {path: 'later', type: 'File'}], 'not an earlier member'],
    [[{path: 'd', type: 'Directory'}, {path: 'h', type: 'Link', linkpath: 'd'}], 'the directory d'],
    [[{path: 'a', type: 'File'}, {path: './a', type: 'File'}], 'repeats the path'],
    [[{path: 'a', type: 'File'}, {path: 'a/b', type: 'File'}], 'parent a is not a directory'],
    [[{path: 'd/x', type: 'File'}, {path: 'd', type: 'SymbolicLink', linkpath: '.'}], 'earlier members are inside it'],
    [[{path: 'd/x', type: 'File'}, {path: 'd', type: 'Directory'}], undefined],
    [[{path: '.', type: 'File'}], 'names the mount itself'],
  ]
  for (const [members, expected] of cases) {
    const seen = new Map<string, string>()
    const reasons = members.map((m) => unsafeMemberReason(m, seen)).filter(Boolean)
    if (expected === undefined) assert.equal(reasons, [], JSON.stringify(members))
    else assert.match(reasons[0] ?? '', expected, JSON.stringify(members))
  }
})

test('scanVolumeTar reads a stream and names the first refused member', async () => {
  const good = await scanVolumeTar(Readable.from([tarOf([{path: './', type: 'Directory'}, {path: 'a', content: 'x'}])]))
  assert.equal([good.members, good.unsafe, good.owners.length, good.canonical?.bytes], [2, undefined, 1, 2560])
  assert.is(good.contentBytes, 1)
  const bad = await scanVolumeTar(Readable.from([tarOf([{path: 'link', type: 'SymbolicLink', linkpath: '../../../etc'}, {path: 'link/cron.d/x', content: 'evil'}])]))
  assert.is(bad.unsafe?.path, 'link')
})

test('the untar script (busybox sh): replace empties the mount, exactly N bytes are read, their sha256 reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-untar-'))
  try {
    await execa('sh', ['-c', 'mkdir -p "$1/old" && touch "$1/.hidden" "$1/old/f"', 'sh', dir])
    const data = tarOf([{path: './', type: 'Directory'}, {path: 'new.txt', content: 'hello'}])
    // Trailing bytes past N must not be read: on v4 nothing else ends stdin.
    const r = await execa('busybox', ['sh', '-c', TAR_IN_SCRIPT, 'kubesnap-untar', dir, String(data.length), 'replace'], {input: Buffer.concat([data, Buffer.from('garbage')])})
    const report = parseUntarReport(r.stderr)
    assert.is(report?.tarExit, 0, r.stderr)
    const {createHash} = await import('node:crypto')
    assert.is(report?.sha256, createHash('sha256').update(data).digest('hex'))
    assert.equal(Object.keys(await hashTree(dir)), ['new.txt'])
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test('restarts: workloads reading a changed Secret, ConfigMap or live-written claim; not the scaled or new ones', () => {
  const sts = (name: string, spec: WorkloadObject['spec']) => ({kind: 'StatefulSet' as const, name, object: {metadata: {name}, spec}})
  const jenkins = sts('jenkins', {replicas: 1, template: {spec: {containers: [{env: [{valueFrom: {secretKeyRef: {name: 'admin'}}}]}], volumes: [{configMap: {name: 'casc'}}]}}, volumeClaimTemplates: [{metadata: {name: 'home'}}]})
  const other = sts('other', {replicas: 1, template: {spec: {containers: [{envFrom: [{configMapRef: {name: 'unrelated'}}]}]}}})
  assert.equal([...templateUses(jenkins.object.spec?.template?.spec).secrets], ['admin'])
  const none = {secrets: new Set<string>(), configMaps: new Set<string>(), claims: new Set<string>()}
  assert.equal(planRestarts([jenkins, other], {...none, secrets: new Set(['admin'])}, new Set()), [{kind: 'StatefulSet', name: 'jenkins', reasons: ['Secret admin']}])
  assert.equal(planRestarts([jenkins, other], {...none, claims: new Set(['home-jenkins-0'])}, new Set()).map((p) => p.reasons), [['claim home-jenkins-0']])
  assert.equal(planRestarts([jenkins], {...none, configMaps: new Set(['casc'])}, new Set(['StatefulSet/jenkins'])), [], 'scaled down and up already')
})

test('rolloutStatus follows kubectl rollout status', () => {
  const s = (status: WorkloadObject['status'], generation = 2): WorkloadObject => ({metadata: {generation}, spec: {replicas: 2}, status})
  assert.is(rolloutStatus('StatefulSet', s({observedGeneration: 1})).done, false)
  assert.is(rolloutStatus('StatefulSet', s({observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: 'a', updateRevision: 'b'})).done, false)
  assert.is(rolloutStatus('StatefulSet', s({observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: 'b', updateRevision: 'b'})).done, true)
  assert.is(rolloutStatus('Deployment', s({observedGeneration: 2, replicas: 3, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2})).done, false)
  assert.is(rolloutStatus('Deployment', s({observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2})).done, true)
  assert.equal([parseDuration('5m'), parseDuration('90s'), parseDuration('1h30m'), parseDuration('12'), parseDuration('soon')], [300_000, 90_000, 5_400_000, 12_000, undefined])
})

// ---------------------------------------------------------------------------
// Against the real control plane

let cluster: TestCluster
let admin: KubeApi

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
})

function restore(args: string[]) {
  return kubesnap(['restore', ...args, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
}

interface Snapshotted {
  ns: string
  /** The archive directory (removed after the tests). */
  dir: string
  path: string
  objects: ArchivedObject[]
}

const dirs: string[] = []

/** Snapshots `ns` as the namespace-only user; both of the fixture's claims are in the archive. */
async function snapshotOf(ns: string): Promise<Snapshotted> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-rv-'))
  dirs.push(dir)
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.volumes, 2)
  return {ns, dir, path: r.json.path, objects: await archivedObjects(r.json.path)}
}

const fixtures = new Map<FixtureName, Promise<Snapshotted>>()

/** A fixture namespace and its snapshot, made once and shared by the tests below. */
function fixtureSnapshot(fixture: FixtureName): Promise<Snapshotted> {
  let snapshotted = fixtures.get(fixture)
  if (!snapshotted) {
    snapshotted = cluster.createNamespace({prefix: `rv-${fixture.slice(0, 6)}`, fixture}).then(snapshotOf)
    fixtures.set(fixture, snapshotted)
  }
  return snapshotted
}

/** The restore's volume outcomes as `[claim, action, verified]`, sorted. */
const volumeOutcomes = (json: any) => json.volumes.map((v: any) => [v.claim, v.action, v.verified]).sort()

/** A complete restore of a fixture into `ns`: every claim restored and checked in the pod, every object and seeded file back. */
async function assertRoundTrip(r: CliResult, fixture: FixtureName, objects: ArchivedObject[], ns: string): Promise<void> {
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  assert.equal(volumeOutcomes(r.json), Object.keys(FIXTURE_CLAIMS[fixture]).sort().map((claim) => [claim, 'restored', 'pod-sha256']))
  // On 1.20 a node port released by the wipe can be held as leaked for minutes (test/cluster/index.ts): restore
  // then lets the server assign one and says so. Only a Service it named may come back on another port.
  const reassigned = (r.json.warnings as string[]).flatMap((w) => /^Service\/([^:]+): its node ports are taken/.exec(w)?.[1] ?? [])
  await assertRestored(admin, objects, ns, ns, {assignedNodePorts: reassigned})
  assert.equal(await volumeTrees(admin, ns), await seededTrees(fixture), 'every claim back, every file, mode and link as seeded')
}

test('jenkins: wipe objects and claims; --dry-run plans each volume and writes nothing; restore brings every object and byte back and the StatefulSet Ready', async () => {
  const {ns, path, objects} = await fixtureSnapshot('jenkins')
  await wipe(admin, ns, objects)

  const before = await versions(admin, ns)
  const dry = await kubesnap(['restore', path, '--dry-run', '--kubeconfig', cluster.kubeconfigs.user], {timeoutMs: 120_000})
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.match(dry.stdout, /volume\s+jenkins-home-jenkins-0: [\d.]+ KiB through a helper pod/)
  assert.match(dry.stdout, /volume\s+agent-cache: [\d.]+ KiB through a helper pod/)
  assert.equal(await versions(admin, ns), before, 'the dry run created no pod, claim or anything else')

  const r = await restore([path])
  await assertRoundTrip(r, 'jenkins', objects, ns)
  assert.equal(r.json.rollouts.map((w: any) => [w.kind, w.name, w.ready]).sort(), [['Deployment', 'jenkins-agent-cache', true], ['StatefulSet', 'jenkins', true]])
  assert.equal(await helperPods(admin, ns), [], 'no helper pod left')
})

test('a hostile archive is refused before any write: exit 1 naming the volume and member, nothing changed', async () => {
  const {ns} = await fixtureSnapshot('jenkins')
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-hostile-'))
  const writer = await createArchiveWriter({dir, namespace: ns, kubesnapVersion: 'test', cluster: {server: cluster.server, context: 'test'}})
  const hostile: Record<string, Buffer> = {
    'evil-dotdot': tarOf([{path: './', type: 'Directory'}, {path: './../escape', content: 'out'}]),
    'evil-absolute': tarOf([{path: '/etc/cron.d/evil', content: '* * * * * root sh'}]),
    'evil-symlink': tarOf([{path: 'link', type: 'SymbolicLink', linkpath: '../../../../etc'}, {path: 'link/cron.d/evil', content: 'x'}]),
    // 2 MiB of files for a 1 MiB claim: a small archive that would fill the disk (a gzip bomb is the same case).
    'too-big': tarOf([{path: './', type: 'Directory'}, {path: 'zeros', content: '\0'.repeat(2 * 1024 * 1024)}]),
    // Issue 16: busybox ignores the PAX size and reads the "data" as a character device's header; node-tar did not see it.
    'evil-pax-device': rawTar(
      rawEntry({name: 'PaxHeaders/innocent', flag: 'x'}, paxData([['size', '1024']])),
      rawHeader({name: 'innocent', size: 0}),
      rawHeader({name: 'dev', flag: '3', mode: 0o666, devmajor: 1, devminor: 3}),
      rawHeader({name: 'filler', size: 0}),
    ),
    'evil-duplicate': tarOf([{path: 'a', content: 'one'}, {path: 'a', content: 'two'}]),
  }
  for (const claim of Object.keys(hostile)) {
    const storage = claim === 'too-big' ? '1Mi' : '1Gi'
    const pvc = {apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name: claim, namespace: ns}, spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage}}}}
    await writer.addObject({kind: 'PersistentVolumeClaim', group: '', version: 'v1', resource: 'persistentvolumeclaims', name: claim}, JSON.stringify(pvc))
  }
  for (const [claim, data] of Object.entries(hostile)) {
    await writer.addStream({type: 'volume', name: claim, kind: 'PersistentVolumeClaim', group: '', version: 'v1', resource: 'persistentvolumeclaims'}, Readable.from([data]))
  }
  const {path} = await writer.finish({skipped: [], warnings: []})
  const before = await versions(admin, ns)
  const r = await restore([path])
  assert.is(r.code, 1, r.stdout)
  const message: string = r.json?.error?.message ?? r.stderr
  assert.match(message, /nothing was changed/)
  assert.match(message, /Volume evil-dotdot: the member "\.\/\.\.\/escape" is refused \(its path has a \.\. component\)/)
  assert.match(message, /Volume evil-absolute: the member "\/etc\/cron\.d\/evil" is refused \(it has an absolute path\)/)
  assert.match(message, /Volume evil-symlink: the member "link" is refused \(it is a symlink to \.\.\/\.\.\/\.\.\/\.\.\/etc, which leaves the mount\)/)
  assert.match(message, /Volume too-big: its files hold 2(\.0)? MiB, more than the 1(\.0)? MiB of claim too-big \(its archived request\), so the copy would fill the volume/)
  assert.match(message, /Volume evil-pax-device: the member "innocent" is refused \(its PAX size "1024" disagrees with the size 0 in its tar header, and tars read it either way\)/)
  assert.match(message, /Volume evil-duplicate: the member "a" is refused \(it repeats the path of an earlier member\)/)
  assert.equal(await versions(admin, ns), before, 'no claim, pod or object was written')
  assert.not.ok(Object.keys(before).some((key) => key.includes('evil-pax-device')), 'so no claim holds the device')
  await rm(dir, {recursive: true, force: true})
})

test('--existing update --only-secrets: a changed Secret is put back and the StatefulSet reading it is restarted and rolled out', async () => {
  const {ns, path} = await fixtureSnapshot('jenkins')
  await cluster.waitForWorkloads(ns)
  // The Secret changed since the snapshot (someone rotated it by hand).
  await admin.patch(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`, JSON.stringify({data: {'jenkins-admin-password': Buffer.from('rotated').toString('base64')}}), 'application/merge-patch+json')
  const r = await restore([path, '--only-secrets', '--existing', 'update'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.equal(r.json.volumes, [], 'claims are not selected: their data is left alone')
  assert.equal(r.json.restarted.map((w: any) => [w.kind, w.name, w.reasons]), [['StatefulSet', 'jenkins', ['Secret jenkins-admin']]])
  assert.equal(r.json.rollouts.map((w: any) => [w.name, w.ready]), [['jenkins', true]])
  const sts = await admin.get<any>(`/apis/apps/v1/namespaces/${ns}/statefulsets/jenkins`)
  assert.ok(sts.spec.template.metadata.annotations?.[RESTARTED_AT], 'restartedAt set on the pod template')
  assert.is(sts.status.currentRevision, sts.status.updateRevision, 'the rollout completed')
  const secret = await admin.get<any>(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`)
  assert.is(Buffer.from(secret.data['jenkins-admin-password'], 'base64').toString(), 'Jk7-wq2Lz9Rb4sVx')
})

test('v4-only node: the archived stream goes in framed by its length (head -c N) and arrives byte for byte', async () => {
  const {path} = await fixtureSnapshot('jenkins')
  const node = await cluster.startPrivateNode({prefix: 'rv-v4'})
  const ns = await cluster.createNamespace({prefix: 'rv-v4'})
  try {
    node.agent.setV4Only(true)
    const core = cluster.admin().makeApiClient(CoreV1Api)
    await core.createNamespacedPersistentVolumeClaim({namespace: ns, body: {metadata: {name: 'home'}, spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}}}})
    const user = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
    const helpers = new HelperPods(user, ns)
    // Pinned to the v4-only node, as a helper beside a claim's user there would be.
    const helper = await helpers.start('home', node.name, {readOnly: false})
    try {
      const reader = await openArchive(path)
      const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'volume' && e.name === 'jenkins-home-jenkins-0')!
      const {canonical} = await scanVolumeTar(reader.readStream(entry))
      const result = await streamVolumeIn({
        api: user, namespace: ns, claim: 'home', target: {pod: helper.name, container: helper.container, mountPath: helper.mountPath},
        stream: reader.readStream(entry), canonical: canonical!, mode: 'replace',
      })
      assert.is(result.protocol, 'v4.channel.k8s.io')
      assert.is(result.bytes, canonical!.bytes)
      assert.is(result.verified, 'pod-sha256')
      assert.equal(await hashTree(await volumeDir(admin, ns, 'home')), await seedTree('jenkins/jenkins-home'))
    } finally {
      await helpers.removeAll()
      user.close()
    }
  } finally {
    await cluster.deleteNamespace(ns)
    await node.stop()
  }
})

const SF_CLAIMS = [['mariadb-logs-mariadb-0', 'restored', 'pod-sha256'], ['zookeeper-data-zookeeper-0', 'restored', 'pod-sha256']]
const SF_WORKLOADS = ['Deployment/gateway 1/1', 'StatefulSet/mariadb 1/1', 'StatefulSet/zookeeper 1/1']

// Before the in-place restore below, which wipes the original this one needs running.
test('softwarefactory --to-namespace beside its original: every object and volume byte in the new namespace, StatefulSets Ready; the original untouched', async () => {
  const {ns: source, path, objects} = await fixtureSnapshot('softwarefactory')
  // Changed since the snapshot: the copy must come from the archive, and the original keep them.
  await admin.patch(`/api/v1/namespaces/${source}/configmaps/sf-version`, {data: {version: 'v0.0.53'}}, 'application/merge-patch+json')
  await writeFile(join(await volumeDir(admin, source, 'zookeeper-data-zookeeper-0'), 'written-after-snapshot'), 'keep me')
  const sourceVersions = await versions(admin, source)
  const sourceTrees = await volumeTrees(admin, source)
  const target = await cluster.createNamespace({prefix: 'rv-sf-copy'})
  try {
    const r = await restore([path, '--to-namespace', target])
    assert.is(r.code, 0, r.stderr + r.stdout)
    assert.is(r.json.status, 'complete')
    assert.is(r.json.namespace, target)
    assert.equal(volumeOutcomes(r.json), SF_CLAIMS)
    // The original holds its fixed nodePort: the copy gets one from the server.
    assert.ok(r.json.warnings.some((w: string) => w.startsWith('Service/gateway: its node ports are taken')), r.json.warnings.join('\n'))
    await assertRestored(admin, objects.filter(({entry}) => !isHarness(entry)), source, target, {assignedNodePorts: ['gateway']})
    assert.equal(await volumeTrees(admin, target), await seededTrees('softwarefactory'), 'the new claims hold the archived trees')
    assert.equal(await workloadReadiness(admin, target), SF_WORKLOADS)

    assert.equal(await versions(admin, source), sourceVersions, 'no object of the original was written, no pod restarted')
    assert.equal(await volumeTrees(admin, source), sourceTrees, 'the original volumes keep what was written after the snapshot')
    assert.is((await admin.get<any>(`/api/v1/namespaces/${source}/configmaps/sf-version`)).data.version, 'v0.0.53')
  } finally {
    await cluster.deleteNamespace(target)
  }
})

test('softwarefactory: wipe objects and claims, restore: every object back, every volume byte as seeded, StatefulSets Ready', async () => {
  const {ns, path, objects} = await fixtureSnapshot('softwarefactory')
  await wipe(admin, ns, objects)
  const r = await restore([path])
  await assertRoundTrip(r, 'softwarefactory', objects, ns)
  assert.is(r.json.objects.failed, 0)
  assert.equal(await workloadReadiness(admin, ns), SF_WORKLOADS)
})

test('v4-only cluster (before 1.30): snapshot, wipe, restore with the CLI; every object and volume byte back, StatefulSet Ready, every exec on v4', async () => {
  const execs: string[] = []
  // The only node pods go to, so the fixture, the snapshot's helper and the restore's helpers all run there.
  const node = await cluster.startPrivateNode({prefix: 'rv-v4only', exclusive: true, log: (line) => void (line.startsWith('exec ') && execs.push(line))})
  node.agent.setV4Only(true)
  let ns: string | undefined
  try {
    ns = await cluster.createNamespace({prefix: 'rv-v4rt', fixture: 'jenkins'})
    const {path, objects} = await snapshotOf(ns)
    await wipe(admin, ns, objects)
    const r = await restore([path])
    await assertRoundTrip(r, 'jenkins', objects, ns)
    assert.equal(await workloadReadiness(admin, ns), ['Deployment/jenkins-agent-cache 1/1', 'StatefulSet/jenkins 1/1'])

    const pods = await admin.get<any>(`/api/v1/namespaces/${ns}/pods`)
    assert.equal([...new Set(pods.items.map((p: any) => p.spec.nodeName))], [node.name], 'the pods run on the v4-only node')
    const mine = execs.filter((line) => line.startsWith(`exec ${ns}/`))
    assert.equal(mine.filter((line) => !line.includes('(v4.channel.k8s.io)')), [], 'no exec on v5')
    const succeeded = (script: string) => mine.filter((line) => line.includes(`"${script}"`) && line.includes('): exit 0,')).length
    assert.is(succeeded('kubesnap-tar'), 2, 'both claims streamed out on v4')
    assert.is(succeeded('kubesnap-untar'), 2, 'both claims streamed in on v4')
  } finally {
    if (ns) await cluster.deleteNamespace(ns)
    await node.stop()
  }
})

test('SIGTERM during the volume copy: helpers deleted, every workload scaled down is scaled back, the state reported, exit 3', async () => {
  // The only node pods go to, with a slow stdin reader, so the signal surely lands while a claim is copied.
  const node = await cluster.startPrivateNode({prefix: 'rv-sigterm', exclusive: true})
  let ns: string | undefined
  try {
    ns = await cluster.createNamespace({prefix: 'rv-term', fixture: 'jenkins'})
    const {path} = await snapshotOf(ns)
    node.agent.faults.slowReaderBytesPerSec = 20_000
    const child = execa(process.execPath, [KUBESNAP_BIN, 'restore', path, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {reject: false})
    await waitFor('a helper pod copying a claim', async () => {
      const helper = (await helperPods(admin, ns!))[0]
      return helper !== undefined && (await admin.get<any>(`/api/v1/namespaces/${ns}/pods/${helper}`)).status?.phase === 'Running'
    }, {timeoutMs: 60_000, retryErrors: true})
    await sleep(1000)
    child.kill('SIGTERM')
    const result = await child
    assert.is(result.exitCode, 3, `exit 3 (partial), not a silent 143: ${result.stderr}`)
    const summary = JSON.parse(result.stdout)
    assert.is(summary.status, 'interrupted')
    const failed = summary.volumes.filter((v: any) => v.action === 'failed')
    assert.ok(failed.length >= 1, JSON.stringify(summary.volumes))
    for (const v of failed) assert.match(v.error, /interrupted by SIGTERM/)
    const copying = failed.find((v: any) => /while its data was copied/.test(v.error))
    assert.ok(copying, 'the claim being copied is named as holding part of its data')
    assert.match(copying.error, new RegExp(`${copying.scaled.kind}/${copying.scaled.name} was scaled back to 1`))
    assert.equal(await helperPods(admin, ns), [], 'no helper pod left')
    node.agent.faults.reset()
    await waitFor('the workloads back at their replicas', async () => (await workloadReadiness(admin, ns!)).join() === 'Deployment/jenkins-agent-cache 1/1,StatefulSet/jenkins 1/1', {timeoutMs: 60_000})
  } finally {
    node.agent.faults.reset()
    if (ns) await cluster.deleteNamespace(ns)
    await node.stop()
  }
})

test.after(async () => {
  for (const snapshotted of fixtures.values()) {
    const ns = await snapshotted.then((s) => s.ns, () => undefined)
    if (ns) await cluster.deleteNamespace(ns)
  }
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
  admin?.close()
})

test.run()
