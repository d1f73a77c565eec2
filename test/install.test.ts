/**
 * kubesnap installed as users install CLIs: the project packed with `npm
 * pack`, the tarball installed with `npm install -g` into a temporary prefix,
 * and the installed `kubesnap` run from there, in an empty directory with an
 * empty HOME. Proves the tarball holds the build, `dependencies` hold all the
 * CLI needs, and no dev dependency comes along.
 */
import {mkdir, mkdtemp, readFile, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import yaml from 'js-yaml'
import {test} from 'uvu'
import * as assert from 'uvu/assert'

const root = join(import.meta.dirname, '..')
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {version: string; devDependencies: Record<string, string>}

let dir: string
let tarball: string
let prefix: string
let home: string
let empty: string

/** An environment without what `npm test` adds (npm_config_*, npm_lifecycle_*…), as a user's shell has. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'FORCE_COLOR'))
  return {...env, NO_COLOR: '1', ...extra}
}

/** Runs the installed kubesnap in an empty directory with an empty HOME. */
const kubesnap = (...args: string[]) =>
  execa(join(prefix, 'bin', 'kubesnap'), args, {cwd: empty, env: userEnv({HOME: home}), extendEnv: false, reject: false, timeout: 60_000})

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-install-'))
  prefix = join(dir, 'prefix')
  home = join(dir, 'home')
  empty = join(dir, 'empty')
  await Promise.all([mkdir(home), mkdir(empty)])
  // `npm test` built dist/ just before; --ignore-scripts packs that build rather
  // than rebuilding it under the running suite (plain `npm pack` runs `prepare`, the same build).
  const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {cwd: root, env: userEnv(), extendEnv: false})
  const [info] = JSON.parse(packed.stdout) as Array<{filename: string; files: Array<{path: string}>}>
  tarball = join(dir, info.filename)
  // From the npm cache when it can (npm ci filled it), the registry otherwise.
  await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    {cwd: dir, env: userEnv(), extendEnv: false, timeout: 180_000})
})

test.after(async () => {
  await rm(dir, {recursive: true, force: true})
})

test('the tarball holds the build and the launcher, no sources and no tests', async () => {
  const {stdout} = await execa('tar', ['tzf', tarball])
  const files = stdout.split('\n')
  for (const file of ['package/bin/run.js', 'package/oclif.manifest.json', 'package/dist/commands/snapshot.js', 'package/package.json', 'package/README.md']) {
    assert.ok(files.includes(file), `${file} is not in the tarball`)
  }
  assert.equal(files.filter((f) => /^package\/(src|test|fixtures|bench)\//.test(f) || /\.test\.js$/.test(f)), [])
})

test('the install holds no dev dependency', async () => {
  const installed = new Set(await readdir(join(prefix, 'lib', 'node_modules', 'kubesnap', 'node_modules')))
  // Type packages may come with a runtime dependency (@kubernetes/client-node's own); the rest must not be there.
  const dev = Object.keys(pkg.devDependencies).filter((name) => !name.startsWith('@types/'))
  assert.ok(dev.includes('execa') && dev.includes('typescript'), `devDependencies: ${dev.join(', ')}`)
  assert.equal(dev.filter((name) => installed.has(name)), [])
})

test('kubesnap --version', async () => {
  const r = await kubesnap('--version')
  assert.is(r.exitCode, 0, r.stderr)
  assert.is(r.stdout, `kubesnap/${pkg.version} ${process.platform}-${process.arch} node-${process.version}`)
  assert.is(r.stderr, '')
})

test('kubesnap --help lists every command', async () => {
  const r = await kubesnap('--help')
  assert.is(r.exitCode, 0, r.stderr)
  assert.ok(r.stdout.startsWith("Snapshot and restore one Kubernetes namespace's application state"), r.stdout)
  assert.match(r.stdout, /USAGE\n {2}\$ kubesnap \[COMMAND\]/)
  const listed = [...r.stdout.split('COMMANDS\n')[1].matchAll(/^ {2}(\S+) /gm)].map((m) => m[1])
  const commands = (await readdir(join(root, 'src', 'commands'))).filter((f) => /^[a-z-]+\.ts$/.test(f) && !f.endsWith('.test.ts')).map((f) => f.slice(0, -3))
  assert.equal(listed.filter((c) => c !== 'help').sort(), commands.sort())
  assert.is(r.stderr, '')
})

test('kubesnap rbac -n x prints the ServiceAccount, Role and RoleBinding for namespace x', async () => {
  const r = await kubesnap('rbac', '-n', 'x')
  assert.is(r.exitCode, 0, r.stderr)
  const docs = yaml.loadAll(r.stdout) as Array<{kind: string; metadata: {name: string; namespace: string}}>
  assert.equal(docs.map((d) => [d.kind, d.metadata.name, d.metadata.namespace]),
    [['ServiceAccount', 'kubesnap', 'x'], ['Role', 'kubesnap', 'x'], ['RoleBinding', 'kubesnap', 'x']])
  assert.is(r.stderr, '')
})

test('kubesnap list in an empty directory says there are none', async () => {
  const r = await kubesnap('list')
  assert.is(r.exitCode, 0, r.stderr)
  assert.is(r.stdout, 'No kubesnap archives in ..')
  const json = await kubesnap('list', '--json')
  assert.is(json.exitCode, 0, json.stderr)
  assert.equal(JSON.parse(json.stdout), [])
  // Nothing written where it ran, nor in HOME.
  assert.equal(await readdir(empty), [])
  assert.equal(await readdir(home), [])
})

test.run()
