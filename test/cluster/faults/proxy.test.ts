/**
 * The fault proxy in front of the real v1.20.2 apiserver: faults look like the
 * apiserver's own (Status bodies, Retry-After), everything else passes through
 * untouched — plain requests, watch streams, WebSocket upgrades, kubectl, pod
 * exec — and every request is counted.
 *
 *   cd /work/main && node --import tsx test/cluster/faults/proxy.test.ts
 */
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import type {IncomingHttpHeaders} from 'node:http'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import {createInterface} from 'node:readline'
import {ApiException, CoreV1Api, KubeConfig} from '@kubernetes/client-node'
import {execa} from 'execa'
import yaml from 'js-yaml'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import WebSocket from 'ws'
import {issueCert, sharedCluster, type TestCluster} from '../index.js'
import {type FaultProxy, startFaultProxy, withProxy} from './proxy.js'
import {waitFor} from '../wait.js'

let cluster: TestCluster
let proxy: FaultProxy
let proxied: string
let scratch: string
let ns: string

test.before(async () => {
  cluster = await sharedCluster()
  scratch = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-proxy-test-'))
  proxy = await startFaultProxy({target: cluster.server, caCertFile: await clusterCaFile()})
  proxied = await withProxy(cluster.kubeconfigs.admin, proxy.url)
  ns = await cluster.createNamespace({prefix: 'faults', bindUser: false})
})

test.before.each(() => proxy.reset())

test.after(async () => {
  await proxy?.stop()
  if (ns) await cluster.deleteNamespace(ns)
  await rm(scratch, {recursive: true, force: true})
})

test('passes requests through and counts them', async () => {
  const api = client().makeApiClient(CoreV1Api)
  const list = await api.listNamespace()
  assert.ok(list.items.some((n) => n.metadata?.name === 'default'))
  await api.readNamespace({name: ns})
  assert.is(proxy.requests, 2)
  assert.equal(proxy.log.map(({method, path, status}) => ({method, path, status})), [
    {method: 'GET', path: '/api/v1/namespaces', status: 200},
    {method: 'GET', path: `/api/v1/namespaces/${ns}`, status: 200},
  ])
  // Real errors pass through too.
  const err = await api.readNamespace({name: 'no-such-namespace'}).catch((e: unknown) => e)
  assert.instance(err, ApiException)
  assert.is((err as ApiException<unknown>).code, 404)
})

test('429 with Retry-After and a TooManyRequests Status, then passes', async () => {
  proxy.addRule({method: 'GET', pathPattern: /^\/api\/v1\/namespaces$/, status: 429, times: 1, retryAfterSeconds: 3})
  const first = await get('/api/v1/namespaces')
  assert.is(first.status, 429)
  assert.is(first.headers['retry-after'], '3')
  assert.is(first.headers['content-type'], 'application/json')
  assert.equal(JSON.parse(first.body), {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: 'Too many requests, please try again later.', reason: 'TooManyRequests', details: {retryAfterSeconds: 3}, code: 429,
  })
  const second = await get('/api/v1/namespaces')
  assert.is(second.status, 200)
  assert.equal(proxy.log.map((e) => [e.status, e.faulted]), [[429, true], [200, false]])
})

test('kubectl waits out 429s (client-go honours Retry-After) and succeeds', async () => {
  proxy.addRule({method: 'GET', pathPattern: /^\/api\/v1\/namespaces$/, status: 429, times: 2, retryAfterSeconds: 1})
  const started = Date.now()
  const {stdout} = await execa('kubectl', ['--kubeconfig', proxied, 'get', 'namespaces', '-o', 'name'])
  assert.ok(stdout.split('\n').includes('namespace/default'), stdout)
  assert.ok(Date.now() - started >= 2000, 'two Retry-After: 1 waits')
  assert.equal(proxy.log.filter((e) => e.path === '/api/v1/namespaces').map((e) => e.status), [429, 429, 200])
})

test('500 on a chosen path only, with an InternalError Status the client surfaces', async () => {
  proxy.addRule({pathPattern: /\/configmaps$/, status: 500})
  const api = client().makeApiClient(CoreV1Api)
  const err = await api.listNamespacedConfigMap({namespace: ns}).catch((e: unknown) => e)
  assert.instance(err, ApiException)
  assert.is((err as ApiException<string>).code, 500)
  const body = JSON.parse((err as ApiException<string>).body) as {reason: string; code: number}
  assert.is(body.reason, 'InternalError')
  assert.is(body.code, 500)
  await api.listNamespacedSecret({namespace: ns})
  assert.equal(proxy.log.map((e) => e.status), [500, 200])
})

test('a method filter: a POST rule leaves GETs alone', async () => {
  proxy.addRule({method: 'POST', pathPattern: /\/configmaps$/, status: 503, retryAfterSeconds: 2})
  const api = client().makeApiClient(CoreV1Api)
  await api.listNamespacedConfigMap({namespace: ns})
  const err = await api.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'refused'}}}).catch((e: unknown) => e) as ApiException<string>
  assert.is(err.code, 503)
  assert.is(JSON.parse(err.body).reason, 'ServiceUnavailable')
  assert.is(err.headers['retry-after'], '2')
  assert.equal(proxy.log.map((e) => `${e.method} ${e.status}`), ['GET 200', 'POST 503'])
})

test('forward: the apiserver applies the write, the client gets the 503 instead of its answer', async () => {
  proxy.addRule({method: 'POST', pathPattern: /\/configmaps$/, status: 503, forward: true, times: 1})
  const api = client().makeApiClient(CoreV1Api)
  const err = await api.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'applied-answer-lost'}, data: {a: 'b'}}}).catch((e: unknown) => e) as ApiException<string>
  assert.is(err.code, 503)
  const live = await api.readNamespacedConfigMap({namespace: ns, name: 'applied-answer-lost'})
  assert.equal(live.data, {a: 'b'}, 'created although the client was told 503')
  assert.equal(proxy.log.map((e) => `${e.method} ${e.status} ${e.faulted}`), ['POST 503 true', 'GET 200 false'])
})

test('latency is added to the requests a rule hits, and only `times` of them', async () => {
  proxy.addRule({pathPattern: /^\/api\/v1\/namespaces\/[^/]+$/, latencyMs: 600, times: 1})
  const api = client().makeApiClient(CoreV1Api)
  let started = Date.now()
  await api.readNamespace({name: ns})
  const slow = Date.now() - started
  started = Date.now()
  await api.readNamespace({name: ns})
  const fast = Date.now() - started
  assert.ok(slow >= 600, `delayed: ${slow} ms`)
  // Loose on purpose (a loaded CI machine); the log below says exactly which request was delayed.
  assert.ok(fast < slow, `not delayed: ${fast} ms`)
  assert.equal(proxy.log.map((e) => [e.status, e.faulted]), [[200, true], [200, false]])
})

test('kubectl get ns works through the proxy', async () => {
  const {stdout} = await execa('kubectl', ['--kubeconfig', proxied, 'get', 'ns'])
  assert.match(stdout, /^NAME\s+STATUS\s+AGE/)
  assert.match(stdout, new RegExp(`^${ns}\\s+Active`, 'm'))
  assert.ok(proxy.requests >= 1)
  assert.ok(proxy.log.some((e) => e.method === 'GET' && e.path === '/api/v1/namespaces' && e.status === 200))
})

test('a watch streams events through the proxy as they happen', async () => {
  const events: string[] = []
  const options = await requestOptions()
  const req = https.get(new URL(`/api/v1/namespaces/${ns}/configmaps?watch=1`, proxy.url), options)
  try {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject))
    assert.is(res.statusCode, 200)
    const lines = createInterface({input: res})
    // Destroying the request at the end aborts the stream: expected.
    lines.on('error', () => {})
    const seen = new Promise<void>((resolve) => lines.on('line', (line) => {
      const event = JSON.parse(line) as {type: string; object: {metadata: {name: string}}}
      events.push(`${event.type} ${event.object.metadata.name}`)
      if (event.object.metadata.name === 'watched') resolve()
    }))
    // Create only after the watch is open: the event must come down the open stream.
    await client().makeApiClient(CoreV1Api).createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'watched'}}})
    await withTimeout(seen, 10_000, 'the ADDED event')
    assert.ok(events.includes('ADDED watched'), events.join(', '))
  } finally {
    req.destroy()
  }
  const watch = proxy.log.find((e) => e.query === 'watch=1')
  assert.is(watch?.status, 200)
})

test('WebSocket upgrades are spliced through (the apiserver watch over WebSocket)', async () => {
  const options = await requestOptions()
  const ws = new WebSocket(`${proxy.url.replace('https', 'wss')}/api/v1/namespaces/${ns}/configmaps?watch=1`, {
    // The 1.20 apiserver's watch over WebSocket (golang.org/x/net/websocket) answers 403 without an Origin.
    ca: options.ca as Buffer, headers: options.headers as Record<string, string>, origin: proxy.url,
  })
  try {
    await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 10_000, 'the WebSocket to open')
    const message = new Promise<string>((resolve) => ws.on('message', (data) => {
      const text = data.toString()
      if (text.includes('"ws-watched"')) resolve(text)
    }))
    await client().makeApiClient(CoreV1Api).createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'ws-watched'}}})
    const event = JSON.parse(await withTimeout(message, 10_000, 'the event over WebSocket')) as {type: string}
    assert.is(event.type, 'ADDED')
  } finally {
    ws.close()
  }
  assert.ok(proxy.log.some((e) => e.query === 'watch=1' && e.status === 101), JSON.stringify(proxy.log))
})

test('faults apply to upgrades too: a 429 instead of the WebSocket', async () => {
  proxy.addRule({pathPattern: /\/configmaps$/, status: 429, times: 1})
  const options = await requestOptions()
  const ws = new WebSocket(`${proxy.url.replace('https', 'wss')}/api/v1/namespaces/${ns}/configmaps?watch=1`, {
    ca: options.ca as Buffer, headers: options.headers as Record<string, string>, origin: proxy.url,
  })
  ws.on('error', () => {}) // terminating before the handshake completed is reported as an error
  const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  ws.terminate()
  assert.is(status, 429)
})

test('kubectl exec through the proxy (when the shared cluster runs a node)', async () => {
  if (!cluster.nodeName) {
    console.log('  (no node in the shared cluster: exec not tried)')
    return
  }
  const api = cluster.admin().makeApiClient(CoreV1Api)
  await api.createNamespacedPod({namespace: ns, body: {
    metadata: {name: 'shell'},
    spec: {containers: [{name: 'main', image: 'busybox:1.36', command: ['sleep', 'infinity']}], terminationGracePeriodSeconds: 0},
  }})
  await waitFor('pod shell to be Ready', async () => {
    const pod = await api.readNamespacedPod({namespace: ns, name: 'shell'})
    return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
  })
  proxy.reset()
  const {stdout} = await execa('kubectl', ['--kubeconfig', proxied, '-n', ns, 'exec', '-i', 'shell', '--', 'sh', '-c', 'cat; echo done'], {input: 'through the proxy\n'})
  assert.is(stdout, 'through the proxy\ndone')
  assert.ok(proxy.log.some((e) => e.path === `/api/v1/namespaces/${ns}/pods/shell/exec` && e.status === 101), JSON.stringify(proxy.log))
})

test('a client certificate in the kubeconfig is presented upstream on its behalf', async () => {
  // The cluster's CA lives in its state directory (controlplane.ts); without its key there is no client cert to make.
  const caFile = path.join(cluster.dir, 'pki', 'ca.crt')
  const caKey = path.join(cluster.dir, 'pki', 'ca.key')
  if (!(await readFile(caKey).then(() => true, () => false))) {
    console.log(`  (no CA key at ${caKey}: client certificates not tried)`)
    return
  }
  const issued = await issueCert({dir: scratch, certFile: caFile, keyFile: caKey}, {name: 'proxy-cert-user', cn: 'proxy-cert-user', organizations: ['system:masters'], usage: 'client'})
  const kubeconfig = path.join(scratch, 'cert-user.kubeconfig')
  await writeFile(kubeconfig, yaml.dump({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{name: 'k', cluster: {server: cluster.server, 'certificate-authority': caFile}}],
    users: [{name: 'u', user: {'client-certificate': issued.certFile, 'client-key': issued.keyFile}}],
    contexts: [{name: 'c', context: {cluster: 'k', user: 'u'}}],
  }))
  const viaProxy = await withProxy(kubeconfig, proxy)
  const {stdout} = await execa('kubectl', ['--kubeconfig', viaProxy, 'get', 'namespace', ns, '-o', 'name'])
  assert.is(stdout, `namespace/${ns}`)
})

test('the apiserver is verified: with the wrong CA the client gets a 502 Status, not a silent pass', async () => {
  const wrong = await startFaultProxy({target: cluster.server, caCertFile: proxy.caCertFile})
  try {
    const options = await requestOptions()
    const res = await new Promise<{status: number; body: string}>((resolve, reject) => {
      https.get(new URL('/api/v1/namespaces', wrong.url), options, (r) => {
        let body = ''
        r.on('data', (c: Buffer) => (body += c))
        r.on('end', () => resolve({status: r.statusCode ?? 0, body}))
      }).on('error', reject)
    })
    assert.is(res.status, 502)
    assert.match(JSON.parse(res.body).message, /apiserver unreachable/)
  } finally {
    await wrong.stop()
  }
})

test('reset drops rules, the log and the count', async () => {
  proxy.addRule({pathPattern: /.*/, status: 500})
  await get('/api/v1/namespaces')
  assert.is(proxy.requests, 1)
  proxy.reset()
  assert.is(proxy.requests, 0)
  assert.equal(proxy.log, [])
  assert.is((await get('/api/v1/namespaces')).status, 200)
})

test.run()

// ----- helpers -----

function client(): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromFile(proxied)
  return kc
}

/** The cluster CA as a file: the admin kubeconfig's, wherever it keeps it. */
async function clusterCaFile(): Promise<string> {
  const kc = cluster.admin()
  const current = kc.getCurrentCluster()!
  if (current.caFile) return path.resolve(path.dirname(cluster.kubeconfigs.admin), current.caFile)
  const file = path.join(scratch, 'cluster-ca.crt')
  await writeFile(file, Buffer.from(current.caData!, 'base64'))
  return file
}

/** TLS and auth options of the proxied admin kubeconfig, for raw requests. */
async function requestOptions(): Promise<https.RequestOptions> {
  const options: https.RequestOptions = {}
  await client().applyToHTTPSOptions(options)
  return {ca: options.ca ?? (await readFile(proxy.caCertFile)), headers: options.headers}
}

/** A raw GET through the proxy as the admin. */
async function get(urlPath: string): Promise<{status: number; headers: IncomingHttpHeaders; body: string}> {
  const options = await requestOptions()
  return new Promise((resolve, reject) => {
    https.get(new URL(urlPath, proxy.url), options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body}))
    }).on('error', reject)
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ])
}
