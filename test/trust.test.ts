/**
 * Archives are not trusted (issue 16): what a restore writes is what the
 * manifest says, into the namespace the user named, and an archive that
 * disagrees with itself is refused before any write. Against the real control
 * plane, as the namespace-only user.
 */
import {copyFile, mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {forgeArchive, objectJson} from '../src/archive/forge.test.js'
import {createArchiveWriter} from '../src/archive/writer.js'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {versions} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
})

const secretData = (value: string) => ({type: 'Opaque', data: {password: Buffer.from(value).toString('base64')}})

test('an entry whose object is not the one its record names, or is cluster-scoped, is refused before any write', async () => {
  const ns = await cluster.createNamespace({prefix: 'trust-id'})
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-trust-'))
  try {
    await admin.post(`/api/v1/namespaces/${ns}/secrets`, {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'jenkins-admin'}, ...secretData('original')})
    const path = join(dir, `${ns}-000001-20261121T160000Z.kubesnap.tar`)
    const secret = {kind: 'Secret', group: '', version: 'v1', resource: 'secrets'}
    await forgeArchive(path, {namespace: ns, objects: [
      // The case: the plan says harmless-new, the object is jenkins-admin.
      {entry: {...secret, name: 'harmless-new'}, content: objectJson('Secret', 'v1', 'jenkins-admin', ns, secretData('attacker'))},
      {entry: {...secret, name: 'other-kind'}, content: objectJson('ConfigMap', 'v1', 'other-kind', ns)},
      {entry: {...secret, name: 'other-ns'}, content: objectJson('Secret', 'v1', 'other-ns', 'kube-system', secretData('x'))},
      {entry: {...secret, name: 'other-version'}, content: objectJson('Secret', 'v2', 'other-version', ns, secretData('x'))},
      {entry: {kind: 'ClusterRoleBinding', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', name: 'evil'},
        content: JSON.stringify({apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: {name: 'evil'}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin'}, subjects: []})},
      {entry: {...secret, kind: 'ConfigMap', name: 'record-kind'}, content: objectJson('ConfigMap', 'v1', 'record-kind', ns)},
      {entry: {...secret, name: 'fine'}, content: objectJson('Secret', 'v1', 'fine', ns, secretData('fine'))},
    ]})
    const before = await versions(admin, ns)
    for (const dryRun of [[], ['--dry-run']]) {
      const r = await kubesnap(['restore', path, '--existing', 'update', ...dryRun, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
      assert.is(r.code, 1, r.stdout + r.stderr)
      const message: string = r.json?.error?.message ?? ''
      assert.match(message, /nothing was changed/)
      assert.match(message, /Secret harmless-new: the archived object is Secret jenkins-admin/)
      assert.match(message, /Secret other-kind: the archived object is ConfigMap other-kind/)
      assert.match(message, new RegExp(`Secret other-ns: the archived object is in namespace kube-system, not ${ns}`))
      assert.match(message, /Secret other-version: the archived object is v2, not v1/)
      assert.match(message, /The archive records secrets\/record-kind as a ConfigMap, but secrets are Secrets/)
      assert.match(message, /clusterrolebindings\.rbac\.authorization\.k8s\.io is cluster-scoped/)
      assert.not.match(message, /fine/)
    }
    assert.equal(await versions(admin, ns), before, 'nothing was written')
    const live = await admin.get<any>(`/api/v1/namespaces/${ns}/secrets/jenkins-admin`)
    assert.is(Buffer.from(live.data.password, 'base64').toString(), 'original')
  } finally {
    await rm(dir, {recursive: true, force: true})
    await cluster.deleteNamespace(ns)
  }
})

test('--latest and --number trust the manifest, not the file name: a copy named as another namespace restores nowhere', async () => {
  const source = await cluster.createNamespace({prefix: 'trust-src'})
  const other = await cluster.createNamespace({prefix: 'trust-dst'})
  const dirs = [await mkdtemp(join(tmpdir(), 'kubesnap-trust-')), await mkdtemp(join(tmpdir(), 'kubesnap-trust-'))]
  try {
    await admin.post(`/api/v1/namespaces/${source}/configmaps`, {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'app'}, data: {mode: 'prod'}})
    const snap = await kubesnap(['snapshot', '-n', source, '-o', dirs[0], '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(snap.code, 0, snap.stderr)
    // The case: the snapshot of one namespace copied in under another's name, with a higher number.
    const copy = join(dirs[1], `${other}-000099-20261121T163000Z.kubesnap.tar`)
    await copyFile(snap.json.path, copy)
    await admin.delete(`/api/v1/namespaces/${source}/configmaps/app`)
    const user = ['--kubeconfig', cluster.kubeconfigs.user, '--json']
    const runs: [string[], number, RegExp][] = [
      [['restore', '--latest', '-n', other, '-o', dirs[1]], 1, new RegExp(`is named as snapshot 99 of ${other}, but its manifest says snapshot 1 of ${source}`)],
      [['restore', '--number', '99', '-n', other, '-o', dirs[1]], 1, /is named as snapshot 99/],
      [['restore', copy], 2, new RegExp(`is named for namespace ${other}, but it holds namespace ${source}`)],
      [['restore', copy, '-n', other], 2, new RegExp(`holds namespace ${source}, not ${other}`)],
      [['verify', '--latest', '-n', other, '-o', dirs[1]], 1, /is named as snapshot 99/],
    ]
    for (const [args, code, message] of runs) {
      const r = await kubesnap([...args, ...user])
      assert.is(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.json?.error?.message ?? '', message, args.join(' '))
    }
    const list = await kubesnap(['list', dirs[1], '--json'])
    assert.equal(list.json.map((row: any) => [row.namespace, row.number, row.problem]), [[other, 99, 'name mismatch']])
    const gone = await admin.get(`/api/v1/namespaces/${source}/configmaps/app`).then(() => false, (err) => err?.statusCode === 404)
    assert.ok(gone, `nothing was restored into ${source}`)
    // Named by the user, it restores.
    const named = await kubesnap(['restore', copy, '-n', source, ...user])
    assert.is(named.code, 0, named.stdout + named.stderr)
    assert.is(named.json.namespace, source)
  } finally {
    for (const dir of dirs) await rm(dir, {recursive: true, force: true})
    await cluster.deleteNamespace(source)
    await cluster.deleteNamespace(other)
  }
})

test('a snapshot of a namespace that does not exist fails with one sentence and writes no archive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-trust-'))
  try {
    const missing = `no-such-ns-${Date.now().toString(36)}`
    const asAdmin = await kubesnap(['snapshot', '-n', missing, '-o', dir, '--kubeconfig', cluster.kubeconfigs.admin, '--json'])
    assert.is(asAdmin.code, 1, asAdmin.stdout + asAdmin.stderr)
    assert.match(asAdmin.json?.error?.message ?? '', new RegExp(`^The namespace ${missing} does not exist on https://[^ ]+; check the name given with -n \\(or the plan's namespace\\)\\.$`))
    // The namespace-only user may not get namespaces: it cannot tell, so an empty result is a failure, not a backup.
    const asUser = await kubesnap(['snapshot', '-n', missing, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(asUser.code, 1, asUser.stdout + asUser.stderr)
    assert.match(asUser.json?.error?.message ?? '', new RegExp(`^No object of namespace ${missing} could be stored, and this identity may not get namespaces to tell whether it exists; check the name given with -n \\(no archive was written\\)\\.$`))
    const narrowed = await kubesnap(['snapshot', '-n', missing, '-o', dir, '-l', 'app=db', '--kubeconfig', cluster.kubeconfigs.user, '--json'])
    assert.is(narrowed.code, 1, narrowed.stdout + narrowed.stderr)
    assert.match(narrowed.json?.error?.message ?? '', /check the name given with -n and what -l\/--include-kinds select \(no archive was written\)\.$/)
    const text = await kubesnap(['snapshot', '-n', missing, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user])
    assert.is(text.code, 1)
    assert.is(text.stderr.trim().split('\n').filter((l) => l.startsWith('Error:')).length, 1, text.stderr)
    assert.equal(await readdir(dir), [], 'no archive, no partial, no lock')
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

/** Mounts a tmpfs of `size` (read-only with `ro`) for the duration of `body`: a real full or read-only disk. */
async function withTmpfs<T>(options: {size: string; ro?: boolean}, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-disk-'))
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${options.size}${options.ro ? ',ro' : ''}`, 'tmpfs', dir])
  try {
    return await body(dir)
  } finally {
    await execa('umount', [dir])
    await rm(dir, {recursive: true, force: true})
  }
}

test('a full or read-only output directory is one sentence with its fix, exit 1, whether the objects or a volume fill it', async () => {
  const ns = await cluster.createNamespace({prefix: 'trust-disk', fixture: 'jenkins'})
  try {
    const user = ['--kubeconfig', cluster.kubeconfigs.user, '--json']
    await withTmpfs({size: '64k', ro: true}, async (dir) => {
      for (const out of [dir, join(dir, 'archives')]) {
        const r = await kubesnap(['snapshot', '-n', ns, '-o', out, ...user])
        assert.is(r.code, 1, r.stdout + r.stderr)
        assert.is(r.json?.error?.message, `${out} is on a read-only file system (EROFS), so no archive was written; give a writable directory with -o.`)
      }
    })
    // Room for the objects, not for the volumes: the disk fills in the middle of a volume copy.
    await withTmpfs({size: '128k'}, async (dir) => {
      const objects = await kubesnap(['snapshot', '-n', ns, '-o', dir, '--volumes', 'none', ...user])
      assert.is(objects.code, 0, `the objects alone fit: ${objects.stderr}`)
      await rm(objects.json.path)
      const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, ...user])
      assert.is(r.code, 1, r.stdout + r.stderr)
      assert.is(r.json?.error?.message, `The file system of ${dir} is full (ENOSPC), so no archive was written; free space there or give another directory with -o.`)
      assert.equal(await readdir(dir), [], 'the partial archive and the lock are gone')
    })
    await withTmpfs({size: '4k'}, async (dir) => {
      const r = await kubesnap(['snapshot', '-n', ns, '-o', dir, ...user])
      assert.is(r.code, 1, r.stdout + r.stderr)
      assert.match(r.json?.error?.message ?? '', /is full \(ENOSPC\), so no archive was written/)
    })
    await withTmpfs({size: '64k', ro: true}, async (dir) => {
      const r = await kubesnap(['prune', '-o', dir, '--keep-last', '1', '--json'])
      assert.is(r.code, 1, r.stdout + r.stderr)
      assert.is(r.json?.error?.message, `${dir} is on a read-only file system (EROFS), so nothing was pruned; give a writable directory with -o.`)
    })
  } finally {
    await cluster.deleteNamespace(ns)
  }
})

test('--dry-run shows the archived load command whole; a restore that runs it says so before it starts', async () => {
  const ns = await cluster.createNamespace({prefix: 'trust-dump'})
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-trust-'))
  try {
    const writer = await createArchiveWriter({dir, namespace: ns, kubesnapVersion: 'test', cluster: {server: cluster.server, context: 'test'}})
    const load = 'set -e\nmysql --defaults-extra-file=/etc/mysql/restore.cnf --database=shop --init-command="SET foreign_key_checks=0"\ntouch /var/lib/mysql/.restored-by-kubesnap'
    await writer.addStream({type: 'dump', name: 'db', extra: {workload: 'statefulset/mariadb', pod: 'mariadb-0', container: 'mariadb', command: 'mysqldump shop', load}}, Readable.from([Buffer.from('-- dump\n')]))
    const {path} = await writer.finish({skipped: [], warnings: []})
    const user = ['--kubeconfig', cluster.kubeconfigs.user]
    const dry = await kubesnap(['restore', path, '--dry-run', ...user])
    assert.is(dry.code, 0, dry.stdout + dry.stderr)
    for (const line of load.split('\n')) assert.ok(dry.stdout.includes(`           ${line}\n`), `the dry run shows "${line}":\n${dry.stdout}`)
    const real = await kubesnap(['restore', path, ...user])
    assert.is(real.code, 0, real.stdout + real.stderr)
    assert.match(real.stderr, /Warning: This restore runs a command stored in the archive, in pods of the namespace: the load command of dump db \(statefulset\/mariadb\); kubesnap restore --dry-run shows them in full\./)
    assert.not.match(real.stderr + real.stdout, /restore\.cnf/, 'the command itself is not printed outside the dry run')
  } finally {
    await rm(dir, {recursive: true, force: true})
    await cluster.deleteNamespace(ns)
  }
})

test('dump and hook command lines, which may hold credentials, are never printed in progress or messages: the dump is named', async () => {
  const ns = await cluster.createNamespace({prefix: 'trust-cred', fixture: 'jenkins'})
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-trust-'))
  try {
    const user = ['-n', ns, '-o', dir, '--volumes', 'none', '--kubeconfig', cluster.kubeconfigs.user]
    const runs: [string[], RegExp][] = [
      [['--dump', 'bad=statefulset/jenkins:MYSQL_PWD=hunter2 sh -c "echo boom >&2; exit 3"'], /^Error: Dump bad failed, so no archive was written: its command in pod \S+, container \S+ exited with code 3: boom\.$/m],
      [['--pre-hook', 'statefulset/jenkins:TOKEN=hunter2; echo nope >&2; exit 4'], /^Error: The pre-hook on statefulset\/jenkins failed, so no archive was written: its command in pod \S+, container \S+ exited with code 4: nope\.$/m],
      [['--dump', 'good=statefulset/jenkins:MYSQL_PWD=hunter2 echo data', '--load', 'good=MYSQL_PWD=hunter2 cat > /dev/null'], /^Snapshot 1 of /m],
    ]
    for (const [args, expected] of runs) {
      const r = await kubesnap(['snapshot', ...user, ...args])
      assert.match(r.stdout + r.stderr, expected, r.stdout + r.stderr)
      assert.not.match(r.stdout + r.stderr, /hunter2/, `no command line printed:\n${r.stdout}${r.stderr}`)
    }
    const inspect = await kubesnap(['inspect', '--latest', '-n', ns, '-o', dir])
    assert.is(inspect.code, 0, inspect.stderr)
    assert.match(inspect.stdout, /good/)
    assert.not.match(inspect.stdout, /hunter2/, inspect.stdout)
  } finally {
    await rm(dir, {recursive: true, force: true})
    await cluster.deleteNamespace(ns)
  }
})

test.run()
