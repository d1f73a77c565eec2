/**
 * Set-up failures, for real, each one sentence and exit code 2, no stack trace.
 *
 * The preflight (test/cluster/packages.ts): each command run as a user who is
 * not root (nobody, through setpriv), on this machine's dpkg database, with
 * one package added that is surely not installed (KUBESNAP_TEST_EXTRA_PACKAGES,
 * test-only), stops before starting anything with the exact sudo sentence.
 * Nothing is ever installed or removed here.
 *
 * The control plane's cache (KUBESNAP_TEST_CACHE, pointed at a fresh
 * directory so the real cache is never touched): one that cannot be written,
 * and a build that fails. And loopback down, in a network namespace of the
 * cluster's own (`unshare -n`: lo exists there, down).
 */
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {EXTRA_PACKAGES_VARIABLE} from './cluster/packages.js'

const root = join(import.meta.dirname, '..')
const ABSENT = 'kubesnap-absent-test-package'
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']

/** Runs `node --import tsx ARGS` in the project, as nobody unless `root`, or in a network namespace with loopback down. */
function run(args: string[], env: NodeJS.ProcessEnv = {}, opts: {root?: boolean; noLoopback?: boolean} = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !['KUBESNAP_TEST_CLUSTER', 'KUBESNAP_TEST_CACHE', 'FORCE_COLOR', EXTRA_PACKAGES_VARIABLE].includes(key)))
  const node = [process.execPath, '--import', 'tsx', ...args]
  const [command, ...argv] = opts.noLoopback ? ['unshare', '-n', ...node] : opts.root ? node : ['setpriv', ...NOBODY, ...node]
  return execa(command, argv, {cwd: root, env: {...clean, NO_COLOR: '1', ...env}, extendEnv: false, reject: false, timeout: 60_000})
}
const asNobody = (args: string[], env: NodeJS.ProcessEnv = {}) => run(args, env)

const sentence = (command: string) =>
  `${command} needs Debian packages that are not installed: run \`sudo apt-get install -y --no-install-recommends ${ABSENT}\`, then ${command} again.`

const entries: Array<[string, string[], string]> = [
  ['npm test', ['test/run.ts'], '0 passed, 1 failed'],
  ['npm run test:unit', ['test/run.ts', '--unit'], '0 passed, 1 failed'],
  ['npm run cluster', ['test/cluster/cli.ts'], ''],
  ['npm run demo', ['test/demo.ts'], ''],
  ['npm run bench', ['bench/run.ts'], ''],
]
for (const [command, args, stdout] of entries) {
  test(`${command} as a user who is not root, a package missing: exit 2 and the sudo sentence`, async () => {
    const r = await asNobody(args, {[EXTRA_PACKAGES_VARIABLE]: ABSENT})
    assert.is(r.stderr, sentence(command))
    assert.is(r.stdout, stdout)
    assert.is(r.exitCode, 2)
  })
}

test('as a user who is not root, with every package installed: the preflight does nothing and says nothing', async () => {
  const script = "import {ensurePackages} from './test/cluster/packages.ts'; for (const c of ['test', 'test:unit', 'demo', 'cluster', 'bench']) ensurePackages(c); console.log('ready')"
  const r = await asNobody(['--input-type=module', '-e', script])
  assert.is(r.stderr, '')
  assert.is(r.stdout, 'ready')
  assert.is(r.exitCode, 0)
})

test('a cache directory that cannot be written: the sentence names it and KUBESNAP_TEST_CACHE', async () => {
  // nobody cannot create a directory in /root.
  const cache = '/root/kubesnap-test-unwritable-cache'
  const r = await asNobody(['test/cluster/cli.ts', '--bare'], {KUBESNAP_TEST_CACHE: cache})
  assert.is(r.stderr, `The test cache directory ${cache} cannot be written (EACCES): make it writable, or set KUBESNAP_TEST_CACHE to a directory that is.`)
  assert.is(r.exitCode, 2)
})

test('a failed control-plane build: the sentence names its log, then the last lines', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-setup-'))
  try {
    // A file where build.sh makes its work directory: its `mkdir -p` fails at once, as a real build step would.
    const cache = join(dir, 'cache')
    await mkdir(cache)
    await writeFile(join(cache, 'v1.20.2.build'), '')
    const r = await run(['test/cluster/cli.ts', '--bare'], {KUBESNAP_TEST_CACHE: cache, LC_ALL: 'C'}, {root: true})
    const log = join(cache, 'v1.20.2.build.log')
    assert.equal(r.stderr.split('\n'), [
      `building the v1.20.2 control plane into ${cache}/v1.20.2 (first time only, several minutes; log: ${log})`,
      `Building the control plane failed (exit 1): read ${log}, fix what it says, then run again; its last lines:`,
      `mkdir: cannot create directory '${cache}/v1.20.2.build': File exists`,
    ])
    assert.is(r.exitCode, 2)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test('loopback down: the sentence says to bring lo up, before any component waits for it', async () => {
  const r = await run(['test/cluster/cli.ts', '--bare'], {}, {noLoopback: true})
  assert.is(r.stderr, 'Cannot connect to 127.0.0.1 (ENETUNREACH): the test cluster runs on loopback, so bring the lo interface up (`ip link set lo up`) and allow connections on it.')
  assert.is(r.exitCode, 2)
})

test.run()
