/**
 * `npm run demo`: the disaster-recovery drill, end to end, on the test cluster.
 *
 * Starts the cluster (or attaches to KUBESNAP_TEST_CLUSTER), loads the
 * softwarefactory fixture with its seed trees on the volumes, and then, as the
 * namespace-only user: snapshots it (objects, Secrets, volume data), deletes
 * everything in it as a disaster would (objects and claims; the kubesnap Role
 * and RoleBinding stay, so the user can restore), restores it, and checks that
 * every object is back and every volume file is byte-identical to its seed.
 * Prints each kubesnap command and how long each step took; exits 0 only if
 * everything matched.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {hashTree} from '../fixtures/seed.js'
import {openArchive} from '../src/archive/index.js'
import type {ObjectEntry} from '../src/archive/manifest.js'
import {KubeApi, collectionPath} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {attachTestCluster, startTestCluster, type TestCluster} from './cluster/index.js'
import {ensurePackages} from './cluster/packages.js'
import {SetupError, setupFailureMessage} from './cluster/setup-error.js'
import {kubesnap} from './helpers/cli.js'
import {FIXTURE_CLAIMS, isHarness, seedTree, volumeDir, wipe} from './helpers/restore.js'

const timings: Array<[string, number]> = []
const say = (line: string) => console.log(line)

/** Runs one step, prints its duration, and records it for the summary. */
async function step<T>(title: string, run: () => Promise<T>): Promise<T> {
  say(`\n▶ ${title}`)
  const started = Date.now()
  const result = await run()
  const seconds = (Date.now() - started) / 1000
  timings.push([title, seconds])
  say(`  done in ${seconds.toFixed(1)} s`)
  return result
}

/** Runs kubesnap as the user would type it (printed), with --json to read the outcome. */
async function run(cluster: TestCluster, args: string[]) {
  say(`  $ kubesnap ${[...args, '--kubeconfig', '$USER_KUBECONFIG'].join(' ')}`)
  const result = await kubesnap([...args, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 600_000})
  if (result.code !== 0) throw new Error(`kubesnap ${args[0]} exited ${result.code}: ${result.json?.error?.message ?? result.stderr}`)
  return result.json
}

const exists = (admin: KubeApi, path: string) => admin.get(path).then(() => true, (err) => (err?.statusCode === 404 ? false : Promise.reject(err)))

async function main(): Promise<boolean> {
  const stateFile = process.env.KUBESNAP_TEST_CLUSTER
  const cluster = await step(stateFile ? `Attach to the test cluster (${stateFile})` : 'Start the test cluster (etcd, kube-apiserver, controller-manager, scheduler, our node and storage)',
    async () => {
      // Start-up progress only: the node and storage would go on logging every pod and claim.
      let starting = true
      const started = stateFile ? await attachTestCluster(stateFile) : await startTestCluster({log: (line) => starting && say(`  ${line}`)})
      starting = false
      return started
    })
  const admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-demo-'))
  try {
    const seeds = new Map<string, Record<string, string>>()
    const ns = await step('Create the softwarefactory namespace with data on its volumes', async () => {
      // The harness writes the seed trees onto the claims; the check compares with the seeds written apart.
      const ns = await cluster.createNamespace({prefix: 'sf-demo', fixture: 'softwarefactory'})
      for (const [claim, key] of Object.entries(FIXTURE_CLAIMS.softwarefactory)) {
        seeds.set(claim, await seedTree(key))
        const onVolume = await hashTree(await volumeDir(admin, ns, claim))
        say(`  ${claim}: ${Object.keys(onVolume).length} files, directories and links on its volume`)
      }
      say(`  namespace ${ns}; user ${cluster.userName} may act only in it`)
      return ns
    })

    const snapshot = await step('Snapshot it as the namespace-only user', async () => {
      const json = await run(cluster, ['snapshot', '-n', ns, '-o', dir])
      say(`  ${json.objects} objects, ${json.volumes} volumes, ${json.bytes} bytes → ${json.path}`)
      return json
    })
    const reader = await openArchive(snapshot.path)
    const objects = reader.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')

    await step('Disaster: delete every object and claim in the namespace', async () => {
      const doomed = objects.filter((e) => !isHarness(e))
      await wipe(admin, ns, doomed, 180_000)
      say(`  ${doomed.length} objects deleted, claims and their volumes included`)
    })

    const restored = await step('Restore it as the namespace-only user (objects, volume data, then workloads)', async () => {
      const json = await run(cluster, ['restore', snapshot.path])
      say(`  objects: ${json.objects.create} created, ${json.objects.skip} kept, ${json.objects.failed} failed`)
      for (const v of json.volumes) say(`  volume ${v.claim}: ${v.bytes} bytes ${v.action} through ${v.target} in ${v.seconds} s (${v.verified})`)
      for (const w of json.rollouts) say(`  ${w.kind}/${w.name}: ${w.ready ? 'ready' : `not ready (${w.waiting})`}`)
      return json
    })

    return await step('Check: every object back, every volume file byte-identical to its seed', async () => {
      let ok = restored.status === 'complete'
      let missing = 0
      for (const e of objects) if (!(await exists(admin, `${collectionPath(e, ns)}/${e.name}`))) missing++
      say(`  objects: ${objects.length - missing}/${objects.length} present`)
      ok &&= missing === 0
      for (const [claim, seed] of seeds) {
        const now = await hashTree(await volumeDir(admin, ns, claim))
        const differ = [...new Set([...Object.keys(seed), ...Object.keys(now)])].filter((path) => seed[path] !== now[path])
        say(`  ${claim}: ${differ.length === 0 ? `all ${Object.keys(seed).length} entries identical (sha256, mode, links)` : `${differ.length} differ, e.g. ${differ.slice(0, 3).join(', ')}`}`)
        ok &&= differ.length === 0
      }
      await cluster.deleteNamespace(ns)
      return ok
    })
  } finally {
    admin.close()
    await rm(dir, {recursive: true, force: true})
    await cluster.stop()
  }
}

try {
  // Before anything starts: the Debian packages, installed or named.
  ensurePackages('demo')
} catch (err) {
  console.error(setupFailureMessage(err))
  process.exit(2)
}
let ok = false
let setupFailed = false
try {
  ok = await main()
} catch (err) {
  console.error(`\nDemo failed: ${(err as Error).message}`)
  setupFailed = err instanceof SetupError
}
say('\nSteps:')
for (const [title, seconds] of timings) say(`  ${seconds.toFixed(1).padStart(6)} s  ${title}`)
say(ok ? '\nDR drill passed: everything is back.' : '\nDR drill FAILED.')
process.exit(ok ? 0 : setupFailed ? 2 : 1)
