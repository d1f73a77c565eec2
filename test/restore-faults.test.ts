// npm test: runs alone (its exclusive private node cordons the shared node)
/**
 * Restores that fail half-way report honestly (issue 14, item 3): through the
 * fault proxy in front of the real apiserver, as the namespace-only user, the
 * jenkins fixture (a StatefulSet and a Deployment, one claim each) on a node
 * of this test's own. A stream cut during a volume load, Ctrl-C during the
 * scale-down, and 503s in the middle of the workloads phase (one after the
 * apiserver applied the create, one before): each run ends with its summary on
 * stdout as JSON, exit 3, and no workload left at 0 replicas unreported. And a
 * phase that cannot go on before anything was written: its summary, exit 1.
 *
 *   cd /work/main && npm run build && node --import tsx test/restore-faults.test.ts
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type PrivateNode, type TestCluster} from './cluster/index.js'
import {startFaultProxy, withProxy, type FaultProxy} from './cluster/faults/proxy.js'
import {waitFor} from './cluster/wait.js'
import {kubesnap, KUBESNAP_BIN} from './helpers/cli.js'
import {archivedObjects, helperPods, isHarness, wipe, workloadReadiness, type ArchivedObject} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi
let node: PrivateNode
let proxy: FaultProxy
/** The namespace-only user's kubeconfig, through the proxy. */
let proxied: string
let ns: string
let dir: string
let archive: string
let objects: ArchivedObject[]

const READY = 'Deployment/jenkins-agent-cache 1/1,StatefulSet/jenkins 1/1'

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  // The only node pods go to, fixture and helpers alike, so the test holds its exec switches.
  node = await cluster.startPrivateNode({prefix: 'rf', exclusive: true})
  ns = await cluster.createNamespace({prefix: 'rfault', fixture: 'jenkins'})
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-rf-'))
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 240_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  archive = r.json.path
  objects = await archivedObjects(archive)
  proxy = await startFaultProxy({target: cluster.server})
  proxied = await withProxy(cluster.kubeconfigs.user, proxy)
})

test.before.each(() => {
  proxy.reset()
  node.agent.faults.reset()
})

test.after(async () => {
  node?.agent.faults.reset()
  await proxy?.stop()
  if (ns) await cluster.deleteNamespace(ns)
  await node?.stop()
  if (dir) await rm(dir, {recursive: true, force: true})
  admin?.close()
})

/** `kubesnap restore ARCHIVE --json` as the namespace-only user through the proxy, started in the background. */
function startRestore(extra: string[] = []) {
  return execa(process.execPath, [KUBESNAP_BIN, 'restore', archive, '--kubeconfig', proxied, '--json', '--timeout', '60s', ...extra], {reject: false, timeout: 240_000})
}

/** Every StatefulSet and Deployment runs its replicas again, and none is at 0 unless the summary names it with its command. */
async function assertNoneLeftAtZero(summary: any): Promise<void> {
  const reported = new Set(summary.volumes.flatMap((v: any) => (v.scaled?.scaledBack === false ? [`${v.scaled.kind}/${v.scaled.name}`] : [])))
  for (const [kind, resource] of [['StatefulSet', 'statefulsets'], ['Deployment', 'deployments']]) {
    const list = await admin.get<any>(`/apis/apps/v1/namespaces/${ns}/${resource}`)
    for (const w of list.items) {
      if (w.spec.replicas === 0) assert.ok(reported.has(`${kind}/${w.metadata.name}`), `${kind}/${w.metadata.name} is at 0 replicas and the summary does not say so`)
    }
  }
  assert.equal(await helperPods(admin, ns), [], 'no helper pod left')
}

test('a stream cut during a volume load: the claim is failed (partly written), its workload scaled back, the summary printed, exit 3', async () => {
  // A slow pod-side reader, so the cut surely lands while a claim's data is on its way.
  node.agent.faults.slowReaderBytesPerSec = 20_000
  const child = startRestore()
  await waitFor('a helper pod copying a claim', async () => {
    const helper = (await helperPods(admin, ns))[0]
    return helper !== undefined && (await admin.get<any>(`/api/v1/namespaces/${ns}/pods/${helper}`)).status?.phase === 'Running'
  }, {timeoutMs: 90_000, retryErrors: true})
  await sleep(1000)
  assert.ok(proxy.cutConnections() > 0, 'the proxy held the restore\'s connections')
  node.agent.faults.reset()
  const result = await child
  assert.is(result.exitCode, 3, result.stderr)
  const summary = JSON.parse(result.stdout)
  assert.is(summary.status, 'partial')
  const failed = summary.volumes.filter((v: any) => v.action === 'failed')
  assert.is(failed.length, 1, JSON.stringify(summary.volumes))
  assert.match(failed[0].error, /could not restore the data of claim .*the copy had begun, so the claim may hold part of its data/)
  assert.match(failed[0].error, new RegExp(`${failed[0].scaled.kind}/${failed[0].scaled.name} was scaled back to 1`))
  assert.is(failed[0].scaled.scaledBack, true)
  for (const v of summary.volumes) assert.is(v.scaled?.scaledBack, true, `${v.claim}: its workload is back`)
  await assertNoneLeftAtZero(summary)
  await waitFor('the workloads back at their replicas', async () => (await workloadReadiness(admin, ns)).join() === READY, {timeoutMs: 90_000})
})

test('Ctrl-C during the scale-down: the workload is scaled back, the summary printed (interrupted), exit 3', async () => {
  // Slow pod lists keep the scale-down waiting for its pods to go, so the signal lands there.
  proxy.addRule({method: 'GET', pathPattern: new RegExp(`^/api/v1/namespaces/${ns}/pods$`), latencyMs: 1500})
  const child = startRestore()
  const atZero = async () => {
    for (const resource of ['statefulsets', 'deployments']) {
      const list = await admin.get<any>(`/apis/apps/v1/namespaces/${ns}/${resource}`)
      if (list.items.some((w: any) => w.spec.replicas === 0)) return true
    }
    return false
  }
  await waitFor('a workload scaled to 0', atZero, {timeoutMs: 90_000, intervalMs: 50})
  child.kill('SIGINT')
  const result = await child
  assert.is(result.exitCode, 3, `exit 3 (the scale-down was written), not a silent 130: ${result.stderr}`)
  const summary = JSON.parse(result.stdout)
  assert.is(summary.status, 'interrupted')
  assert.match(summary.error, /interrupted by SIGINT/)
  const scaled = summary.volumes.filter((v: any) => v.scaled)
  assert.ok(scaled.length >= 1, JSON.stringify(summary.volumes))
  for (const v of scaled) assert.is(v.scaled.scaledBack, true, `${v.claim}: ${v.error}`)
  for (const v of summary.volumes.filter((v: any) => v.action === 'failed')) assert.match(v.error, /interrupted by SIGINT/)
  assert.ok(summary.volumes.some((v: any) => v.action === 'failed'), 'the claims not copied are named')
  await assertNoneLeftAtZero(summary)
  await waitFor('the workloads back at their replicas', async () => (await workloadReadiness(admin, ns)).join() === READY, {timeoutMs: 90_000})
})

test('a phase that cannot go on (pods unreadable) stops the run with its summary; nothing was written, so exit 1', async () => {
  // Every object exists (skipped, no write); listing pods for the volume plan fails after its retries.
  proxy.addRule({method: 'GET', pathPattern: new RegExp(`^/api/v1/namespaces/${ns}/pods$`), status: 503})
  const result = await startRestore()
  const summary = JSON.parse(result.stdout)
  assert.is(result.exitCode, 1, `${summary.error}: ${JSON.stringify(summary.outcomes.filter((o: any) => o.action !== 'skip'))}`)
  assert.is(summary.status, 'failed')
  assert.match(summary.error, /^The restore stopped: .*unable to handle the request.*; the objects, volumes and workloads above are as listed: fix the cause, then restore again/)
  assert.ok(summary.outcomes.length > 0 && summary.outcomes.every((o: any) => o.action === 'skip'), 'every object was there already')
  assert.equal(summary.volumes, [])
  assert.ok(proxy.log.filter((e) => e.faulted).length > 1, 'the read was retried before the run stopped')
  await assertNoneLeftAtZero(summary)
  assert.is((await workloadReadiness(admin, ns)).join(), READY)
})

test('503s in the middle of the workloads phase: a create applied before its 503 is read back as created, one refused is failed and not retried (a 429 is); exit 3', async () => {
  await wipe(admin, ns, objects)
  // The StatefulSet's create reaches the apiserver and its answer is lost; the Deployment's never does.
  proxy.addRule({method: 'POST', pathPattern: new RegExp(`^/apis/apps/v1/namespaces/${ns}/statefulsets$`), status: 503, forward: true, times: 1})
  proxy.addRule({method: 'POST', pathPattern: new RegExp(`^/apis/apps/v1/namespaces/${ns}/deployments$`), status: 503, times: 1})
  // A throttled create was never handled: it is sent again.
  proxy.addRule({method: 'POST', pathPattern: new RegExp(`^/api/v1/namespaces/${ns}/configmaps$`), status: 429, times: 1, retryAfterSeconds: 1})
  const result = await startRestore()
  assert.is(result.exitCode, 3, result.stderr)
  const summary = JSON.parse(result.stdout)
  assert.is(summary.status, 'partial')
  const sts = outcomeOf(summary, 'StatefulSet', 'jenkins')
  assert.is(sts.action, 'create', JSON.stringify(sts))
  assert.match(sts.warning, /answer to its create was lost .*read back, it holds what was sent: created/)
  const deploy = outcomeOf(summary, 'Deployment', 'jenkins-agent-cache')
  assert.is(deploy.action, 'failed', JSON.stringify(deploy))
  assert.match(deploy.error, /read back: it was not created/)
  const skipped = summary.outcomes.filter((o: any) => o.action === 'skip').map((o: any) => `${o.resource}/${o.name}`).sort()
  assert.equal(skipped, objects.filter((o) => isHarness(o.entry)).map((o) => `${o.entry.resource}${o.entry.group ? `.${o.entry.group}` : ''}/${o.entry.name}`).sort(), 'only what the wipe left is reported as existing')
  const posts = (resource: string) => proxy.log.filter((e) => e.method === 'POST' && e.path.endsWith(`/${resource}`)).length
  assert.equal([posts('statefulsets'), posts('deployments')], [1, 1], 'a write the server may have applied is never sent twice')
  const configMaps = objects.filter((o) => o.entry.resource === 'configmaps' && !isHarness(o.entry)).length
  assert.is(posts('configmaps'), configMaps + 1, 'the throttled create was sent again')
  assert.is(outcomeOf(summary, 'ConfigMap', 'jenkins-casc').action, 'create')
  assert.ok(summary.outcomes.filter((o: any) => o.kind === 'ConfigMap').every((o: any) => o.action === 'create'), 'every ConfigMap created, the throttled one too')
  assert.equal(summary.volumes.map((v: any) => v.action), ['restored', 'restored'])
  assert.equal(summary.rollouts.map((r: any) => [r.kind, r.name, r.ready]), [['StatefulSet', 'jenkins', true]])
  await assertNoneLeftAtZero(summary)
  // Restoring again creates what failed and skips the rest.
  const again = await kubesnap(['restore', archive, '--kubeconfig', cluster.kubeconfigs.user, '--json', '--volumes', 'none'], {timeoutMs: 240_000})
  assert.is(again.code, 0, again.stderr + again.stdout)
  assert.is(outcomeOf(again.json, 'Deployment', 'jenkins-agent-cache').action, 'create')
  await waitFor('the workloads back at their replicas', async () => (await workloadReadiness(admin, ns)).join() === READY, {timeoutMs: 90_000})
})

function outcomeOf(summary: any, kind: string, name: string): any {
  return summary.outcomes.find((o: any) => o.kind === kind && o.name === name)
}

test.run()
