import {createServer, type Server} from 'node:net'
import {writeFileSync, readFileSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'

let cluster: TestCluster
let ns: string
let other: string

test.before(async () => {
  cluster = await sharedCluster()
  ns = await cluster.createNamespace({prefix: 'check'})
  other = await cluster.createNamespace({prefix: 'check-other', bindUser: false})
})

test('check --json as admin lists the namespaced types and who we are', async () => {
  const r = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.admin, '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.namespace, ns)
  assert.is(r.json.serverVersion, 'v1.20.2')
  assert.is(r.json.namespaceExists, true)
  // 1.20 has no SelfSubjectReview: kubesnap must say so rather than guess.
  assert.is(r.json.identity.username, undefined)
  assert.match(r.json.identity.source, /unknown/)
  const names = r.json.types.filter((t: any) => t.canList).map((t: any) => t.name)
  for (const expected of ['secrets', 'configmaps', 'persistentvolumeclaims', 'statefulsets.apps', 'cronjobs.batch', 'roles.rbac.authorization.k8s.io']) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`)
  }
  assert.not.ok(names.includes('namespaces'), 'cluster-scoped types are not listed')
})

test('check --json as the namespace-only user in its namespace', async () => {
  const r = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr)
  const listable = r.json.types.filter((t: any) => t.canList).map((t: any) => t.name)
  assert.ok(listable.includes('secrets'))
  assert.ok(listable.includes('statefulsets.apps'))
  assert.is(r.json.types.filter((t: any) => !t.canList).length, 0, 'the kubesnap Role reads every namespaced type')
})

test('check as the namespace-only user elsewhere: nothing is listable', async () => {
  const r = await kubesnap(['check', '-n', other, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.namespaceExists, undefined, 'the user may not read that Namespace object')
  assert.is(r.json.types.filter((t: any) => t.canList).length, 0)
})

test('check prints a readable report without --json', async () => {
  const r = await kubesnap(['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /Server:\s+https:\/\/127\.0\.0\.1:\d+ \(v1\.20\.2\)/)
  assert.match(r.stdout, /Identity:\s+unknown/)
  assert.match(r.stdout, new RegExp(`Namespace: ${ns} \\(exists\\)`))
  assert.match(r.stdout, /\n\s+secrets\n/)
})

test('check uses the namespace of the kubeconfig context when -n is absent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubesnap-check-'))
  const kc = cluster.user()
  const context = kc.getCurrentContext()
  const config = JSON.parse(kc.exportConfig())
  config.contexts = config.contexts.map((c: any) => c.name === context ? {...c, context: {...c.context, namespace: ns}} : c)
  writeFileSync(join(dir, 'config'), JSON.stringify(config))
  const r = await kubesnap(['check', '--kubeconfig', join(dir, 'config'), '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.namespace, ns)
})

test('check of a namespace that does not exist exits 1 with one sentence', async () => {
  const r = await kubesnap(['check', '-n', 'no-such-namespace', '--kubeconfig', cluster.kubeconfigs.admin, '--json'])
  assert.is(r.code, 1)
  assert.match(r.json.error.message, /^The namespace "no-such-namespace" does not exist on https:\/\/127\.0\.0\.1:\d+; create it or pick another with -n\.$/)
})

test('check with refused credentials exits 1 and names the context', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubesnap-check-'))
  const bad = readFileSync(cluster.kubeconfigs.user, 'utf8').replace(/token: .*/, 'token: not-a-valid-token')
  assert.ok(bad.includes('not-a-valid-token'), 'the user kubeconfig uses a bearer token')
  writeFileSync(join(dir, 'config'), bad)
  const r = await kubesnap(['check', '-n', ns, '--kubeconfig', join(dir, 'config')])
  assert.is(r.code, 1)
  assert.match(r.stderr, /refused the credentials of context/)
  assert.not.match(r.stderr, /not-a-valid-token/, 'credentials are never printed')
})

/** A kubeconfig pointing at a local server (not the cluster). */
function kubeconfigFor(server: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kubesnap-check-'))
  const path = join(dir, 'config')
  writeFileSync(path, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'nowhere',
    clusters: [{name: 'nowhere', cluster: {server, 'insecure-skip-tls-verify': true}}],
    users: [{name: 'u', user: {token: 'x'}}],
    contexts: [{name: 'nowhere', context: {cluster: 'nowhere', user: 'u'}}],
  }))
  return path
}

/**
 * The time `check` takes to start and fail before any request (a kubeconfig
 * that does not exist), measured now: the bound the network cases are held
 * to, so a loaded machine's slower start-up does not fail them.
 */
async function startupMs(): Promise<number> {
  const r = await kubesnap(['check', '-n', 'x', '--kubeconfig', join(tmpdir(), 'kubesnap-no-such-kubeconfig')])
  assert.is(r.code, 2)
  return r.ms
}

test('check against a closed port exits 1 fast', async () => {
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  const port = (probe.address() as {port: number}).port
  await new Promise((r) => probe.close(r))
  const r = await kubesnap(['check', '-n', 'x', '--kubeconfig', kubeconfigFor(`https://127.0.0.1:${port}`)])
  assert.is(r.code, 1)
  assert.match(r.stderr, /Cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  // No retries: four backed-off attempts would add 3 s at least.
  const startup = await startupMs()
  assert.ok(r.ms < startup + 2500, `took ${r.ms} ms, start-up alone ${startup} ms`)
})

test('check against a server that never answers exits 1 within 5 seconds of its start-up', async () => {
  // Accepts connections and says nothing: what a black-holed address looks like.
  const silent: Server = createServer(() => undefined)
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as {port: number}).port
  try {
    const r = await kubesnap(['check', '-n', 'x', '--kubeconfig', kubeconfigFor(`https://127.0.0.1:${port}`), '--json'])
    assert.is(r.code, 1)
    assert.match(r.json.error.message, /Cannot reach the Kubernetes API server .*ETIMEDOUT/)
    // The 3 s probe, once, on top of start-up: not the 60 s of a request's deadline, nor its retries.
    const startup = await startupMs()
    assert.ok(r.ms < startup + 5000, `took ${r.ms} ms, start-up alone ${startup} ms`)
  } finally {
    silent.close()
  }
})

test.after(async () => {
  await cluster.deleteNamespace(ns)
  await cluster.deleteNamespace(other)
})

test.run()
