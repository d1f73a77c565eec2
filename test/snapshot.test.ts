import {existsSync, mkdtempSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir, hostname} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {openArchive, verifyArchive} from '../src/archive/index.js'
import {ByteBuffer, KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {hashTree} from '../fixtures/seed.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {startFaultProxy, withProxy} from './cluster/faults/proxy.js'
import {KUBESNAP_BIN, kubesnap} from './helpers/cli.js'
import {seedTree} from './helpers/restore.js'

/** What a snapshot of each fixture holds: the namespace's own objects, nothing the cluster made. */
const EXPECTED: Record<'softwarefactory' | 'jenkins', string[]> = {
  softwarefactory: [
    'objects/apps/v1/deployments/gateway.json',
    'objects/apps/v1/statefulsets/mariadb.json',
    'objects/apps/v1/statefulsets/zookeeper.json',
    'objects/batch/v1beta1/cronjobs/config-update.json',
    'objects/core/v1/configmaps/nodepool-config.json',
    'objects/core/v1/configmaps/sf-version.json',
    'objects/core/v1/configmaps/zuul-config.json',
    'objects/core/v1/persistentvolumeclaims/mariadb-logs-mariadb-0.json',
    'objects/core/v1/persistentvolumeclaims/zookeeper-data-zookeeper-0.json',
    'objects/core/v1/secrets/mariadb-root-password.json',
    'objects/core/v1/secrets/registry-pull.json',
    'objects/core/v1/secrets/sf-ssl-cert.json',
    'objects/core/v1/secrets/zuul-keystore-password.json',
    'objects/core/v1/secrets/zuul-token.json',
    'objects/core/v1/serviceaccounts/default.json',
    'objects/core/v1/serviceaccounts/zuul.json',
    'objects/core/v1/services/gateway.json',
    'objects/core/v1/services/mariadb.json',
    'objects/core/v1/services/zookeeper-headless.json',
    'objects/networking.k8s.io/v1/networkpolicies/mariadb-from-sf.json',
    'objects/policy/v1beta1/poddisruptionbudgets/zookeeper.json',
    'objects/rbac.authorization.k8s.io/v1/rolebindings/kubesnap-test:psp:privileged.json',
    'objects/rbac.authorization.k8s.io/v1/rolebindings/kubesnap.json',
    'objects/rbac.authorization.k8s.io/v1/rolebindings/sf-operator.json',
    'objects/rbac.authorization.k8s.io/v1/roles/kubesnap.json',
    'objects/rbac.authorization.k8s.io/v1/roles/sf-operator-role.json',
    'objects/sf.softwarefactory-project.io/v1/softwarefactories/my-sf.json',
    'volumes/mariadb-logs-mariadb-0/part-000000.tar.gz',
    'volumes/zookeeper-data-zookeeper-0/part-000000.tar.gz',
  ],
  jenkins: [
    'objects/apps/v1/deployments/jenkins-agent-cache.json',
    'objects/apps/v1/statefulsets/jenkins.json',
    'objects/core/v1/configmaps/jenkins-backup.json',
    'objects/core/v1/configmaps/jenkins-casc.json',
    'objects/core/v1/persistentvolumeclaims/agent-cache.json',
    'objects/core/v1/persistentvolumeclaims/jenkins-home-jenkins-0.json',
    'objects/core/v1/secrets/jenkins-admin.json',
    'objects/core/v1/serviceaccounts/default.json',
    'objects/core/v1/serviceaccounts/jenkins.json',
    'objects/core/v1/services/jenkins.json',
    'objects/networking.k8s.io/v1/ingresses/jenkins.json',
    'objects/rbac.authorization.k8s.io/v1/rolebindings/kubesnap-test:psp:privileged.json',
    'objects/rbac.authorization.k8s.io/v1/rolebindings/kubesnap.json',
    'objects/rbac.authorization.k8s.io/v1/roles/kubesnap.json',
    'volumes/agent-cache/part-000000.tar.gz',
    'volumes/jenkins-home-jenkins-0/part-000000.tar.gz',
  ],
}
const SF_CRD = 'crds/softwarefactories.sf.softwarefactory-project.io.json'
const FRAME = ['kubesnap/format.json', 'kubesnap/manifest.json', 'kubesnap/trailer.json']

let cluster: TestCluster
const namespaces: Record<string, string> = {}

function outDir(): string {
  return mkdtempSync(join(tmpdir(), 'kubesnap-snap-'))
}

/** Every member of an archive, as the system `tar` lists it. */
async function members(path: string): Promise<string[]> {
  const {stdout} = await execa('tar', ['tf', path])
  return stdout.split('\n').filter(Boolean).sort()
}

test.before(async () => {
  cluster = await sharedCluster()
  for (const fixture of ['softwarefactory', 'jenkins'] as const) {
    namespaces[fixture] = await cluster.createNamespace({prefix: fixture.slice(0, 8), fixture})
  }
})

for (const fixture of ['softwarefactory', 'jenkins'] as const) {
  for (const who of ['admin', 'user'] as const) {
    test(`snapshot of the ${fixture} fixture as ${who} holds exactly its own objects`, async () => {
      const dir = outDir()
      const r = await kubesnap(['snapshot', '-n', namespaces[fixture], '-o', dir, '--kubeconfig', cluster.kubeconfigs[who], '--json'])
      assert.is(r.code, 0, r.stderr + r.stdout)
      assert.is(r.json.status, 'complete')
      assert.is(r.json.number, 1)
      const crds = fixture === 'softwarefactory' && who === 'admin' ? [SF_CRD] : []
      assert.equal(await members(r.json.path), [...crds, ...FRAME, ...EXPECTED[fixture]].sort())
      assert.is(statSync(r.json.path).mode & 0o777, 0o600, 'archives hold Secrets: mode 0600')
      assert.equal((await verifyArchive(r.json.path)).ok, true)
      if (fixture === 'jenkins' && who === 'user') {
        // The fixture came up with its seed tree on the volume, and the archive holds it byte for byte.
        const out = mkdtempSync(join(tmpdir(), 'kubesnap-home-'))
        const member = (await members(r.json.path)).find((m) => m.startsWith('volumes/jenkins-home-'))!
        await execa('sh', ['-c', `tar xOf "$1" "$2" | gzip -dc | tar xpf - -C "$3"`, 'sh', r.json.path, member, out])
        assert.equal(await hashTree(out), await seedTree('jenkins/jenkins-home'))
      }
      if (fixture === 'softwarefactory' && who === 'user') {
        assert.ok(r.json.warnings.some((w: string) => /CustomResourceDefinitions are not readable/.test(w)), 'the user cannot read CRDs and is told so')
      }
    })
  }
}

test('the manifest says what was left out and why', async () => {
  const dir = outDir()
  const r = await kubesnap(['snapshot', '-n', namespaces.softwarefactory, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(r.code, 0, r.stderr)
  const {manifest} = await openArchive(r.json.path)
  const reasons = new Map(manifest.skipped.map((s) => [`${s.resource}/${s.name ?? '*'}`, s.reason]))
  assert.match(reasons.get('configmaps/kube-root-ca.crt') ?? '', /root-ca-cert-publisher/)
  assert.match(reasons.get('pods/mariadb-0') ?? '', /StatefulSet mariadb/)
  assert.match(reasons.get('events/*') ?? '', /log/)
  assert.match(reasons.get('endpoints/*') ?? '', /endpoints controller/)
  assert.match(reasons.get('controllerrevisions.apps/*') ?? '', /StatefulSet/)
  const tokens = manifest.skipped.filter((s) => s.resource === 'secrets')
  assert.ok(tokens.length >= 2 && tokens.every((s) => /generated by the token controller/.test(s.reason)), JSON.stringify(tokens))
  assert.ok(tokens.some((s) => s.name?.startsWith('zuul-token-')), 'the generated zuul token is left out; the hand-made zuul-token is kept')
  assert.is(manifest.cluster.server, cluster.server)
  assert.is(manifest.namespace, namespaces.softwarefactory)
})

test('objects are stored raw, as the server returned them', async () => {
  const dir = outDir()
  const r = await kubesnap(['snapshot', '-n', namespaces.softwarefactory, '-o', dir, '--kubeconfig', cluster.kubeconfigs.admin, '--include-kinds', 'secrets', '--json'])
  assert.is(r.code, 0, r.stderr)
  const reader = await openArchive(r.json.path)
  const entry = reader.manifest.entries.find((e) => e.name === 'mariadb-root-password')!
  const text = (await reader.readObject(entry as never)).toString()
  const api = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  const path = `/api/v1/namespaces/${namespaces.softwarefactory}/secrets/mariadb-root-password`
  const live = await api.get<any>(path)
  const liveText = (await api.getBytes(path, new ByteBuffer())).toString()
  api.close()
  assert.equal(JSON.parse(text), live, 'same fields, metadata.uid, resourceVersion and managedFields included')
  assert.is(text, liveText.trimEnd(), 'byte for byte what a GET of the object returns')
})

test('--include-kinds, --exclude-kinds and -l narrow the snapshot', async () => {
  const ns = namespaces.softwarefactory
  const only = await kubesnap(['snapshot', '-n', ns, '-o', outDir(), '--kubeconfig', cluster.kubeconfigs.user, '--include-kinds', 'Secret,cm', '--json'])
  assert.is(only.code, 0, only.stderr)
  assert.equal((await members(only.json.path)).filter((p) => p.startsWith('objects/')),
    EXPECTED.softwarefactory.filter((p) => p.includes('/secrets/') || p.includes('/configmaps/')))

  const without = await kubesnap(['snapshot', '-n', ns, '-o', outDir(), '--kubeconfig', cluster.kubeconfigs.user, '--exclude-kinds', 'secrets', '--exclude-kinds', 'statefulsets.apps', '--json'])
  assert.is(without.code, 0, without.stderr)
  assert.equal((await members(without.json.path)).filter((p) => p.startsWith('objects/')),
    EXPECTED.softwarefactory.filter((p) => p.startsWith('objects/') && !p.includes('/secrets/') && !p.includes('/statefulsets/')))
  assert.ok(without.json.skipped.some((s: any) => s.resource === 'secrets' && /--exclude-kinds/.test(s.reason)))

  const labelled = await kubesnap(['snapshot', '-n', ns, '-o', outDir(), '--kubeconfig', cluster.kubeconfigs.user, '-l', 'tier=db', '--json'])
  assert.is(labelled.code, 0, labelled.stderr)
  const picked = (await members(labelled.json.path)).filter((p) => p.startsWith('objects/'))
  assert.ok(picked.includes('objects/apps/v1/statefulsets/mariadb.json'))
  assert.ok(picked.includes('objects/core/v1/secrets/mariadb-root-password.json'))
  assert.not.ok(picked.includes('objects/apps/v1/statefulsets/zookeeper.json'))
})

test('an unknown kind is a usage error (exit 2) and writes nothing', async () => {
  const dir = outDir()
  const r = await kubesnap(['snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--include-kinds', 'nosuchkinds'])
  assert.is(r.code, 2)
  assert.match(r.stderr, /--include-kinds: no namespaced resource type named "nosuchkinds"/)
  assert.equal(readdirSync(dir).filter((f) => !f.startsWith('.')), [])
})

test('types the identity may not list make the snapshot partial (exit 3), unless asked for by name (exit 1)', async () => {
  const ns = await cluster.createNamespace({prefix: 'narrow', bindUser: false})
  const admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  await admin.post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    metadata: {name: 'no-secrets'},
    rules: [{apiGroups: ['', 'apps'], resources: ['configmaps', 'services', 'serviceaccounts', 'statefulsets'], verbs: ['get', 'list']}],
  })
  await admin.post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    metadata: {name: 'no-secrets'},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-secrets'},
    subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: cluster.userName}],
  })
  admin.close()
  const dir = outDir()
  const partial = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(partial.code, 3, partial.stderr)
  assert.is(partial.json.status, 'partial')
  assert.ok(partial.json.warnings.some((w: string) => /Could not list secrets \(forbidden/.test(w)), partial.json.warnings.join('\n'))
  assert.ok(existsSync(partial.json.path), 'a partial snapshot is still written')
  assert.ok(partial.json.skipped.some((s: any) => s.resource === 'secrets' && s.failed === true && /^could not be listed: /.test(s.reason)), JSON.stringify(partial.json.skipped))
  const listed = await kubesnap(['list', dir, '--json'])
  assert.equal(listed.json.map((r: any) => r.status), ['partial'], 'list shows it as partial')

  const named = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--include-kinds', 'secrets,configmaps'])
  assert.is(named.code, 1)
  assert.match(named.stderr, /^Error: Cannot list secrets in namespace .* \(forbidden: .*\); grant list on it or leave it out of --include-kinds\.$/m)
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tar')).length, 1, 'the failed run left no archive')
  await cluster.deleteNamespace(ns)
})

test('snapshots are numbered per namespace in the directory', async () => {
  const dir = outDir()
  for (const expected of [1, 2, 3]) {
    const r = await kubesnap(['snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(r.json.number, expected)
  }
  const other = await kubesnap(['snapshot', '-n', namespaces.softwarefactory, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  assert.is(other.json.number, 1)
})

test('another run holding the directory makes snapshot exit 5 at once', async () => {
  const dir = outDir()
  writeFileSync(join(dir, '.kubesnap.lock'), JSON.stringify({pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString()}))
  const r = await kubesnap(['snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user])
  assert.is(r.code, 5)
  assert.match(r.stderr, new RegExp(`Another kubesnap run \\(pid ${process.pid}\\) holds`))
})

for (const signal of ['SIGINT', 'SIGKILL'] as const) {
  test(`a snapshot killed mid-way with ${signal} leaves no archive; the next one takes the next number`, async () => {
    const dir = outDir()
    const first = await kubesnap(['snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(first.json.number, 1)
    // Slow every list down so the run is surely mid-way when the signal lands.
    const proxy = await startFaultProxy({target: cluster.server})
    try {
      proxy.addRule({method: 'GET', pathPattern: /\/namespaces\/[^/]+\/[a-z]+$/, latencyMs: 400})
      const slow = await withProxy(cluster.kubeconfigs.user, proxy)
      const child = execa(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', slow, '--concurrency', '1'], {reject: false})
      await waitUntil(() => readdirSync(dir).some((f) => f.endsWith('.partial')) && proxy.log.length > 5)
      child.kill(signal)
      const result = await child
      assert.ok(result.signal === signal || result.exitCode !== 0, 'the run did not finish')
    } finally {
      await proxy.stop()
    }
    const finals = readdirSync(dir).filter((f) => f.endsWith('.kubesnap.tar'))
    assert.is(finals.length, 1, `only the first archive has a final name: ${finals.join(', ')}`)
    if (signal === 'SIGINT') assert.equal(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'Ctrl-C removes the temporary file and the lock')
    const next = await kubesnap(['snapshot', '-n', namespaces.jenkins, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(next.code, 0, next.stderr)
    assert.is(next.json.number, 2)
    if (signal === 'SIGKILL') assert.ok(next.json.warnings.some((w: string) => /interrupted run|no longer running/.test(w)), next.json.warnings.join('\n'))
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.partial')), [])
  })
}

async function waitUntil(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 50))
  }
}

test.after(async () => {
  for (const ns of Object.values(namespaces)) await cluster.deleteNamespace(ns)
})

test.run()
