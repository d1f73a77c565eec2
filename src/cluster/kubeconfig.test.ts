import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import type https from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {KubeConfig} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {AgentPool} from './agents.js'
import {ClientConfig, loadKubeConfig} from './kubeconfig.js'

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

// ClientConfig stands in for client-node's KubeConfig: for every kind of
// credential, both must give a request the same TLS options, headers and agent.
const creds = mkdtempSync(join(dir, 'creds-'))
mkdirSync(join(creds, 'pki'))
writeFileSync(join(creds, 'pki', 'ca.crt'), 'ca from a file')
writeFileSync(join(creds, 'pki', 'client.crt'), 'client cert from a file')
writeFileSync(join(creds, 'pki', 'client.key'), 'client key from a file')
writeFileSync(join(creds, 'token'), 'token-from-a-file')
const b64 = (text: string) => Buffer.from(text).toString('base64')
const execCount = join(creds, 'exec-count')
// An exec credential plugin as EKS/GKE ship them: prints an ExecCredential, valid for an hour.
const credential = JSON.stringify({apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: {token: 'token-from-exec', expirationTimestamp: new Date(Date.now() + 3600_000).toISOString()}})
const execPlugin = {apiVersion: 'client.authentication.k8s.io/v1', command: 'sh', args: ['-c', `echo run >> '${execCount}'; printf '%s' '${credential}'`], interactiveMode: 'Never'}

const credentialCases: {name: string; cluster: Record<string, unknown>; user: Record<string, unknown>}[] = [
  {name: 'bearer token and CA data', cluster: {server: 'https://k.example:6443', 'certificate-authority-data': b64('ca data')}, user: {token: 'static-token'}},
  {name: 'client certificate files relative to the kubeconfig', cluster: {server: 'https://k.example:6443', 'certificate-authority': 'pki/ca.crt'}, user: {'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key'}},
  {name: 'client certificate data', cluster: {server: 'https://k.example:6443'}, user: {'client-certificate-data': b64('cert data'), 'client-key-data': b64('key data')}},
  {name: 'skip TLS verify, TLS server name, impersonation', cluster: {server: 'https://10.0.0.1:6443', 'insecure-skip-tls-verify': true, 'tls-server-name': 'api.internal'}, user: {token: 't', as: 'someone-else'}},
  {name: 'basic auth', cluster: {server: 'https://k.example:6443'}, user: {username: 'admin', password: 'secret'}},
  {name: 'an exec credential plugin', cluster: {server: 'https://k.example:6443', 'certificate-authority-data': b64('ca data')}, user: {exec: execPlugin}},
  {name: 'a token-file auth provider', cluster: {server: 'https://k.example:6443'}, user: {'auth-provider': {name: 'tokenFile', config: {tokenFile: join(creds, 'token')}}}},
  {name: 'plain HTTP with skip TLS verify', cluster: {server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true}, user: {token: 't'}},
  {name: 'an HTTP proxy', cluster: {server: 'https://k.example:6443', 'proxy-url': 'http://proxy.example:3128'}, user: {token: 't'}},
  {name: 'a SOCKS proxy', cluster: {server: 'https://k.example:6443', 'proxy-url': 'socks5://proxy.example:1080'}, user: {token: 't'}},
]

/** What a request gets from a config: comparable across the two implementations. */
async function applied(kc: {applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>}): Promise<Record<string, unknown>> {
  const opts: https.RequestOptions = {}
  await kc.applyToHTTPSOptions(opts)
  const text = (v: unknown) => (v === undefined ? undefined : String(v))
  const agent = opts.agent as (https.Agent & {options?: https.AgentOptions; proxy?: URL}) | undefined
  return {
    headers: opts.headers ?? {}, ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), auth: opts.auth,
    rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername,
    agent: agent?.constructor.name, agentCa: text(agent?.options?.ca), agentCert: text(agent?.options?.cert), agentProxy: text(agent?.proxy),
  }
}

for (const c of credentialCases) {
  test(`kubeconfig: ${c.name} are applied as client-node applies them`, async () => {
    const file = join(creds, `${c.name.replace(/\W+/g, '-')}.yaml`)
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
      clusters: [{name: 'k', cluster: c.cluster}], users: [{name: 'u', user: c.user}], contexts: [{name: 'c', context: {cluster: 'k', user: 'u'}}],
    }))
    const ours = loadKubeConfig({kubeconfig: file}, {}).kc
    const theirs = new KubeConfig()
    theirs.loadFromFile(file)
    const expected = await applied(theirs)
    assert.equal(await applied(ours), expected)
    assert.ok(expected.agent, 'an agent is always set')
  })
}

test('kubeconfig: an exec plugin runs once per config while its credential is valid', async () => {
  const file = join(creds, 'exec-once.yaml')
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{name: 'k', cluster: {server: 'https://k.example:6443'}}], users: [{name: 'u', user: {exec: execPlugin}}], contexts: [{name: 'c', context: {cluster: 'k', user: 'u'}}],
  }))
  writeFileSync(execCount, '')
  const kc = new ClientConfig()
  kc.loadFromFile(file)
  for (let i = 0; i < 3; i++) {
    const opts: https.RequestOptions = {}
    await kc.applyToHTTPSOptions(opts)
    assert.is((opts.headers as Record<string, string>).Authorization, 'Bearer token-from-exec')
  }
  assert.is(readFileSync(execCount, 'utf8'), 'run\n')
})

test('kubeconfig: an AgentPool serves requests with the same TLS options from one keep-alive agent; a new client certificate gets a new one', async () => {
  const file = join(creds, 'agent-reuse.yaml')
  const write = (cert: string) => writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{name: 'k', cluster: {server: 'https://k.example:6443', 'certificate-authority-data': b64('ca data')}}],
    users: [{name: 'u', user: {'client-certificate-data': b64(cert), 'client-key-data': b64('key one')}}],
    contexts: [{name: 'c', context: {cluster: 'k', user: 'u'}}],
  }))
  const pool = new AgentPool({keepAlive: true, maxSockets: 4})
  const agentOf = async (kc: ClientConfig) => {
    const opts: https.RequestOptions = {}
    await kc.applyCredentials(opts)
    return await pool.agentFor(kc.getCurrentCluster(), opts) as https.Agent & {options: https.AgentOptions}
  }
  write('cert one')
  const kc = new ClientConfig()
  kc.loadFromFile(file)
  // Requests that start together share the agent being made.
  const [first, together] = await Promise.all([agentOf(kc), agentOf(kc)])
  assert.is(together, first)
  assert.is(await agentOf(kc), first)
  assert.is(first.options.keepAlive, true)
  assert.is(first.maxSockets, 4)
  // As when an exec plugin hands out a rotated certificate: the old agent's TLS sessions must not serve it.
  write('cert two')
  const rotated = new ClientConfig()
  rotated.loadFromFile(file)
  const second = await agentOf(rotated)
  assert.is.not(second, first)
  assert.is(String(second.options.cert), 'cert two')
  pool.destroy()
})

test('kubeconfig: a plain HTTP server without skip TLS verify is refused as client-node refuses it', async () => {
  const kc = new ClientConfig()
  const file = join(creds, 'http.yaml')
  writeFileSync(file, JSON.stringify({clusters: [{name: 'k', cluster: {server: 'http://127.0.0.1:8080'}}], users: [{name: 'u', user: {token: 't'}}], contexts: [{name: 'c', context: {cluster: 'k', user: 'u'}}], 'current-context': 'c'}))
  kc.loadFromFile(file)
  try {
    await kc.applyToHTTPSOptions({})
    assert.unreachable('should have thrown')
  } catch (err) {
    assert.match((err as Error).message, /HTTP protocol is not allowed when skipTLSVerify is not set/)
  }
})

test('kubeconfig: the in-cluster service account is read as client-node reads it', async () => {
  const root = mkdtempSync(join(dir, 'pod-'))
  const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount')
  mkdirSync(sa, {recursive: true})
  writeFileSync(join(sa, 'ca.crt'), 'in-cluster ca')
  writeFileSync(join(sa, 'token'), 'in-cluster-token')
  writeFileSync(join(sa, 'namespace'), 'shop')
  const env = {KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443'}
  const ours = new ClientConfig()
  ours.loadFromCluster(env, root)
  const theirs = new KubeConfig()
  const saved = {...process.env}
  Object.assign(process.env, env)
  try {
    theirs.loadFromCluster(root)
  } finally {
    for (const key of Object.keys(env)) if (!(key in saved)) delete process.env[key]
    Object.assign(process.env, saved)
  }
  assert.equal(ours.getCurrentCluster(), theirs.getCurrentCluster())
  assert.equal(ours.getContextObject(ours.getCurrentContext()), theirs.getContextObject(theirs.getCurrentContext()))
  assert.equal(await applied(ours), await applied(theirs))
  assert.is((await applied(ours) as {headers: Record<string, string>}).headers.Authorization, 'Bearer in-cluster-token')
})

test.run()
