/**
 * The preflight (test/cluster/packages.ts) for real: each command run as a
 * user who is not root (nobody, through setpriv), on this machine's dpkg
 * database, with one package added that is surely not installed
 * (KUBESNAP_TEST_EXTRA_PACKAGES, test-only). Each must stop before starting
 * anything with exit code 2 and the exact sudo sentence, no stack trace.
 * Nothing is ever installed or removed here.
 */
import {join} from 'node:path'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {EXTRA_PACKAGES_VARIABLE} from './cluster/packages.js'

const root = join(import.meta.dirname, '..')
const ABSENT = 'kubesnap-absent-test-package'
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']

/** Runs `node --import tsx ARGS` in the project as nobody. */
function asNobody(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'KUBESNAP_TEST_CLUSTER' && key !== EXTRA_PACKAGES_VARIABLE))
  return execa('setpriv', [...NOBODY, process.execPath, '--import', 'tsx', ...args],
    {cwd: root, env: {...clean, NO_COLOR: '1', FORCE_COLOR: undefined, ...env}, extendEnv: false, reject: false, timeout: 60_000})
}

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

test.run()
