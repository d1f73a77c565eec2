/**
 * `kubesnap rbac` and `kubesnap check --for`: the per-mode rule sets (pure
 * tables), then against the real control plane: the printed YAML applies, the
 * Role it holds is enough (check exits 0, a snapshot works as the
 * namespace-only user bound to it), and it is minimal (without any one of its
 * rules, check exits 4 and prints exactly that rule as the one to add).
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {ApiException, RbacAuthorizationV1Api, type V1PolicyRule} from '@kubernetes/client-node'
import {execa} from 'execa'
import yaml from 'js-yaml'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {describeRule, rbacManifests, rbacYaml, roleYaml, rulesYaml} from '../src/rbac/manifests.js'
import {missingRules, needsOf, type AnsweredNeed} from '../src/rbac/needs.js'
import {allows, kubesnapRole, kubesnapRoleBinding, minimalRules, neededRows, ROLE_MODES, ROLE_VOLUMES, type RoleMode, type RoleVolumes} from '../src/rbac/role.js'
import type {ResourceType} from '../src/cluster/discovery.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap, type CliResult} from './helpers/cli.js'

// ── the rule sets (pure) ──────────────────────────────────────────────────

const rulesOf = (mode: RoleMode, volumes: RoleVolumes) => minimalRules(mode, volumes).rows.map((r) => describeRule(r.rule))

const RESTORE_COMMON = ['get *', 'create, patch *', 'list statefulsets.apps, deployments.apps']
const RESTORE_RBAC = ['escalate, bind roles.rbac.authorization.k8s.io', 'bind clusterroles.rbac.authorization.k8s.io']
const RULE_SETS: [RoleMode, RoleVolumes, string[]][] = [
  ['snapshot', 'tar', ['list *', 'get, create pods/exec', 'create, get, delete pods']],
  ['snapshot', 'csi', ['list *', 'create, get, delete volumesnapshots.snapshot.storage.k8s.io']],
  ['snapshot', 'none', ['list *']],
  // pods/exec and the scale subresources are granted by `get` and `create, patch` on `*`.
  ['restore', 'tar', [...RESTORE_COMMON.slice(0, 3), 'list, delete pods', ...RESTORE_COMMON.slice(3)]],
  ['restore', 'csi', RESTORE_COMMON],
  ['restore', 'none', RESTORE_COMMON],
  ['all', 'tar', ['list *', 'get *', 'create, patch *', 'delete pods', ...RESTORE_COMMON.slice(3)]],
  ['all', 'csi', ['list *', 'get *', 'create, patch *', 'delete volumesnapshots.snapshot.storage.k8s.io', ...RESTORE_COMMON.slice(3)]],
  ['all', 'none', ['list *', 'get *', 'create, patch *', ...RESTORE_COMMON.slice(3)]],
]

for (const [mode, volumes, expected] of RULE_SETS) {
  test(`rules for ${mode} with --volumes ${volumes}`, () => {
    assert.equal(rulesOf(mode, volumes), expected)
    // --restore-rbac adds escalate and bind for restore, nothing for snapshot.
    assert.equal(minimalRules(mode, volumes, {rbac: true}).rows.map((r) => describeRule(r.rule)), mode === 'snapshot' ? expected : [...expected, ...RESTORE_RBAC])
  })
}

/** Every verb × group × resource a row names. */
const targetsOf = (rule: V1PolicyRule) => rule.verbs.flatMap((verb) => (rule.apiGroups ?? []).flatMap((group) => (rule.resources ?? []).map((resource) => ({verb, group, resource}))))

for (const mode of ROLE_MODES) {
  for (const volumes of ROLE_VOLUMES) {
    test(`the ${mode}/${volumes} rules grant every need of the mode, each rule has a reason, and none is redundant`, () => {
      const {rows} = minimalRules(mode, volumes)
      const rules = rows.map((r) => r.rule)
      for (const need of neededRows(mode, volumes).flatMap((r) => targetsOf(r.rule))) {
        assert.ok(rules.some((rule) => allows(rule, need.verb, need.group, need.resource)), `${need.verb} ${need.resource}.${need.group} not granted`)
      }
      for (const row of rows) assert.ok(row.why.length > 20, `rule ${describeRule(row.rule)} has no reason`)
      // No rule is granted entirely by the others.
      rows.forEach((row, i) => {
        const others = rules.filter((_, j) => j !== i)
        assert.not.ok(targetsOf(row.rule).every((t) => others.some((o) => allows(o, t.verb, t.group, t.resource === '*' ? 'anything' : t.resource))), `${describeRule(row.rule)} is redundant`)
      })
    })
  }
}

test('--volumes none needs no pods, exec or VolumeSnapshot rights in any mode', () => {
  for (const mode of ROLE_MODES) {
    for (const row of neededRows(mode, 'none')) {
      assert.not.ok(row.rule.resources?.some((r) => r.startsWith('pods') || r === 'volumesnapshots'), `${mode}: ${describeRule(row.rule)}`)
    }
  }
})

test('all is the union of snapshot and restore', () => {
  for (const volumes of ROLE_VOLUMES) {
    const union = [...neededRows('snapshot', volumes), ...neededRows('restore', volumes)]
    assert.equal(new Set(neededRows('all', volumes)), new Set(union))
  }
})

test('kubesnapRole(namespace) is the all Role with tar volumes, named kubesnap', () => {
  const role = kubesnapRole('shop')
  assert.equal(role, kubesnapRole('shop', {mode: 'all', volumes: 'tar'}))
  assert.is(role.metadata?.name, 'kubesnap')
  assert.is(role.metadata?.namespace, 'shop')
  assert.is(kubesnapRole('shop', {mode: 'snapshot'}).metadata?.name, 'kubesnap-snapshot')
})

test('allows() matches as the RBAC authorizer does', () => {
  const star = {apiGroups: ['*'], resources: ['*'], verbs: ['get']}
  assert.ok(allows(star, 'get', '', 'pods/exec'), '`*` resources include subresources')
  assert.not.ok(allows(star, 'list', '', 'pods'))
  assert.ok(allows({apiGroups: [''], resources: ['pods/*'], verbs: ['*']}, 'create', '', 'pods/exec'))
  assert.not.ok(allows({apiGroups: [''], resources: ['pods'], verbs: ['create']}, 'create', '', 'pods/exec'), 'pods does not include pods/exec')
  assert.not.ok(allows({apiGroups: ['apps'], resources: ['*'], verbs: ['get']}, 'get', '', 'pods'))
})

test('the YAML is three documents equal to the --json objects, with a comment above each rule', () => {
  const options = {mode: 'all' as const, volumes: 'tar' as const, serviceAccount: 'backup'}
  const text = rbacYaml('shop', options)
  const docs = yaml.loadAll(text)
  const {serviceAccount, role, roleBinding} = rbacManifests('shop', options)
  assert.equal(docs, [serviceAccount, role, roleBinding])
  assert.equal(roleBinding.subjects, [{kind: 'ServiceAccount', name: 'backup', namespace: 'shop'}])
  for (const row of minimalRules('all', 'tar').rows) {
    assert.ok(text.includes(`# ${row.why}\n${rulesYaml([row.rule])}`), `no comment above ${describeRule(row.rule)}`)
  }
  assert.match(text, /#   get, create pods\/exec: volume data streams over exec/)
})

/** A server with the core types, apps, a CRD and one type that cannot be created. */
const TYPES: ResourceType[] = [
  {group: '', version: 'v1', apiVersion: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, verbs: ['create', 'get', 'list', 'patch'], shortNames: []},
  {group: '', version: 'v1', apiVersion: 'v1', resource: 'pods', kind: 'Pod', namespaced: true, verbs: ['create', 'delete', 'get', 'list', 'patch'], shortNames: []},
  {group: '', version: 'v1', apiVersion: 'v1', resource: 'events', kind: 'Event', namespaced: true, verbs: ['create', 'get', 'list', 'patch'], shortNames: []},
  {group: '', version: 'v1', apiVersion: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, verbs: ['create', 'get', 'list'], shortNames: []},
  {group: 'apps', version: 'v1', apiVersion: 'apps/v1', resource: 'statefulsets', kind: 'StatefulSet', namespaced: true, verbs: ['create', 'get', 'list', 'patch'], shortNames: []},
  {group: 'example.com', version: 'v1', apiVersion: 'example.com/v1', resource: 'widgets', kind: 'Widget', namespaced: true, verbs: ['create', 'get', 'list', 'patch'], shortNames: []},
  {group: 'authorization.k8s.io', version: 'v1', apiVersion: 'authorization.k8s.io/v1', resource: 'localsubjectaccessreviews', kind: 'LocalSubjectAccessReview', namespaced: true, verbs: ['create'], shortNames: []},
]

test('needsOf: wildcard rules become the concrete types discovery shows', () => {
  const needs = needsOf(neededRows('all', 'none', {rbac: true}), TYPES, 'shop')
  const names = (verb: string) => needs.filter((n) => n.verb === verb).map((n) => `${n.resource}${n.subresource ? '/' + n.subresource : ''}${n.group ? '.' + n.group : ''}`)
  assert.equal(names('list'), ['secrets', 'pods', 'events', 'statefulsets.apps', 'widgets.example.com', 'deployments.apps'])
  // Restore's kinds: the built-in ones it restores plus custom types; not Events, not access reviews.
  assert.equal(names('create'), ['secrets', 'pods', 'statefulsets.apps', 'widgets.example.com'])
  assert.equal(names('bind'), ['roles.rbac.authorization.k8s.io', 'clusterroles.rbac.authorization.k8s.io'])
  assert.ok(needs.every((n) => n.namespace === 'shop'))
  const exec = needsOf(neededRows('snapshot', 'tar'), TYPES, 'shop').filter((n) => n.subresource === 'exec')
  assert.equal(exec.map((n) => n.verb), ['get', 'create'])
})

test('missingRules: a wildcard denial asks for the wildcard rule, and named rules it covers are not repeated', () => {
  const rows = neededRows('all', 'tar')
  const needs = needsOf(rows, TYPES, 'shop')
  const answer = (deny: (n: typeof needs[number]) => boolean): AnsweredNeed[] => needs.map((n) => ({...n, allowed: !deny(n)}))
  assert.equal(missingRules(rows, answer(() => true)).map((m) => describeRule(m.rule)), ['list *', 'get *', 'create, patch *', 'delete pods'])
  const withRbac = neededRows('all', 'tar', {rbac: true})
  assert.equal(missingRules(withRbac, needsOf(withRbac, TYPES, 'shop').map((n) => ({...n, allowed: false}))).map((m) => describeRule(m.rule)).slice(4), RESTORE_RBAC)
  assert.equal(missingRules(rows, answer((n) => n.verb === 'list' && n.resource === 'widgets')).map((m) => m.rule), [{apiGroups: ['*'], resources: ['*'], verbs: ['list']}])
  assert.equal(missingRules(rows, answer((n) => n.subresource === 'exec' && n.verb === 'create')).map((m) => m.rule), [{apiGroups: [''], resources: ['pods/exec'], verbs: ['create']}])
  assert.equal(missingRules(rows, answer(() => false)), [])
})

test('roleYaml lists the covered needs as comments', () => {
  const {rows, covered} = minimalRules('restore', 'tar')
  const text = roleYaml(kubesnapRole('shop', {mode: 'restore'}), rows, covered)
  assert.match(text, /# Also needed, and granted by the wildcard rules below/)
  assert.match(text, /#   get, patch statefulsets\.apps\/scale, deployments\.apps\/scale: restore scales/)
})

// ── against the control plane ─────────────────────────────────────────────

let cluster: TestCluster
let rbac: RbacAuthorizationV1Api
const namespaces: string[] = []
let outDir: string

test.before(async () => {
  cluster = await sharedCluster()
  rbac = cluster.admin().makeApiClient(RbacAuthorizationV1Api)
  outDir = await mkdtemp(join(tmpdir(), 'kubesnap-rbac-'))
})

test.after(async () => {
  for (const ns of namespaces) await cluster.deleteNamespace(ns)
  await rm(outDir, {recursive: true, force: true})
})

/** Runs kubesnap, again after a pause while the exit code is not the expected one (RBAC changes reach the authorizer's cache within moments). */
async function until(expected: number, args: string[]): Promise<CliResult> {
  let r = await kubesnap(args)
  for (let i = 0; i < 10 && r.code !== expected; i++) {
    await sleep(300)
    r = await kubesnap(args)
  }
  return r
}

/** Applies `kubesnap rbac` output with kubectl as the admin; returns the printed Role's rules. */
async function applyRbac(ns: string, extra: string[] = []): Promise<V1PolicyRule[]> {
  const printed = await kubesnap(['rbac', '-n', ns, ...extra])
  assert.is(printed.code, 0, printed.stderr)
  const applied = await execa('kubectl', ['--kubeconfig', cluster.kubeconfigs.admin, 'apply', '-f', '-'], {input: printed.stdout, reject: false})
  assert.is(applied.exitCode, 0, applied.stderr)
  const role = (yaml.loadAll(printed.stdout) as any[]).find((d) => d.kind === 'Role')
  return role.rules
}

/** Binds a Role of the namespace to the namespace-only user. */
async function bindUser(ns: string, role = 'kubesnap'): Promise<void> {
  const body = kubesnapRoleBinding(ns, {user: cluster.userName}, {name: `${role}-user`})
  body.roleRef.name = role
  await rbac.createNamespacedRoleBinding({namespace: ns, body})
}

/** Replaces the rules of a Role. */
async function setRules(ns: string, name: string, rules: V1PolicyRule[]): Promise<void> {
  const role = await rbac.readNamespacedRole({name, namespace: ns})
  await rbac.replaceNamespacedRole({name, namespace: ns, body: {...role, rules}})
}

test('rbac output applies with kubectl as the admin, and the ServiceAccount, Role and RoleBinding exist', async () => {
  const ns = await cluster.createNamespace({prefix: 'rbac', bindUser: false})
  namespaces.push(ns)
  const rules = await applyRbac(ns)
  assert.equal(rules, kubesnapRole(ns).rules)
  const role = await rbac.readNamespacedRole({name: 'kubesnap', namespace: ns})
  assert.equal(role.rules?.map((r) => ({apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs})), rules)
  const binding = await rbac.readNamespacedRoleBinding({name: 'kubesnap', namespace: ns})
  assert.equal(binding.subjects?.map((s) => [s.kind, s.name]), [['ServiceAccount', 'kubesnap']])
  // Applying again changes nothing (what a runbook rerun does).
  const again = await kubesnap(['rbac', '-n', ns])
  const reapplied = await execa('kubectl', ['--kubeconfig', cluster.kubeconfigs.admin, 'apply', '-f', '-'], {input: again.stdout})
  assert.match(reapplied.stdout, /role\.rbac\.authorization\.k8s\.io\/kubesnap unchanged/)
})

test('check --for all: 4 and the missing rules without the Role, 0 once it is bound to the user', async () => {
  const ns = namespaces[0]
  const before = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all', '--json'])
  assert.is(before.code, 4, before.stderr)
  assert.equal(before.json.missing, minimalRules('all', 'tar').rows.map((r) => r.rule))
  await bindUser(ns)
  const after = await until(0, ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all', '--json'])
  assert.is(after.code, 0, after.stdout + after.stderr)
  assert.equal(after.json.missing, [])
  assert.equal(after.json.denied, [])
  assert.ok(after.json.checked > 50, `only ${after.json.checked} questions`)
  const text = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all'])
  assert.is(text.code, 0)
  assert.match(text.stdout, /^Rights for snapshot and restore \(volumes tar\): all \d+ granted\.$/m)
})

test('without check --for, check is unchanged: exit 0 even when rights are missing', async () => {
  const ns = await cluster.createNamespace({prefix: 'rbac-none', bindUser: false})
  namespaces.push(ns)
  const r = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.missing, undefined)
  assert.is(r.json.for, undefined)
})

test('every rule of the printed Role is needed: without it check --for all exits 4 and prints exactly that rule', async () => {
  const ns = namespaces[0]
  const rules = kubesnapRole(ns).rules!
  try {
    for (const [i, rule] of rules.entries()) {
      await setRules(ns, 'kubesnap', rules.filter((_, j) => j !== i))
      const args = ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all']
      const r = await until(4, [...args, '--json'])
      assert.is(r.code, 4, `without ${describeRule(rule)}: exit ${r.code}`)
      assert.equal(r.json.missing, [rule], `without ${describeRule(rule)}`)
      const text = await kubesnap(args)
      assert.is(text.code, 4)
      assert.ok(text.stdout.includes(rulesYaml([rule])), `the report names ${describeRule(rule)}:\n${text.stdout}`)
      assert.match(text.stdout, /refused:/)
    }
  } finally {
    await setRules(ns, 'kubesnap', rules)
  }
})

test('each mode\'s Role passes check for that mode and fails it for all', async () => {
  const ns = await cluster.createNamespace({prefix: 'rbac-modes', bindUser: false})
  namespaces.push(ns)
  for (const mode of ['snapshot', 'restore'] as const) {
    for (const volumes of ROLE_VOLUMES) {
      const role = kubesnapRole(ns, {mode, volumes})
      try {
        await rbac.createNamespacedRole({namespace: ns, body: role})
        await bindUser(ns, role.metadata!.name)
      } catch (err) {
        if (!(err instanceof ApiException && err.code === 409)) throw err
        await setRules(ns, role.metadata!.name!, role.rules!)
      }
      const ok = await until(0, ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', mode, '--volumes', volumes, '--json'])
      assert.is(ok.code, 0, `${mode}/${volumes}: ${JSON.stringify(ok.json?.missing)}`)
      const all = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all', '--volumes', volumes, '--json'])
      assert.is(all.code, 4, `${mode}/${volumes} is not enough for all`)
      // Only one mode's Role at a time.
      await setRules(ns, role.metadata!.name!, [])
    }
  }
})

test('snapshot of the jenkins fixture works as the user bound to the printed Role, and with the snapshot-only Role', async () => {
  const ns = await cluster.createNamespace({prefix: 'rbac-jenkins', fixture: 'jenkins', bindUser: false})
  namespaces.push(ns)
  await applyRbac(ns)
  await bindUser(ns)
  await until(0, ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all'])
  const r = await kubesnap(['snapshot', '-n', ns, '-o', outDir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
  assert.is(r.code, 0, r.stdout + r.stderr)

  await applyRbac(ns, ['--for', 'snapshot'])
  await bindUser(ns, 'kubesnap-snapshot')
  await setRules(ns, 'kubesnap', [])
  await until(4, ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--for', 'all'])
  const least = await kubesnap(['snapshot', '-n', ns, '-o', outDir, '--kubeconfig', cluster.kubeconfigs.user, '--json'], {timeoutMs: 300_000})
  assert.is(least.code, 0, least.stdout + least.stderr)
  assert.is(least.json.number, 2)
  assert.ok(least.json.volumes >= 1, `volumes: ${JSON.stringify(least.json)}`)
})

test.run()
