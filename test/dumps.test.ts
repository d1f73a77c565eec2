/**
 * Application dumps and hooks: the flag syntax (pure table tests), then
 * against the real control plane as the namespace-only user on the jenkins
 * fixture: a dump's stdout lands byte for byte in `dumps/<name>/part-*.dump.gz`
 * (read back with tar and gzip only); pre- and post-hooks bracket the volume
 * copy in order; a failing dump or hook fails the snapshot with its stderr and
 * leaves no archive, post-hooks running all the same; restore streams the
 * dump into its load command (dry run lists it, --no-dumps skips it); and the
 * `head -c N` framing on a v4-only node.
 *
 *   cp to a private copy (see the brief), npx tsc -p tsconfig.build.json && node --import tsx test/dumps.test.ts
 */
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {openArchive} from '../src/archive/index.js'
import type {StreamEntry} from '../src/archive/manifest.js'
import {KubeApi} from '../src/cluster/index.js'
import {execInPod} from '../src/cluster/exec.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {
  DumpSyntaxError, isPodReady, loadCommand, loadDumps, parseDump, parseHook, parseLoad, planDumps, selectorQuery,
} from '../src/dumps/index.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap, KUBESNAP_BIN} from './helpers/cli.js'

// ---------------------------------------------------------------------------
// Pure parts

test('--dump NAME=KIND/WORKLOAD[,container=C]:COMMAND', () => {
  const ok: Array<[string, ReturnType<typeof parseDump>]> = [
    ['db=statefulset/mariadb:mysqldump --all-databases', {name: 'db', target: {kind: 'statefulset', name: 'mariadb'}, command: 'mysqldump --all-databases'}],
    ['db=sts/mariadb,container=mariadb:mysqldump -uroot -p"$PW"', {name: 'db', target: {kind: 'statefulset', name: 'mariadb', container: 'mariadb'}, command: 'mysqldump -uroot -p"$PW"'}],
    ['pg=deployment/postgres:pg_dump -Fc app', {name: 'pg', target: {kind: 'deployment', name: 'postgres'}, command: 'pg_dump -Fc app'}],
    ['zk=Deploy/zk:zkCli.sh -server localhost:2181 get /a=b', {name: 'zk', target: {kind: 'deployment', name: 'zk'}, command: 'zkCli.sh -server localhost:2181 get /a=b'}],
    ['home=pod/jenkins-0: tar cf - -C /var/jenkins_home . ', {name: 'home', target: {kind: 'pod', name: 'jenkins-0'}, command: 'tar cf - -C /var/jenkins_home .'}],
    ['a.b_c-1=statefulset/x:echo hi', {name: 'a.b_c-1', target: {kind: 'statefulset', name: 'x'}, command: 'echo hi'}],
  ]
  for (const [text, expected] of ok) assert.equal(parseDump(text), expected, text)

  const bad: Array<[string, RegExp]> = [
    ['statefulset/mariadb:mysqldump', /no NAME=/],
    ['sts/m:a=b', /"sts\/m:a" is not a dump name/],
    ['db', /no NAME=/],
    ['Db=statefulset/x:cmd', /not a dump name/],
    ['../x=statefulset/x:cmd', /not a dump name/],
    ['db=statefulset/mariadb', /has no command/],
    ['db=statefulset/mariadb:  ', /empty command/],
    ['db=mariadb:mysqldump', /not a workload/],
    ['db=daemonset/x:cmd', /not a workload/],
    ['db=statefulset/:cmd', /not a workload/],
    ['db=statefulset/Maria:cmd', /not a workload/],
    ['db=statefulset/x,image=y:cmd', /not an option/],
    ['db=statefulset/x,container=a,container=b:cmd', /not an option/],
  ]
  for (const [text, message] of bad) {
    assert.throws(() => parseDump(text), (err: Error) => err instanceof DumpSyntaxError && message.test(err.message), text)
  }
})

test('--pre-hook/--post-hook KIND/WORKLOAD:COMMAND and --load NAME=COMMAND', () => {
  assert.equal(parseHook('statefulset/mariadb:mysql -e "FLUSH TABLES"'), {target: {kind: 'statefulset', name: 'mariadb'}, command: 'mysql -e "FLUSH TABLES"'})
  assert.equal(parseHook('pod/p,container=c:touch /x'), {target: {kind: 'pod', name: 'p', container: 'c'}, command: 'touch /x'})
  assert.throws(() => parseHook('touch /x', '--post-hook'), /--post-hook: "touch \/x" has no command|--post-hook: "touch \/x" is not a workload/)
  assert.throws(() => parseHook('db=statefulset/x:cmd'), /not a workload/)
  assert.equal(parseLoad('db=mysql -uroot'), {name: 'db', command: 'mysql -uroot'})
  assert.equal(parseLoad('db=psql -c "a=b"'), {name: 'db', command: 'psql -c "a=b"'})
  assert.throws(() => parseLoad('db='), /empty command/)
  assert.throws(() => parseLoad('mysql'), /no NAME=/)
})

test('planDumps: names unique, every --load names a --dump, loads attached', () => {
  const plan = planDumps({dump: ['db=sts/m:dump', 'files=pod/p:tar cf - /d'], load: ['db=load'], preHook: ['sts/m:a'], postHook: ['sts/m:b']})
  assert.equal(plan.dumps.map((d) => [d.name, d.load]), [['db', 'load'], ['files', undefined]])
  assert.equal(plan.preHooks.map((h) => h.command), ['a'])
  assert.equal(plan.postHooks.map((h) => h.command), ['b'])
  assert.equal(planDumps({}), {dumps: [], preHooks: [], postHooks: []})
  assert.throws(() => planDumps({dump: ['db=sts/m:a', 'db=sts/n:b']}), /used twice/)
  assert.throws(() => planDumps({dump: ['db=sts/m:a'], load: ['dbx=load']}), /no --dump named dbx/)
  assert.throws(() => planDumps({dump: ['db=sts/m:a'], load: ['db=x', 'db=y']}), /two load commands/)
})

test('pods, selectors and the v4 load framing', () => {
  const pod = (phase: string, ready: string, deleting = false) => ({metadata: {name: 'p', ...(deleting ? {deletionTimestamp: 'now'} : {})}, status: {phase, conditions: [{type: 'Ready', status: ready}]}})
  assert.equal([pod('Running', 'True'), pod('Running', 'False'), pod('Pending', 'True'), pod('Running', 'True', true)].map(isPodReady), [true, false, false, false])
  assert.is(selectorQuery({matchLabels: {app: 'x', tier: 'db'}, matchExpressions: [{key: 'env', operator: 'In', values: ['a', 'b']}, {key: 'gone', operator: 'DoesNotExist'}]}), 'app=x,tier=db,env in (a,b),!gone')
  assert.equal(loadCommand('mysql', 'v5.channel.k8s.io', 10), ['sh', '-c', 'mysql'])
  assert.equal(loadCommand('mysql', 'v4.channel.k8s.io', 10), ['sh', '-c', 'head -c "$1" | sh -c "$2"', 'kubesnap-load', '10', 'mysql'])
})

test('the v4 framing script (host sh): LOAD gets exactly N bytes, then EOF', async () => {
  const [, , script, arg0, n, load] = loadCommand('wc -c', 'v4.channel.k8s.io', 5)
  const r = await execa('sh', ['-c', script, arg0, n, load], {input: 'helloEXTRA'})
  assert.is(r.stdout.trim(), '5')
})

// ---------------------------------------------------------------------------
// Against the real control plane

let cluster: TestCluster
let admin: KubeApi
let ns: string
const dirs: string[] = []
const SEED = '/var/jenkins_home/plugins/git.jpi'

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  ns = await cluster.createNamespace({prefix: 'dumps', fixture: 'jenkins'})
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-dumps-'))
  dirs.push(dir)
  return dir
}

/** Runs `sh -c script` in jenkins-0 as the admin; returns its stdout. */
async function inPod(script: string, namespace = ns, pod = 'jenkins-0'): Promise<Buffer> {
  const chunks: Buffer[] = []
  const stdout = new Writable({write: (chunk: Buffer, _enc, done) => (chunks.push(chunk), done())})
  const p = await admin.get<any>(`/api/v1/namespaces/${namespace}/pods/${pod}`)
  await execInPod(admin, {namespace, pod, container: p.spec.containers[0].name, command: ['sh', '-c', script], stdout})
  return Buffer.concat(chunks)
}

function snapshot(dir: string, args: string[]) {
  return kubesnap(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--json', ...args], {timeoutMs: 240_000})
}

/** The `.kubesnap.tar` files (and leftovers) in a directory. */
async function archives(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.includes('.kubesnap'))
}

let archive: string | undefined

test('snapshot: a dump lands byte for byte in dumps/<name>/ (tar + gzip only); hooks bracket the volume copy in order', async () => {
  const dir = await tempDir()
  await inPod('rm -f /tmp/hooks /var/jenkins_home/pre-marker /var/jenkins_home/post-marker')
  const r = await snapshot(dir, [
    '--dump', `home=statefulset/jenkins:cat ${SEED}`,
    '--load', 'home=cat > /tmp/loaded',
    '--pre-hook', 'statefulset/jenkins:echo pre >> /tmp/hooks; touch /var/jenkins_home/pre-marker',
    '--post-hook', 'sts/jenkins:echo post >> /tmp/hooks; touch /var/jenkins_home/post-marker',
  ])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.is(r.json.dumps, 1)
  archive = r.json.path as string

  // Extracted as the README says a person would: tar, then gzip.
  const out = await tempDir()
  await execa('tar', ['xf', archive, '-C', out, 'dumps/'])
  const parts = (await readdir(join(out, 'dumps', 'home'))).sort()
  assert.ok(parts.length > 0 && parts.every((p) => /^part-\d+\.dump\.gz$/.test(p)), parts.join(','))
  const gz = await execa('sh', ['-c', 'cat part-* | gzip -dc'], {cwd: join(out, 'dumps', 'home'), encoding: 'buffer'})
  const expected = await inPod(`cat ${SEED}`)
  assert.ok(expected.length > 100_000, 'the seed file is there')
  assert.ok(Buffer.compare(Buffer.from(gz.stdout), expected) === 0, 'dump bytes equal the file in the pod')

  const reader = await openArchive(archive)
  const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'dump' && e.name === 'home')!
  assert.equal({...entry.extra, stderr: undefined}, {workload: 'statefulset/jenkins', pod: 'jenkins-0', container: (await admin.get<any>(`/api/v1/namespaces/${ns}/pods/jenkins-0`)).spec.containers[0].name, command: `cat ${SEED}`, load: 'cat > /tmp/loaded', stderr: undefined})
  assert.is(entry.rawSize, expected.length)

  // pre ran before the copy (its marker is in the volume's tar), post after (its marker is not).
  assert.is((await inPod('cat /tmp/hooks')).toString(), 'pre\npost\n')
  const volume = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'volume' && e.name === 'jenkins-home-jenkins-0')!
  const listing = await execa('tar', ['tf', '-'], {input: reader.readStream(volume)})
  const members = listing.stdout.split('\n')
  assert.ok(members.includes('./pre-marker'), 'pre-hook ran before the copy')
  assert.not.ok(members.includes('./post-marker'), 'post-hook ran after the copy')
  assert.is((await inPod('ls /var/jenkins_home/post-marker')).toString().trim(), '/var/jenkins_home/post-marker')
  await inPod('rm -f /var/jenkins_home/pre-marker /var/jenkins_home/post-marker')
})

test('snapshot: a failing dump fails it (exit 1) with its stderr, and no archive is left', async () => {
  const dir = await tempDir()
  const r = await snapshot(dir, ['--dump', "bad=statefulset/jenkins:echo boom >&2; exit 3", '--volumes', 'none'])
  assert.is(r.code, 1, r.stderr + r.stdout)
  const message = r.json?.error?.message ?? r.stderr
  assert.match(message, /boom/)
  assert.match(message, /Dump bad failed, so no archive was written/)
  assert.match(message, /code 3/)
  assert.equal(await archives(dir), [])
})

test('snapshot: a failing pre-hook fails it with its stderr, post-hooks still run, no archive', async () => {
  const dir = await tempDir()
  await inPod('rm -f /tmp/fail-hooks')
  const r = await snapshot(dir, [
    '--pre-hook', 'statefulset/jenkins:echo nope >&2; exit 4',
    '--post-hook', 'statefulset/jenkins:echo post >> /tmp/fail-hooks',
    '--volumes', 'none',
  ])
  assert.is(r.code, 1, r.stderr + r.stdout)
  assert.match(r.json?.error?.message ?? r.stderr, /pre-hook on statefulset\/jenkins failed.*nope/)
  assert.is((await inPod('cat /tmp/fail-hooks')).toString(), 'post\n')
  assert.equal(await archives(dir), [])
})

test('snapshot: Ctrl-C during a pre-hook stops it, runs the post-hooks to undo it, and ends by the signal with no archive', async () => {
  const dir = await tempDir()
  await inPod('rm -f /tmp/int-started /tmp/int-post')
  const child = execa(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', dir, '--kubeconfig', cluster.kubeconfigs.user, '--volumes', 'none',
    '--pre-hook', 'statefulset/jenkins:touch /tmp/int-started; sleep 60',
    '--post-hook', 'statefulset/jenkins:echo post >> /tmp/int-post'], {reject: false})
  const deadline = Date.now() + 60_000
  while ((await inPod('ls /tmp/int-started 2>/dev/null || true')).length === 0) {
    assert.ok(Date.now() < deadline, 'the pre-hook started')
    await sleep(200)
  }
  const interrupted = Date.now()
  child.kill('SIGINT')
  const result = await child
  assert.ok(result.signal === 'SIGINT' || result.exitCode === 130, `ended by the signal (${result.signal ?? result.exitCode}): ${result.stderr}`)
  assert.ok(Date.now() - interrupted < 20_000, 'it did not wait for the pre-hook to end')
  assert.is((await inPod('cat /tmp/int-post')).toString(), 'post\n', 'the post-hook ran once')
  assert.equal(await archives(dir), [], 'no archive, no partial file, no lock')
})

test('snapshot: bad flags are usage errors (exit 2) before anything is written; a workload without pods fails in one sentence', async () => {
  const dir = await tempDir()
  const usage = await snapshot(dir, ['--dump', 'db=statefulset/jenkins:x', '--load', 'other=y'])
  assert.is(usage.code, 2, usage.stderr + usage.stdout)
  assert.match(usage.json?.error?.message ?? usage.stderr, /no --dump named other/)
  const missing = await snapshot(dir, ['--dump', 'db=deployment/nothere:x', '--volumes', 'none'])
  assert.is(missing.code, 1, missing.stderr + missing.stdout)
  assert.match(missing.json?.error?.message ?? missing.stderr, /no deployment\/nothere in namespace/)
  assert.equal(await archives(dir), [])
})

test('restore: --dry-run lists the dump, --no-dumps skips it with a warning, then the load command gets every byte', async () => {
  assert.ok(archive, 'the snapshot test ran')
  const restore = (args: string[]) => kubesnap(['restore', archive!, '--kubeconfig', cluster.kubeconfigs.user, ...args], {timeoutMs: 300_000})
  await inPod('rm -f /tmp/loaded')

  const dry = await restore(['--dry-run'])
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.match(dry.stdout, /dump +home: .* into `cat > \/tmp\/loaded` in the first Ready pod of statefulset\/jenkins/)

  const skipped = await restore(['--json', '--volumes', 'none', '--no-dumps'])
  assert.is(skipped.code, 0, skipped.stderr + skipped.stdout)
  assert.equal(skipped.json.dumps.map((d: any) => [d.name, d.action]), [['home', 'skipped']])
  assert.ok(skipped.json.warnings.some((w: string) => /Dump home was not loaded: not loaded with --no-dumps/.test(w)), skipped.stdout)

  // Volume data too: jenkins is scaled to 0 and back, and the load waits for its rollout.
  const r = await restore(['--json'])
  assert.is(r.code, 0, r.stderr + r.stdout)
  assert.equal(r.json.dumps.map((d: any) => [d.name, d.action, d.pod]), [['home', 'loaded', 'jenkins-0']])
  const expected = await inPod(`cat ${SEED}`)
  const loaded = await inPod('cat /tmp/loaded')
  assert.is(loaded.length, expected.length)
  assert.ok(Buffer.compare(loaded, expected) === 0, 'the load command read the dump byte for byte')
})

test('restore: a failing load command is a failed outcome with its stderr; a missing workload is skipped', async () => {
  assert.ok(archive, 'the snapshot test ran')
  // The archive's load command, pointed at a path that cannot be written.
  const reader = await openArchive(archive!)
  const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'dump')!
  const user = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
  try {
    const outcomes = await loadDumps({api: user, namespace: ns, reader, entries: [{...entry, extra: {...entry.extra, load: 'cat > /nonexistent/dir/x'}}]})
    assert.is(outcomes[0].action, 'failed')
    assert.match(outcomes[0].reason ?? '', /nonexistent/, outcomes[0].reason)
    // A workload that is not there (or has no Ready pod) is skipped, with the reason.
    const gone = await loadDumps({api: user, namespace: ns, reader, entries: [{...entry, extra: {...entry.extra, workload: 'deployment/nothere'}}]})
    assert.equal(gone.map((o) => [o.action, o.reason]), [['skipped', `deployment/nothere has no Ready pod in ${ns}`]])
  } finally {
    user.close()
  }
})

test('restore: on a v4-only node the load is framed by head -c N and gets exactly the dump', async () => {
  assert.ok(archive, 'the snapshot test ran')
  const node = await cluster.startPrivateNode({prefix: 'dumps-v4'})
  const ns4 = await cluster.createNamespace({prefix: 'dumps-v4'})
  try {
    node.agent.setV4Only(true)
    await admin.post(`/api/v1/namespaces/${ns4}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: {name: 'target'},
      spec: {...node.placement, containers: [{name: 'main', image: 'busybox', command: ['sleep', '3600']}]},
    })
    const deadline = Date.now() + 60_000
    while (!isPodReady(await admin.get<any>(`/api/v1/namespaces/${ns4}/pods/target`))) {
      if (Date.now() > deadline) throw new Error('pod target not Ready in time')
      await sleep(250)
    }
    const reader = await openArchive(archive!)
    const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'dump')!
    const user = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
    try {
      const outcomes = await loadDumps({api: user, namespace: ns4, reader, entries: [{...entry, extra: {...entry.extra, workload: 'pod/target', container: 'main'}}]})
      assert.equal(outcomes.map((o) => [o.action, o.reason]), [['loaded', undefined]])
    } finally {
      user.close()
    }
    const loaded = await inPod('cat /tmp/loaded', ns4, 'target')
    const expected = await inPod(`cat ${SEED}`)
    assert.ok(Buffer.compare(loaded, expected) === 0, 'byte for byte through head -c N')
  } finally {
    await cluster.deleteNamespace(ns4)
    await node.stop()
  }
})

test('encrypted archive: command lines and stderr are sealed to the recipients, not in the plain manifest; age -d opens them, restore runs them', async () => {
  const dir = await tempDir()
  const key = join(dir, 'key.txt')
  await execa('age-keygen', ['-o', key])
  const recipient = (await execa('age-keygen', ['-y', key])).stdout.trim()
  // What an operator should not do, and what must then not leak: a credential on the command lines.
  const command = `MARK=dump-cred-4711; echo warn-cred-0815 >&2; cat ${SEED}`
  const load = 'MARK=load-cred-9924; cat > /tmp/sealed-loaded'
  const r = await snapshot(dir, ['--dump', `home=statefulset/jenkins:${command}`, '--load', `home=${load}`, '--volumes', 'none', '--encrypt-to', recipient])
  assert.is(r.code, 0, r.stderr + r.stdout)
  const path = r.json.path as string

  // The manifest as tar gives it to anyone who can read the file: no command line, no stderr.
  const manifestText = (await execa('tar', ['xOf', path, 'kubesnap/manifest.json'])).stdout
  for (const secret of ['dump-cred-4711', 'warn-cred-0815', 'load-cred-9924']) assert.not.ok(manifestText.includes(secret), `${secret} is not in the plain manifest`)
  const entry = JSON.parse(manifestText).entries.find((e: any) => e.type === 'dump')
  assert.equal(Object.keys(entry.extra).sort(), ['container', 'pod', 'sealed', 'workload'])

  // The README's recipe: the sealed field is an armored age file that age -d opens with the key.
  const opened = await execa('age', ['-d', '-i', key], {input: entry.extra.sealed})
  assert.equal(JSON.parse(opened.stdout), {command, load, stderr: 'warn-cred-0815'})

  // inspect without the key says they are sealed; with --identity nothing prints them either.
  const inspect = await kubesnap(['inspect', path])
  assert.is(inspect.code, 0, inspect.stderr)
  assert.match(inspect.stdout, /sealed: \(command, load, stderr encrypted to the archive's recipients\)/)
  for (const secret of ['dump-cred-4711', 'warn-cred-0815', 'load-cred-9924']) assert.not.ok(inspect.stdout.includes(secret) || inspect.stderr.includes(secret), secret)

  // restore opens them with the identity: the dry run shows the load command whole, the restore runs it.
  const restore = (args: string[]) => kubesnap(['restore', path, '--kubeconfig', cluster.kubeconfigs.user, '-i', key, '--volumes', 'none', ...args], {timeoutMs: 240_000})
  const dry = await restore(['--dry-run'])
  assert.is(dry.code, 0, dry.stderr + dry.stdout)
  assert.ok(dry.stdout.includes(`\`${load}\``), dry.stdout)
  await inPod('rm -f /tmp/sealed-loaded')
  const done = await restore(['--json'])
  assert.is(done.code, 0, done.stderr + done.stdout)
  assert.equal(done.json.dumps.map((d: any) => [d.name, d.action]), [['home', 'loaded']])
  assert.not.ok(done.stdout.includes('load-cred-9924') || done.stderr.includes('load-cred-9924'), 'a restore\'s result and progress hold no command line')
  assert.ok(Buffer.compare(await inPod('cat /tmp/sealed-loaded'), await inPod(`cat ${SEED}`)) === 0, 'the sealed load command got the dump')
})

test.after(async () => {
  if (ns) await cluster.deleteNamespace(ns)
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
  admin?.close()
})

test.run()
