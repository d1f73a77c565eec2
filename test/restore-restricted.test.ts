/**
 * kubesnap in a namespace that enforces Pod Security `restricted` (the `shop`
 * fixture, test/cluster/podsecurity.ts): snapshot and restore as the
 * namespace-only user bring every object back and every volume file with its
 * bytes, mode and numeric owner, and the restored pods pass the restricted policy.
 */
import {lstat, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {PSP_ANNOTATION, sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
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
  assert.equal(roots, ['data-db-0 2770 999:999', 'web-uploads 2775 1000:1000'])
  assert.equal(await volumeTrees(admin, ns), await seededTrees('shop'), 'every claim back, every file, mode, owner and link as seeded')
})

test.run()
