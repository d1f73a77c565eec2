/**
 * What the CLI loads. Commands that read archives must not import
 * @kubernetes/client-node at all, and commands that talk to the cluster must
 * not import its generated API (≈65 MiB of RSS, for nothing kubesnap calls):
 * asserted on the module graph of real runs, not on a timed or RSS figure.
 * The cluster runs go through an exec credential plugin and a client
 * certificate, so those credentials are proven against the real API server.
 */
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import yaml from 'js-yaml'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/index.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {issueCert} from './cluster/pki.js'
import {kubesnap, type CliResult} from './helpers/cli.js'

const HOOK = join(import.meta.dirname, 'helpers', 'module-log.mjs')
const CLIENT_NODE = '/node_modules/@kubernetes/client-node/'

let cluster: TestCluster
let ns: string
let dir: string
let archive: string

test.before(async () => {
  cluster = await sharedCluster()
  ns = await cluster.createNamespace({prefix: 'graph'})
  dir = mkdtempSync(join(tmpdir(), 'kubesnap-graph-'))
  const admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  try {
    await admin.post(`/api/v1/namespaces/${ns}/secrets`, {metadata: {name: 'db'}, stringData: {password: 'hunter2'}})
    await admin.post(`/api/v1/namespaces/${ns}/configmaps`, {metadata: {name: 'app'}, data: {mode: 'light'}})
  } finally {
    admin.close()
  }
})

/** Runs kubesnap with every loaded module recorded; returns the result and the client-node modules among them. */
async function run(args: string[]): Promise<{r: CliResult; clientNode: string[]}> {
  const log = join(mkdtempSync(join(dir, 'log-')), 'modules')
  writeFileSync(log, '')
  const r = await kubesnap(args, {env: {NODE_OPTIONS: `--import=${HOOK}`, KUBESNAP_MODULE_LOG: log}})
  const modules = readFileSync(log, 'utf8').split('\n').filter(Boolean)
  assert.ok(modules.some((url) => url.endsWith('/bin/run.js')), `the module log recorded the run: ${modules.length} modules`)
  return {r, clientNode: modules.filter((url) => url.includes(CLIENT_NODE)).map((url) => url.slice(url.indexOf(CLIENT_NODE) + CLIENT_NODE.length))}
}

/** A kubeconfig for the namespace-only user's cluster with another `user` entry. */
function kubeconfigWith(name: string, user: Record<string, unknown>): string {
  const config = yaml.load(readFileSync(cluster.kubeconfigs.user, 'utf8')) as {users: {name: string; user: Record<string, unknown>}[]}
  config.users = config.users.map((u) => ({name: u.name, user}))
  const file = join(dir, `${name}.kubeconfig`)
  writeFileSync(file, yaml.dump(config), {mode: 0o600})
  return file
}

/** The namespace-only user's bearer token, from its kubeconfig. */
function userToken(): string {
  const config = yaml.load(readFileSync(cluster.kubeconfigs.user, 'utf8')) as {users: {user: {token: string}}[]}
  return config.users[0].user.token
}

test('snapshot through an exec credential plugin: client-node authenticates, its generated API is never loaded', async () => {
  const credential = JSON.stringify({apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: {token: userToken()}})
  const kubeconfig = kubeconfigWith('exec', {exec: {apiVersion: 'client.authentication.k8s.io/v1', command: 'sh', args: ['-c', `printf '%s' '${credential}'`], interactiveMode: 'Never'}})
  const {r, clientNode} = await run(['snapshot', '-n', ns, '-o', dir, '--kubeconfig', kubeconfig, '--json'])
  assert.is(r.code, 0, r.stderr)
  archive = r.json.path
  assert.ok(r.json.objects >= 2, `${r.json.objects} objects`)
  assert.ok(clientNode.includes('dist/exec_auth.js'), `client-node's exec authenticator ran: ${clientNode.join(', ')}`)
  assert.equal(clientNode.filter((m) => m.startsWith('dist/gen/') || m === 'dist/index.js' || m === 'dist/config.js'), [])
})

test('check with a client certificate: accepted by the API server, nothing of client-node loaded but its entry parser', async () => {
  const cert = await issueCert({dir: mkdtempSync(join(dir, 'pki-')), certFile: cluster.pki.ca.certFile, keyFile: cluster.pki.ca.keyFile}, {name: 'graph-user', cn: cluster.userName, usage: 'client'})
  const kubeconfig = kubeconfigWith('cert', {'client-certificate': cert.certFile, 'client-key': cert.keyFile})
  const {r, clientNode} = await run(['check', '-n', ns, '--kubeconfig', kubeconfig, '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.ok(r.json.types.some((t: {name: string; canList: boolean}) => t.name === 'secrets' && t.canList), 'the certificate is the namespace-only user')
  assert.equal(clientNode, ['dist/config_types.js'])
})

test('list, inspect, verify, --version and --help load nothing of client-node', async () => {
  for (const args of [['list', dir], ['inspect', archive, '--json'], ['verify', archive], ['--version'], ['--help'], ['snapshot', '--help']]) {
    const {r, clientNode} = await run(args)
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.equal(clientNode, [], `kubesnap ${args.join(' ')} loaded client-node`)
  }
})

test.run()
