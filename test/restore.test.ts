import {mkdtempSync, readdirSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {archivedObjects, assertRestored, isHarness, versions, wipe} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
})

async function snapshot(ns: string, who: 'admin' | 'user' = 'user'): Promise<{path: string; dir: string}> {
  const dir = mkdtempSync(join(tmpdir(), 'kubesnap-restore-'))
  const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs[who], '--json'])
  assert.is(r.code, 0, r.stderr)
  return {path: r.json.path, dir}
}

for (const fixture of ['jenkins', 'softwarefactory'] as const) {
  test(`${fixture}: snapshot, wipe the namespace, restore as the namespace-only user: every object is back`, async () => {
    const ns = await cluster.createNamespace({prefix: `${fixture.slice(0, 6)}-rt`, fixture})
    const {path} = await snapshot(ns)
    const objects = await archivedObjects(path)
    await wipe(admin, ns, objects)
    const r = await kubesnap(['restore', path, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(r.code, 0, r.stderr + r.stdout)
    assert.is(r.json.status, 'complete')
    assert.is(r.json.objects.failed, 0)
    assert.is(r.json.objects.create + r.json.objects.skip, objects.length)
    // Types are spelled as kubectl does: `resource.group`, and the core group without a dot.
    const types = new Set(r.json.outcomes.map((o: any) => o.resource))
    assert.ok(types.has('secrets') && types.has('configmaps') && types.has('statefulsets.apps'), [...types].join(' '))
    await assertRestored(admin, objects, ns, ns)
    await cluster.waitForWorkloads(ns)
    await cluster.deleteNamespace(ns, {wait: true})
  })
}

/** The nodePort of the softwarefactory gateway's http port. */
const gatewayHttpPort = (service: any): number | undefined => service.spec.ports.find((p: any) => p.port === 80)?.nodePort

test('--to-namespace restores into another namespace and moves ServiceAccount subjects with it', async () => {
  const source = await cluster.createNamespace({prefix: 'sf-src', fixture: 'softwarefactory'})
  const {path} = await snapshot(source)
  const objects = await archivedObjects(path)
  // The fixture pins a nodePort (its own per namespace, see withOwnNodePorts): the source must be gone for the copy to get it.
  const chosen = gatewayHttpPort(objects.find(({entry}) => entry.resource === 'services' && entry.name === 'gateway')!.object)
  await cluster.deleteNamespace(source, {wait: true})
  const target = await cluster.createNamespace({prefix: 'sf-dst'})
  const r = await kubesnap(['restore', path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.namespace, target)
  assert.is(r.json.sourceNamespace, source)
  await assertRestored(admin, objects.filter(({entry}) => !isHarness(entry)), source, target)
  const binding = await admin.get<any>(`/apis/rbac.authorization.k8s.io/v1/namespaces/${target}/rolebindings/sf-operator`)
  // A subject without a namespace means the binding's own, which is now the target.
  assert.equal(binding.subjects.map((s: any) => `${s.kind}/${s.namespace ?? target}/${s.name}`), [`ServiceAccount/${target}/zuul`])
  const gateway = await admin.get<any>(`/api/v1/namespaces/${target}/services/gateway`)
  assert.is(gatewayHttpPort(gateway), chosen, 'the nodePort the user chose is kept')
  await cluster.deleteNamespace(target)
})

test('a copy restored beside its original gets server-assigned node ports, with a warning', async () => {
  const source = await cluster.createNamespace({prefix: 'sf-live', fixture: 'softwarefactory'})
  const {path} = await snapshot(source)
  const target = await cluster.createNamespace({prefix: 'sf-drill'})
  const r = await kubesnap(['restore', path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.ok(r.json.warnings.some((w: string) => /^Service\/gateway: its node ports are taken/.test(w)), r.json.warnings.join('\n'))
  const copy = await admin.get<any>(`/api/v1/namespaces/${target}/services/gateway`)
  const port = gatewayHttpPort(copy)
  const original = gatewayHttpPort(await admin.get<any>(`/api/v1/namespaces/${source}/services/gateway`))
  assert.ok(port && port !== original, `assigned ${port}, the original holds ${original}`)
  await cluster.deleteNamespace(target)
  await cluster.deleteNamespace(source, {wait: true})
})

test('a damaged archive is refused before any write, naming the entry', async () => {
  const ns = await cluster.createNamespace({prefix: 'damaged', fixture: 'jenkins'})
  const {path} = await snapshot(ns)
  const objects = await archivedObjects(path)
  await wipe(admin, ns, objects.filter(({entry}) => entry.resource === 'configmaps'))
  const secret = objects.find(({entry}) => entry.resource === 'secrets')!.entry
  const fh = await open(path, 'r+')
  await fh.write(Buffer.from('#'), 0, 1, secret.offset + 5)
  await fh.close()
  const before = await versions(admin, ns)
  const r = await kubesnap(['restore', path, '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 1)
  assert.match(r.stderr, new RegExp(`damaged at ${secret.path.replace(/[.]/g, '\\.')} \\(sha256 mismatch\\); nothing was restored`))
  assert.equal(await versions(admin, ns), before, 'the cluster is unchanged')
  await cluster.deleteNamespace(ns)
})

test('unmet preconditions are reported all at once and nothing is written', async () => {
  const ns = await cluster.createNamespace({prefix: 'pre', fixture: 'jenkins'})
  const {path} = await snapshot(ns)
  // A namespace where the user may read but not create.
  const target = await cluster.createNamespace({prefix: 'readonly', bindUser: false})
  await admin.post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${target}/roles`, {metadata: {name: 'read'}, rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list']}]})
  await admin.post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${target}/rolebindings`, {
    metadata: {name: 'read'}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read'},
    subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: cluster.userName}],
  })
  const before = await versions(admin, target)
  const r = await kubesnap(['restore', path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 1)
  assert.match(r.stderr, /Restore cannot start; nothing was changed:/)
  for (const kind of ['secrets', 'configmaps', 'statefulsets.apps', 'persistentvolumeclaims']) {
    assert.match(r.stderr, new RegExp(`may not create ${kind.replace('.', '\\.')} in ${target}`))
  }
  assert.equal(await versions(admin, target), before)
  const missing = await kubesnap(['restore', path, '--to-namespace', 'no-such-ns-here', '--kubeconfig', cluster.kubeconfigs.admin])
  assert.is(missing.code, 1)
  assert.match(missing.stderr, /The namespace no-such-ns-here does not exist: create it, or pass --create-namespace\./)
  await cluster.deleteNamespace(ns)
  await cluster.deleteNamespace(target)
})

test('--dry-run writes nothing and shows what --existing update would change', async () => {
  const ns = await cluster.createNamespace({prefix: 'dry', fixture: 'jenkins'})
  const {path} = await snapshot(ns)
  const objects = await archivedObjects(path)
  await admin.patch(`/api/v1/namespaces/${ns}/configmaps/jenkins-backup`, {data: {schedule: 'never'}}, 'application/merge-patch+json')
  await admin.patch(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`, {stringData: {'jenkins-admin-password': 'changed-by-hand'}}, 'application/merge-patch+json')
  await wipe(admin, ns, objects.filter(({entry}) => entry.name === 'jenkins-casc'))
  const before = await versions(admin, ns)
  const r = await kubesnap(['restore', path, '--existing', 'update', '--dry-run', '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /create\s+ConfigMap\/jenkins-casc/)
  assert.match(r.stdout, /update\s+ConfigMap\/jenkins-backup\n\s+data\.schedule: "never" → /)
  assert.match(r.stdout, /update\s+Secret\/jenkins-admin\n\s+data\.jenkins-admin-password: changed \(value hidden\)/)
  assert.not.match(r.stdout + r.stderr, /changed-by-hand|Y2hhbmdlZC1ieS1oYW5k/, 'no Secret value is printed')
  // `restore --dry-run > plan.txt` holds the plan alone: progress goes to stderr.
  for (const line of r.stdout.trimEnd().split('\n')) assert.match(line, /^((create|update|skip|conflict|failed|volume|dump|restart) +\S| {11}\S|Dry run: would restore )/)
  assert.match(r.stdout, /\nDry run: would restore into [^\n]+\.\n$/)
  assert.match(r.stderr, /^\[COMPLETED\] \[\d\d:\d\d:\d\d\] Verified /m)
  const quiet = await kubesnap(['restore', path, '--existing', 'update', '--dry-run', '--quiet', '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(quiet.code, 0, quiet.stderr)
  assert.is(quiet.stdout, r.stdout, 'the plan is the result, --quiet or not')
  assert.not.match(quiet.stderr, /\[(STARTED|COMPLETED)\]/)
  assert.equal(await versions(admin, ns), before, 'no resourceVersion moved and nothing was created')
  await cluster.deleteNamespace(ns)
})

test('--existing update puts archived values back; fail reports conflicts (exit 1 when nothing was written); --only-secrets touches only Secrets', async () => {
  const ns = await cluster.createNamespace({prefix: 'exist', fixture: 'jenkins'})
  const {path} = await snapshot(ns)
  const original = await admin.get<any>(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`)
  const originalBackup = await admin.get<any>(`/api/v1/namespaces/${ns}/configmaps/jenkins-backup`)
  await admin.patch(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`, {stringData: {'jenkins-admin-password': 'oops'}}, 'application/merge-patch+json')
  await admin.patch(`/api/v1/namespaces/${ns}/configmaps/jenkins-backup`, {data: {schedule: 'never'}}, 'application/merge-patch+json')

  const conflict = await kubesnap(['restore', path, '--existing', 'fail', '--only-secrets', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  // Every write was refused: nothing changed, so exit 1 (the README's exit codes), with the outcomes all the same.
  assert.is(conflict.code, 1, conflict.stderr + conflict.stdout)
  assert.is(conflict.json.objects.conflict, 1)
  assert.is(conflict.json.status, 'failed')

  const secrets = await kubesnap(['restore', path, '--existing', 'update', '--only-secrets', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(secrets.code, 0, secrets.stderr)
  assert.equal(secrets.json.outcomes.map((o: any) => `${o.action} ${o.kind}/${o.name}`), ['update Secret/jenkins-admin'])
  assert.equal((await admin.get<any>(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`)).data, original.data)
  assert.is((await admin.get<any>(`/api/v1/namespaces/${ns}/configmaps/jenkins-backup`)).data.schedule, 'never', 'ConfigMaps untouched')

  const all = await kubesnap(['restore', path, '--existing', 'update', '--include-kinds', 'cm', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(all.code, 0, all.stderr)
  assert.equal((await admin.get<any>(`/api/v1/namespaces/${ns}/configmaps/jenkins-backup`)).data, originalBackup.data)
  await cluster.deleteNamespace(ns)
})

test('restore picks the archive with --latest and --number from -o', async () => {
  const ns = await cluster.createNamespace({prefix: 'pick', fixture: 'jenkins'})
  const {dir} = await snapshot(ns)
  await snapshot(ns).then(() => undefined)
  const again = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(again.json.number, 2)
  const latest = await kubesnap(['restore', '--latest', '-n', ns, '-o', dir, '--dry-run', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(latest.code, 0, latest.stderr)
  assert.match(latest.json.archive, /-000002-/)
  const first = await kubesnap(['restore', '--number', '1', '-n', ns, '-o', dir, '--dry-run', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.match(first.json.archive, /-000001-/)
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tar')).length, 2)
  await cluster.deleteNamespace(ns)
})

test.after(() => admin.close())

test.run()
