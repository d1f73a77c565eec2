/**
 * Helper pods a killed kubesnap left behind (issue 16, item 5): the next
 * snapshot neither archives them nor keeps them, and a restore of an archive
 * that holds one (made before this fix) does not re-create it.
 *
 *   npm test -- helper-leftovers
 */
import {execa} from 'execa'
import {mkdtemp, rm} from 'node:fs/promises'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {createArchiveWriter, openArchive} from '../src/archive/index.js'
import {thisProcess} from '../src/archive/lock.js'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {HELPER_OWNER_ANNOTATION, helperPodSpec} from '../src/volumes/helper.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {waitFor} from './cluster/wait.js'
import {kubesnap} from './helpers/cli.js'
import {helperPods} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi
let ns: string
const dirs: string[] = []

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  ns = await cluster.createNamespace({prefix: 'leftover'})
  await admin.post(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {metadata: {name: 'data'}, spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}}})
  await waitFor('claim data Bound', async () => (await admin.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/data`)).status?.phase === 'Bound', {timeoutMs: 60_000})
})

/** A helper pod as a `kill -9`'d run on this host leaves it: running, its owner process gone. */
async function leftoverHelper(name: string): Promise<void> {
  // A process that has ended: its pid names nobody now (or someone started later).
  const gone = execa('true')
  await gone
  const owner = {...thisProcess(), pid: gone.pid!, processStart: 1}
  const spec = helperPodSpec({name, claim: 'data', image: 'busybox:1.36'}) as any
  spec.metadata.annotations[HELPER_OWNER_ANNOTATION] = JSON.stringify(owner)
  await admin.post(`/api/v1/namespaces/${ns}/pods`, spec)
  await waitFor(`pod ${name} Running`, async () => (await admin.get<any>(`/api/v1/namespaces/${ns}/pods/${name}`)).status?.phase === 'Running', {timeoutMs: 60_000})
}

test('the next snapshot skips a helper left by a killed run (with its reason), removes it, and says so', async () => {
  await leftoverHelper('kubesnap-data-dead01')
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-leftover-'))
  dirs.push(dir)
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  const reader = await openArchive(r.json.path)
  assert.equal(reader.manifest.entries.filter((e) => e.resource === 'pods').map((e) => e.name), [], 'no pod archived')
  assert.ok(reader.manifest.skipped.some((s) => s.resource === 'pods' && s.name === 'kubesnap-data-dead01' && /kubesnap's own helper pod/.test(s.reason)), JSON.stringify(reader.manifest.skipped))
  assert.ok(reader.manifest.warnings.some((w) => /^Removed helper pod kubesnap-data-dead01, left by an earlier run \(pid \d+ on .+, no longer running\)\.$/.test(w)), reader.manifest.warnings.join('\n'))
  assert.equal(await helperPods(admin, ns), [], 'the leftover is gone, and the run\'s own helper too')
})

test('a helper of a live run on this host, or of another host, is left alone', async () => {
  const live = helperPodSpec({name: 'kubesnap-data-live01', claim: 'data', image: 'busybox:1.36'}) as any
  const other = helperPodSpec({name: 'kubesnap-data-other1', claim: 'data', image: 'busybox:1.36'}) as any
  other.metadata.annotations[HELPER_OWNER_ANNOTATION] = JSON.stringify({...thisProcess(), hostname: `not-${hostname()}`, pid: 1})
  await admin.post(`/api/v1/namespaces/${ns}/pods`, live)
  await admin.post(`/api/v1/namespaces/${ns}/pods`, other)
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-leftover-'))
  dirs.push(dir)
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json', '--volumes', 'none'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  const names = await helperPods(admin, ns)
  assert.ok(names.includes('kubesnap-data-live01') && names.includes('kubesnap-data-other1'), names.join())
  for (const name of names) await admin.delete(`/api/v1/namespaces/${ns}/pods/${name}`, {query: {gracePeriodSeconds: 0}})
})

test('a restore of an older archive that holds a helper pod does not plan or create it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-leftover-'))
  dirs.push(dir)
  const writer = await createArchiveWriter({dir, namespace: ns, kubesnapVersion: 'test', cluster: {server: cluster.server, context: 'test'}})
  const pod = helperPodSpec({name: 'kubesnap-data-old001', claim: 'data', image: 'busybox:1.36'}) as any
  pod.metadata.namespace = ns
  await writer.addObject({kind: 'Pod', group: '', version: 'v1', resource: 'pods', name: 'kubesnap-data-old001'}, JSON.stringify(pod))
  const config = {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'app', namespace: ns}, data: {a: '1'}}
  await writer.addObject({kind: 'ConfigMap', group: '', version: 'v1', resource: 'configmaps', name: 'app'}, JSON.stringify(config))
  const {path} = await writer.finish({skipped: [], warnings: []})
  const dry = await kubesnap(['restore', path, '--dry-run', '--volumes', 'none', '--kubeconfig', cluster.kubeconfigs.user], {timeoutMs: 120_000})
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.match(dry.stdout, /create\s+ConfigMap\/app/)
  assert.not.match(dry.stdout, /kubesnap-data-old001/, 'the helper pod is not planned')
  const r = await kubesnap(['restore', path, '--volumes', 'none', '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 120_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.equal(r.json.outcomes.map((o: any) => `${o.kind}/${o.name}`), ['ConfigMap/app'])
  assert.equal(await helperPods(admin, ns), [])
})

test.after(async () => {
  if (ns) await cluster.deleteNamespace(ns)
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
  admin?.close()
})

test.run()
