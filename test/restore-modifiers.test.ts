/**
 * restore --resource-modifiers against the real control plane: Velero-format
 * rules change what comes back (a Deployment's image registry through a JSON
 * patch guarded by a test operation, a ConfigMap value through a merge patch,
 * a Service's label), in a dry run and for real, from a flag or a plan; a rule
 * that would turn an object into another, or a broken file, writes nothing.
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {archivedObjects, assertRestored, isHarness, versions} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi
let source: string
let archive: string
let dir: string

/** Rules for the shop fixture, as an operator moving it to a DR site would write them. */
const modifiers = (namespace: string) => `version: v1
resourceModifierRules:
- conditions:
    groupResource: deployments.apps
    resourceNameRegex: "^web$"
    namespaces: [${namespace}]
  patches:
  - {operation: test, path: /spec/template/spec/containers/0/image, value: "busybox:1.36"}
  - {operation: replace, path: /spec/template/spec/containers/0/image, value: "registry.dr.example/library/busybox:1.36"}
# The metrics sidecar is not busybox: its test fails and the rule is skipped for it.
- conditions: {groupResource: deployments.apps}
  patches:
  - {operation: test, path: /spec/template/spec/containers/1/image, value: "busybox:1.36"}
  - {operation: replace, path: /spec/template/spec/containers/1/image, value: "registry.dr.example/library/busybox:1.36"}
- conditions: {groupResource: configmaps, resourceNameRegex: "^web-config$"}
  mergePatches:
  - patchData: |
      data:
        DATABASE_HOST: db.dr.example
- conditions:
    groupResource: services
    labelSelector: {matchLabels: {app.kubernetes.io/name: web}}
  patches:
  - {operation: add, path: /metadata/labels/site, value: dr}
`

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  source = await cluster.createNamespace({prefix: 'shop-mod', fixture: 'shop'})
  dir = mkdtempSync(join(tmpdir(), 'kubesnap-modifiers-'))
  const r = await kubesnap(['snapshot', '-n', source, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr)
  archive = r.json.path
  writeFileSync(join(dir, 'modifiers.yaml'), modifiers(source))
})

test.after(async () => {
  await cluster.deleteNamespace(source)
})

test('--dry-run with a plan\'s restore.resourceModifiers shows the patched objects against the live ones, and writes nothing', async () => {
  // The plan's path is relative to the plan's directory, whatever the working directory.
  writeFileSync(join(dir, 'kubesnap.yaml'), `version: 1\nnamespace: ${source}\nrestore:\n  resourceModifiers: modifiers.yaml\n`)
  const before = await versions(admin, source)
  const r = await kubesnap(['restore', archive, '--existing', 'update', '--dry-run', '--volumes', 'none', '--config', join(dir, 'kubesnap.yaml'), '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 0, r.stderr + r.stdout)
  // Lists are compared whole (and shown shortened): the containers line says they change.
  assert.match(r.stdout, /update\s+Deployment\/web \(changed by resourceModifierRules\[0\]\)\n\s+spec\.template\.spec\.containers: /)
  assert.match(r.stdout, /update\s+ConfigMap\/web-config \(changed by resourceModifierRules\[2\]\)\n\s+data\.DATABASE_HOST: "db" → "db\.dr\.example"/)
  assert.match(r.stdout, /update\s+Service\/web \(changed by resourceModifierRules\[3\]\)\n\s+metadata\.labels\.site: \(unset\) → "dr"/)
  assert.match(r.stdout, /update\s+ConfigMap\/db-config\n/, 'an object no rule matches is not marked')
  assert.equal(await versions(admin, source), before, 'nothing was written')
})

test('restore into another namespace as the namespace-only user: the user sees the patched image, value and label; everything else as archived', async () => {
  const target = await cluster.createNamespace({prefix: 'shop-moddr'})
  const r = await kubesnap(['restore', archive, '--to-namespace', target, '--resource-modifiers', join(dir, 'modifiers.yaml'), '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.status, 'complete')
  const modified = r.json.outcomes.filter((o: any) => o.modifiedBy).map((o: any) => `${o.action} ${o.kind}/${o.name} ${o.modifiedBy.join(',')}`).sort()
  assert.equal(modified, ['create ConfigMap/web-config 2', 'create Deployment/web 0', 'create Service/web 3'])
  assert.equal(r.json.warnings.filter((w: string) => /resourceModifierRules/.test(w)), ['resourceModifierRules[1] in ' + join(dir, 'modifiers.yaml') + ` changes none of the objects to restore; check the conditions (groupResource is spelt resource.group as in deployments.apps, namespaces are the archive's: ${source}).`])

  // What the user would check with kubectl get -o yaml.
  const web = await admin.get<any>(`/apis/apps/v1/namespaces/${target}/deployments/web`)
  assert.equal(web.spec.template.spec.containers.map((c: any) => c.image), ['registry.dr.example/library/busybox:1.36', 'gcr.io/distroless/static:nonroot'])
  const config = await admin.get<any>(`/api/v1/namespaces/${target}/configmaps/web-config`)
  assert.is(config.data.DATABASE_HOST, 'db.dr.example')
  assert.is(config.data.UPLOAD_DIR, '/srv/uploads', 'a merge patch keeps the keys it does not name')
  const service = await admin.get<any>(`/api/v1/namespaces/${target}/services/web`)
  assert.is(service.metadata.labels.site, 'dr')
  assert.is(service.metadata.labels['app.kubernetes.io/name'], 'web')
  const untouched = (await archivedObjects(archive)).filter(({entry}) => !isHarness(entry) && !['web', 'web-config'].includes(entry.name))
  await assertRestored(admin, untouched, source, target)
  await cluster.waitForWorkloads(target)
  await cluster.deleteNamespace(target)
})

test('a rule that would rename an object, or cannot be applied, refuses the restore before any write (exit 1), naming rule and object', async () => {
  const target = await cluster.createNamespace({prefix: 'shop-modno'})
  const file = join(dir, 'rename.yaml')
  writeFileSync(file, `version: v1
resourceModifierRules:
- conditions: {groupResource: secrets, resourceNameRegex: "^db-credentials$"}
  patches: [{operation: replace, path: /metadata/name, value: jenkins-admin}]
- conditions: {groupResource: configmaps, resourceNameRegex: "^db-config$"}
  patches: [{operation: remove, path: /data/NO_SUCH_KEY}]
`)
  const before = await versions(admin, target)
  const r = await kubesnap(['restore', archive, '--to-namespace', target, '--resource-modifiers', file, '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 1, r.stderr + r.stdout)
  assert.match(r.stderr, /Restore cannot start; nothing was changed:/)
  assert.match(r.stderr, /Secret db-credentials: resourceModifierRules\[0\] changes which object this is \(the patched object is Secret jenkins-admin\); a modifier may change an object's content, not its kind, apiVersion, name or namespace/)
  assert.match(r.stderr, /ConfigMap db-config: resourceModifierRules\[1\] patches\[0\] \(remove \/data\/NO_SUCH_KEY\) cannot be applied: the path does not exist in this object/)
  assert.equal(await versions(admin, target), before, 'nothing was written')
  await cluster.deleteNamespace(target)
})

test('a broken modifiers file is a usage error (exit 2) found before any cluster call', async () => {
  const file = join(dir, 'broken.yaml')
  writeFileSync(file, 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  strategicPatches: [{patchData: "{}"}]\n')
  // A kubeconfig that does not exist: the file's problem is reported first.
  const r = await kubesnap(['restore', archive, '--resource-modifiers', file, '--kubeconfig', join(dir, 'no-such-kubeconfig')])
  assert.is(r.code, 2, r.stderr)
  assert.match(r.stderr, /broken\.yaml:4:21: resourceModifierRules\[0\] uses strategicPatches, which kubesnap does not apply/)
  const missing = await kubesnap(['restore', archive, '--resource-modifiers', join(dir, 'absent.yaml'), '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(missing.code, 2)
  assert.match(missing.stderr, /The resource modifiers file .*absent\.yaml does not exist; give the path of a Velero resource-modifiers YAML file with --resource-modifiers\./)
})

test.run()
