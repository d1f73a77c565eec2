/**
 * kubesnap in a namespace that enforces Pod Security `restricted` (the `shop`
 * fixture, test/cluster/podsecurity.ts): snapshot and restore as the
 * namespace-only user bring every object back and every volume file with its
 * bytes, mode and numeric owner, and the restored pods pass the restricted policy.
 */
import {chmod, chown, lstat, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {execa} from 'execa'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {PSP_ANNOTATION, sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {helperPodSpec} from '../src/volumes/helper.js'
import {waitFor} from './cluster/wait.js'
import {archivedObjects, assertRestored, FIXTURE_CLAIMS, helperPods, seededTrees, volumeDir, volumeTrees, wipe} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi
const dirs: string[] = []
const namespaces: string[] = []

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
})

test.after(async () => {
  await Promise.all(namespaces.map((ns) => cluster.deleteNamespace(ns)))
  await Promise.all(dirs.map((dir) => rm(dir, {recursive: true, force: true})))
})

// Symlinks too: the helper runs as the application (999, 1000) and makes them as it; a root helper
// gives them their archived owners with `chown -h` after the copy (busybox tar sets none).
test('shop: wipe objects and claims; restore as the user brings every object, byte, mode and owner back, pods still restricted', async () => {
  const ns = await cluster.createNamespace({prefix: 'rr-shop', fixture: 'shop'})
  namespaces.push(ns)
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-rr-'))
  dirs.push(dir)
  const snapshot = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(snapshot.code, 0, snapshot.stderr + snapshot.stdout)
  assert.is(snapshot.json.volumes, 2)
  const objects = await archivedObjects(snapshot.json.path)
  await wipe(admin, ns, objects)

  const r = await kubesnap(['restore', snapshot.json.path, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  const outcomes = r.json.volumes.map((v: any) => [v.claim, v.action, v.verified]).sort()
  assert.equal(outcomes, Object.keys(FIXTURE_CLAIMS.shop).sort().map((claim) => [claim, 'restored', 'pod-sha256']))
  assert.equal(r.json.rollouts.map((w: any) => [w.kind, w.name, w.ready]).sort(), [['Deployment', 'web', true], ['StatefulSet', 'db', true]])
  assert.equal(await helperPods(admin, ns), [], 'no helper pod left')
  const pods = await admin.get<any>(`/api/v1/namespaces/${ns}/pods`)
  for (const pod of pods.items) assert.is(pod.metadata.annotations?.[PSP_ANNOTATION], 'restricted', pod.metadata.name)
  await assertRestored(admin, objects, ns, ns)
  // Volume roots too (hashTree leaves them out): OnRootMismatch trusts the root's owner for the whole tree.
  const roots: string[] = []
  for (const claim of Object.keys(FIXTURE_CLAIMS.shop).sort()) {
    const stats = await lstat(await volumeDir(admin, ns, claim))
    roots.push(`${claim} ${(stats.mode & 0o7777).toString(8).padStart(4, '0')} ${stats.uid}:${stats.gid}`)
  }
  // A copy as 999 (1000) cannot change a root it does not own: the roots are as the provisioner made them, with
  // the application's fsGroup and setgid (so it can write), and the restore says so.
  assert.equal(roots, ['data-db-0 2777 0:999', 'web-uploads 2777 0:1000'])
  for (const [claim, archived] of [['data-db-0', '999:999 mode 2770'], ['web-uploads', '1000:1000 mode 2775']]) {
    assert.ok(r.json.warnings.some((w: string) => w.startsWith(`The root directory of claim ${claim} is 0:`) && w.includes(`not ${archived} as archived`)), r.json.warnings.join('\n'))
  }
  assert.equal(await volumeTrees(admin, ns), await seededTrees('shop'), 'every claim back, every file, mode, owner and link as seeded')
  // The database runs as 999 again and can write its own files: a new one, and one of the restored 0600 ones.
  const db = await execa('kubectl', ['--kubeconfig', cluster.kubeconfigs.admin, 'exec', '-n', ns, 'db-0', '-c', 'postgres', '--', 'sh', '-c',
    'id -u && echo restored >> /var/lib/postgresql/data/pgdata/PG_VERSION && echo x > /var/lib/postgresql/data/pgdata/after-restore && cat /var/lib/postgresql/data/pgdata/PG_VERSION'], {reject: false})
  assert.is(db.exitCode, 0, db.stderr)
  assert.equal(db.stdout.trim().split('\n'), ['999', '13', 'restored'])
})

test('a file the copy cannot read (another owner, 0600) leaves its claim out: exit 3, the archive verifies and restores the rest; --volumes-required fails as before', async () => {
  const ns = await cluster.createNamespace({prefix: 'rr-unread', fixture: 'shop'})
  namespaces.push(ns)
  const data = await volumeDir(admin, ns, 'data-db-0')
  await writeFile(join(data, 'pgdata', 'root-only.key'), 'secret')
  await chown(join(data, 'pgdata', 'root-only.key'), 0, 0)
  await chmod(join(data, 'pgdata', 'root-only.key'), 0o600)
  const unreadable = /1 path could not be read by tar in pod db-0: "\.\/pgdata\/root-only\.key"/

  // All or nothing, as asked: no archive, the claim and the file named, the fix given.
  const strictDir = await mkdtemp(join(tmpdir(), 'kubesnap-rr-'))
  dirs.push(strictDir)
  const strict = await kubesnap(['snapshot', '-n', ns, '-o', strictDir, '--kubeconfig', cluster.kubeconfigs.user, '--volumes-required', '--json'], {timeoutMs: 240_000})
  assert.is(strict.code, 1, strict.stdout)
  const message: string = strict.json?.error?.message ?? ''
  assert.match(message, /^Could not copy the data of claim data-db-0: 1 path could not be read by tar in pod db-0: "\.\/pgdata\/root-only\.key"; nothing of it is stored as complete\. Run the copy as those files' owner/)
  assert.match(message, /--helper-as-root/)
  assert.equal(await readdir(strictDir), [], 'no archive, no partial file, no lock')

  // By default: the objects and the other claim are kept, the claim is recorded as failed, exit 3.
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-rr-'))
  dirs.push(dir)
  const snapshot = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(snapshot.code, 3, snapshot.stderr + snapshot.stdout)
  assert.is(snapshot.json.status, 'partial')
  assert.is(snapshot.json.volumes, 1)
  const failed = snapshot.json.skipped.filter((s: any) => s.failed)
  assert.equal(failed.map((s: any) => [s.resource, s.name]), [['persistentvolumeclaims', 'data-db-0']])
  assert.match(failed[0].reason, /^data not copied: /)
  assert.match(failed[0].reason, unreadable)
  const warning = snapshot.json.warnings.find((w: string) => w.startsWith('Could not copy the data of claim data-db-0'))
  assert.ok(warning, snapshot.json.warnings.join('\n'))
  assert.match(warning, /The snapshot is partial: it keeps the objects and the other volumes, without the data of claim data-db-0/)
  const human = await kubesnap(['list', dir])
  assert.match(human.stdout, /\spartial\s/, human.stdout)
  const verify = await kubesnap(['verify', snapshot.json.path])
  assert.is(verify.code, 0, verify.stderr + verify.stdout)

  // The disaster: everything gone; the restore brings back every object and the data it has, and names the claim without.
  const objects = await archivedObjects(snapshot.json.path)
  assert.ok(objects.some((o) => o.entry.resource === 'persistentvolumeclaims' && o.entry.name === 'data-db-0'), 'the claim itself is archived')
  await wipe(admin, ns, objects)
  const dry = await kubesnap(['restore', snapshot.json.path, '--kubeconfig', cluster.kubeconfigs.user, '--dry-run'], {timeoutMs: 120_000})
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.match(dry.stdout, /^no data {2}volume data-db-0: data not copied: 1 path could not be read/m)
  assert.match(dry.stdout, /1 claim\(s\) without data in the archive/)
  const r = await kubesnap(['restore', snapshot.json.path, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  assert.equal(r.json.volumes.map((v: any) => [v.claim, v.action]), [['web-uploads', 'restored']])
  assert.equal(r.json.withoutData.map((c: any) => [c.claim, c.failed]), [['data-db-0', true]])
  assert.ok(r.json.warnings.some((w: string) => w.startsWith('Claim data-db-0 is restored without data: the snapshot could not copy it (1 path could not be read')), r.json.warnings.join('\n'))
  await assertRestored(admin, objects, ns, ns)
  const trees = await volumeTrees(admin, ns)
  const seeded = await seededTrees('shop')
  assert.equal(trees['web-uploads'], seeded['web-uploads'], 'the good claim is back, every file')
  assert.not.equal(trees['data-db-0'], seeded['data-db-0'], 'the failed claim is re-created without its data')
})

test('the policy bites: a helper without kubesnap\'s securityContext is refused or cannot start; kubesnap\'s is admitted and runs as the application', async () => {
  const ns = await cluster.createNamespace({prefix: 'rr-bite', fixture: 'shop'})
  namespaces.push(ns)
  const user = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
  try {
    const root = helperPodSpec({name: 'kubesnap-root', claim: 'web-uploads', image: 'busybox:1.36', mode: 'root'})
    const refused = await user.post(`/api/v1/namespaces/${ns}/pods`, root).then(() => undefined, (err: Error) => err.message)
    assert.match(refused ?? 'admitted', /PodSecurityPolicy: unable to admit pod/, refused)
    assert.match(refused ?? 'admitted', /runAsNonRoot: Invalid value: false: must be true/, refused)
    assert.match(refused ?? 'admitted', /capability may not be added/, refused)
    // No securityContext at all: the policy adds runAsNonRoot, and busybox's user is root: the container never starts.
    const bare = helperPodSpec({name: 'kubesnap-bare', claim: 'web-uploads', image: 'busybox:1.36', mode: 'app', app: {identity: {runAsUser: 1000}, from: 'test'}}) as any
    delete bare.spec.securityContext
    delete bare.spec.containers[0].securityContext
    await user.post(`/api/v1/namespaces/${ns}/pods`, bare)
    await waitFor('the bare helper refused by the node', async () => {
      const pod = await user.get<any>(`/api/v1/namespaces/${ns}/pods/kubesnap-bare`)
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError'
    }, {timeoutMs: 60_000})
    const check = await kubesnap(['check', '-n', ns, '--for', 'restore', '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 120_000})
    assert.is(check.code, 0, check.stderr + check.stdout)
    assert.equal(check.json.helpers.map((h: any) => [h.claim, h.admitted, h.runsAs]), [
      ['data-db-0', true, 'uid 999, gid 999, fsGroup 999 (as pod db-0)'],
      ['web-uploads', true, 'uid 1000, gid 1000, fsGroup 1000 (as pod ' + (await user.get<any>(`/api/v1/namespaces/${ns}/pods`, {query: {labelSelector: 'app.kubernetes.io/name=web'}})).items[0].metadata.name + ')'],
    ])
  } finally {
    user.close()
  }
})

test.run()
