import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {EXTRA_PACKAGES_VARIABLE, PACKAGES, packagesFor, planPreflight, type Command, type DebianPackage, type MachineState, type PreflightPlan} from './packages.js'

const LIST: DebianPackage[] = [
  {name: 'golang-1.19', why: 'builds the control plane', for: ['test', 'demo', 'cluster', 'bench']},
  {name: 'etcd-server', why: "the control plane's store", for: ['test', 'demo', 'cluster', 'bench']},
  {name: 'kubernetes-client', why: 'kubectl', for: ['test', 'bench'], unlessOnPath: 'kubectl'},
  {name: 'age', why: 'the age CLI', for: ['test', 'test:unit']},
  {name: 'time', why: 'peak RSS', for: ['bench']},
]
const ALL = LIST.map((p) => p.name)
const machine = (installed: string[] | undefined, root: boolean, onPath: string[] = ['kubectl']): MachineState =>
  ({installed: installed && new Set(installed), root, onPath: new Set(onPath)})
const without = (...names: string[]) => ALL.filter((n) => !names.includes(n))

const cases: Array<[string, Command, MachineState, PreflightPlan]> = [
  ['everything installed: nothing to do', 'test', machine(ALL, true), {action: 'nothing'}],
  ['as root, one missing: install it, saying why', 'test', machine(without('etcd-server'), true),
    {action: 'install', packages: ['etcd-server'], line: "npm test: installing the Debian packages it needs with apt-get: etcd-server (the control plane's store)"}],
  ['as root, several missing: one install, in list order', 'demo', machine(without('etcd-server', 'golang-1.19'), true),
    {action: 'install', packages: ['golang-1.19', 'etcd-server'], line: "npm run demo: installing the Debian packages it needs with apt-get: golang-1.19 (builds the control plane), etcd-server (the control plane's store)"}],
  ['not root: the exact sudo command, nothing installed', 'test', machine(without('etcd-server', 'age'), false),
    {action: 'stop', message: 'npm test needs Debian packages that are not installed: run `sudo apt-get install -y --no-install-recommends etcd-server age`, then npm test again.'}],
  ['not root, nothing missing: nothing to do', 'cluster', machine(ALL, false), {action: 'nothing'}],
  ['kubectl on PATH: no kubernetes-client', 'test', machine(without('kubernetes-client'), false), {action: 'nothing'}],
  ['no kubectl on PATH: kubernetes-client', 'bench', machine(without('kubernetes-client'), true, []),
    {action: 'install', packages: ['kubernetes-client'], line: 'npm run bench: installing the Debian packages it needs with apt-get: kubernetes-client (kubectl)'}],
  ['only what the command needs: test:unit needs no Go', 'test:unit', machine(['age'], false), {action: 'nothing'}],
  ['only what the command needs: the cluster needs no age or time', 'cluster', machine(without('age', 'time', 'kubernetes-client'), false, []), {action: 'nothing'}],
  ['test:unit with age missing, not root', 'test:unit', machine([], false),
    {action: 'stop', message: 'npm run test:unit needs Debian packages that are not installed: run `sudo apt-get install -y --no-install-recommends age`, then npm run test:unit again.'}],
  ['no dpkg-query: not Debian, say so', 'demo', machine(undefined, true),
    {action: 'stop', message: 'npm run demo needs these Debian packages and this machine has no dpkg-query: golang-1.19 etcd-server; run it on Debian 12 (bookworm), or install their equivalents by hand.'}],
]
for (const [name, command, state, expected] of cases) {
  test(`planPreflight: ${name}`, () => {
    assert.equal(planPreflight(command, LIST, state), expected)
  })
}

test('PACKAGES: each once, with a reason and at least one command', () => {
  const names = PACKAGES.map((p) => p.name)
  assert.equal(names.length, new Set(names).size, 'a package is listed twice')
  for (const p of PACKAGES) {
    assert.ok(p.why.length > 5, `${p.name} has no reason`)
    assert.ok(p.for.length > 0, `${p.name} is needed by no command`)
  }
})

test('PACKAGES: npm test needs what CI used to install before it', () => {
  // The list .ci/run held before the preflight replaced it.
  const before = ['golang-1.19', 'rsync', 'golang-github-modern-go-reflect2-dev', 'dpkg-dev', 'etcd-server', 'busybox-static',
    'openssl', 'util-linux', 'age', 'prometheus-pushgateway', 'kubernetes-client']
  const test = new Set(PACKAGES.filter((p) => p.for.includes('test')).map((p) => p.name))
  for (const name of before) assert.ok(test.has(name), `npm test no longer installs ${name}`)
  assert.ok(PACKAGES.find((p) => p.name === 'time')?.for.includes('bench'))
})

test(`packagesFor: ${EXTRA_PACKAGES_VARIABLE} adds names every command needs`, () => {
  assert.equal(packagesFor({}).map((p) => p.name), PACKAGES.map((p) => p.name))
  const extra = packagesFor({[EXTRA_PACKAGES_VARIABLE]: 'one, two three'}).slice(PACKAGES.length)
  assert.equal(extra.map((p) => p.name), ['one', 'two', 'three'])
  for (const p of extra) assert.equal([...p.for].sort(), ['bench', 'cluster', 'demo', 'test', 'test:unit'])
})

test.run()
