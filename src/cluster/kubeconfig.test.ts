import {copyFileSync, mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {loadKubeConfig} from './kubeconfig.js'

const dir = mkdtempSync(join(tmpdir(), 'kubesnap-kubeconfig-'))

/** Writes a kubeconfig with one cluster/user per context name. */
function kubeconfig(file: string, contexts: {name: string; server: string; namespace?: string}[], current?: string): string {
  const path = join(dir, file)
  writeFileSync(path, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: contexts.map((c) => ({name: c.name, cluster: {server: c.server}})),
    users: contexts.map((c) => ({name: c.name, user: {token: `token-${c.name}`}})),
    contexts: contexts.map((c) => ({name: c.name, context: {cluster: c.name, user: c.name, namespace: c.namespace}})),
    'current-context': current,
  }))
  return path
}

const a = kubeconfig('a.yaml', [{name: 'prod', server: 'https://prod.example:6443', namespace: 'shop'}, {name: 'dev', server: 'https://dev.example:6443'}], 'prod')
const b = kubeconfig('b.yaml', [{name: 'prod', server: 'https://shadowed.example:6443'}, {name: 'staging', server: 'https://staging.example:6443', namespace: 'qa'}], 'staging')

const cases: {name: string; flags: Parameters<typeof loadKubeConfig>[0]; env?: NodeJS.ProcessEnv; context: string; server: string; namespace: string; source: string}[] = [
  {name: 'current context and its namespace', flags: {kubeconfig: a}, context: 'prod', server: 'https://prod.example:6443', namespace: 'shop', source: 'context'},
  {name: '-n wins over the context namespace', flags: {kubeconfig: a, namespace: 'other'}, context: 'prod', server: 'https://prod.example:6443', namespace: 'other', source: 'flag'},
  {name: '--context picks another context; no namespace means default', flags: {kubeconfig: a, context: 'dev'}, context: 'dev', server: 'https://dev.example:6443', namespace: 'default', source: 'default'},
  {name: 'KUBECONFIG list: first file wins for names and current-context', flags: {}, env: {KUBECONFIG: `${a}:${b}`}, context: 'prod', server: 'https://prod.example:6443', namespace: 'shop', source: 'context'},
  {name: 'KUBECONFIG list: contexts of later files are usable', flags: {context: 'staging'}, env: {KUBECONFIG: `${a}:${b}`}, context: 'staging', server: 'https://staging.example:6443', namespace: 'qa', source: 'context'},
  {name: 'KUBECONFIG list: missing files are skipped', flags: {}, env: {KUBECONFIG: `${join(dir, 'missing')}:${b}`}, context: 'staging', server: 'https://staging.example:6443', namespace: 'qa', source: 'context'},
  {name: '--kubeconfig wins over KUBECONFIG', flags: {kubeconfig: b}, env: {KUBECONFIG: a}, context: 'staging', server: 'https://staging.example:6443', namespace: 'qa', source: 'context'},
  {name: '~/.kube/config when nothing else is set', flags: {}, env: {HOME: homeWith(a)}, context: 'prod', server: 'https://prod.example:6443', namespace: 'shop', source: 'context'},
]

function homeWith(config: string): string {
  const home = mkdtempSync(join(dir, 'home-'))
  mkdirSync(join(home, '.kube'))
  copyFileSync(config, join(home, '.kube', 'config'))
  return home
}

for (const c of cases) {
  test(`kubeconfig: ${c.name}`, () => {
    const loaded = loadKubeConfig(c.flags, c.env ?? {})
    assert.is(loaded.context, c.context)
    assert.is(loaded.server, c.server)
    assert.is(loaded.namespace, c.namespace)
    assert.is(loaded.namespaceSource, c.source)
  })
}

const failures: {name: string; flags: Parameters<typeof loadKubeConfig>[0]; env?: NodeJS.ProcessEnv; message: RegExp}[] = [
  {name: 'a --kubeconfig that does not exist', flags: {kubeconfig: join(dir, 'nope')}, message: /does not exist; check the --kubeconfig path/},
  {name: 'an unknown --context', flags: {kubeconfig: a, context: 'nope'}, message: /context "nope" is not in the kubeconfig \(contexts: prod, dev\)/},
  {name: 'no kubeconfig anywhere', flags: {}, env: {HOME: dir}, message: /No kubeconfig found/},
  {name: 'a file that is not a kubeconfig', flags: {kubeconfig: writeJunk()}, message: /could not be read/},
]

function writeJunk(): string {
  const path = join(dir, 'junk.yaml')
  writeFileSync(path, 'clusters: [: not yaml')
  return path
}

for (const f of failures) {
  test(`kubeconfig refuses ${f.name} with a usage error`, () => {
    try {
      loadKubeConfig(f.flags, f.env ?? {})
      assert.unreachable('should have thrown')
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.match((err as Error).message, f.message)
      assert.is((err as KubesnapError).exitCode, 2)
    }
  })
}

test.run()
