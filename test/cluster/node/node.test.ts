/**
 * Tests of the project's node. First the pieces on their own (fault switches,
 * URL and status helpers, the exec server with a real chroot, no cluster);
 * then the node against the real control plane, through the real apiserver,
 * with kubectl and @kubernetes/client-node as clients.
 *
 * The cluster tests start a node of their own next to the shared cluster's
 * (tainted, so only these tests' pods land on it), because faults and
 * v4-only mode are switched on the agent object, in this process.
 *
 *   cd /work/main && node --import tsx test/cluster/node/node.test.ts
 */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {PassThrough, Writable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import {Exec, type V1Status} from '@kubernetes/client-node'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import WebSocket from 'ws'
import {sharedCluster, type TestCluster} from '../index.js'
import {createPki, issueCert, type Pki} from '../pki.js'
import type {ApiClient} from './api.js'
import {buildContainerInit, mountScript, prepareMountPoints, type ContainerSandbox} from './container.js'
import {expand} from './env.js'
import {chooseProtocol, exitStatus, parseExecUrl, selectLogLines, startExecServer, V4, V5, type ExecServer} from './exec-server.js'
import {ExecFaults} from './faults.js'
import {startNode, type NodeAgent} from './index.js'
import {PodManager} from './pods.js'
import {buildImages, createContainerRootfs, hasExecutable, type Images} from './rootfs.js'
import {ROOT_IDENTITY} from './security.js'
import {safeRelative} from './volumes.js'
import {waitFor} from '../wait.js'

// ---------------------------------------------------------------------------
// Pure pieces

test('faults: node-wide switches apply to every pod until reset', () => {
  const faults = new ExecFaults()
  faults.cutAfterBytes = 10
  assert.equal(faults.take('a'), {cutAfterBytes: 10})
  assert.equal(faults.take('b'), {cutAfterBytes: 10})
  faults.reset()
  assert.equal(faults.take('a'), {})
})

test('faults: a pod scope wins over the node-wide one and `execs` limits it', () => {
  const faults = new ExecFaults()
  faults.slowWriterBytesPerSec = 100
  const pod = faults.forPod('db-0')
  pod.slowWriterBytesPerSec = 5
  pod.dropStatus = true
  pod.execs = 2
  assert.equal(faults.take('web-0'), {slowWriterBytesPerSec: 100})
  assert.equal(faults.take('db-0'), {slowWriterBytesPerSec: 5, dropStatus: true})
  assert.equal(faults.take('db-0'), {slowWriterBytesPerSec: 5, dropStatus: true})
  assert.equal(faults.take('db-0'), {slowWriterBytesPerSec: 100}, 'the pod scope is used up after two execs')
})

test('parseExecUrl reads the query the apiserver forwards', () => {
  const route = parseExecUrl('/exec/ns1/pod-0/main?command=sh&command=-c&command=echo+a%20b&input=1&output=1&error=1')
  assert.equal(route, {namespace: 'ns1', pod: 'pod-0', container: 'main', command: ['sh', '-c', 'echo a b'], stdin: true, stdout: true, stderr: true, tty: false})
  assert.is(parseExecUrl('/exec/ns1/pod-0/3f2a-uid/main?command=ls')?.container, 'main', 'the UID form')
  assert.is(parseExecUrl('/containerLogs/ns1/pod-0/main'), undefined)
})

test('chooseProtocol prefers v5 unless the node is v4-only', () => {
  assert.is(chooseProtocol(new Set([V5, V4]), false), V5)
  assert.is(chooseProtocol(new Set([V5, V4]), true), V4)
  assert.is(chooseProtocol(new Set([V5]), true), false, 'kubectl offers only v5: a v4-only node refuses it')
  assert.is(chooseProtocol(new Set(['channel.k8s.io']), false), false)
})

test('exitStatus has the shape kubectl and client-node parse', () => {
  assert.equal(exitStatus(0, ['true']), {metadata: {}, status: 'Success'})
  const failed = exitStatus(3, ['sh', '-c', 'exit 3']) as {status: string; reason: string; details: {causes: unknown[]}}
  assert.is(failed.status, 'Failure')
  assert.is(failed.reason, 'NonZeroExitCode')
  assert.equal(failed.details.causes, [{reason: 'ExitCode', message: '3'}])
})

test('selectLogLines honours tailLines and limitBytes', () => {
  const log = Buffer.from('a\nb\nc\n')
  assert.is(selectLogLines(log, new URLSearchParams()).toString(), 'a\nb\nc\n')
  assert.is(selectLogLines(log, new URLSearchParams('tailLines=2')).toString(), 'b\nc\n')
  assert.is(selectLogLines(log, new URLSearchParams('limitBytes=3')).toString(), 'a\nb')
})

test('safeRelative refuses paths that leave a volume', () => {
  assert.is(safeRelative('a/b/../c'), 'a/c')
  for (const bad of ['../x', '/etc/passwd', 'a/../../x', '..']) assert.throws(() => safeRelative(bad), /leaves its volume/, bad)
})

test('expand resolves $(VAR) like the kubelet', () => {
  assert.is(expand('$(A)-$(B)-$$(A)', {A: '1'}), '1-$(B)-$(A)')
})

test('mountScript binds volumes (read-only by remount) and enters the root with env and identity', () => {
  const sandbox = {rootfs: '/r', mounts: [{source: "/v/it's", mountPath: '/data', readOnly: true}], env: {A: 'b c'}, workingDir: '/w', hostname: 'h', identity: ROOT_IDENTITY, init: '/c/init'}
  const script = mountScript(sandbox)
  assert.match(script, `mount --bind '/v/it'\\''s' '/r/data'\nmount -o remount,bind,ro '/r/data'`)
  assert.match(script, `exec env -i 'PATH=`)
  assert.match(script, `'HOME=/root' 'A=b c' '/c/init' --root='/r' --wd='/w' --uid=0 --gid=0 --groups=0 --caps=a80425fb -- "$@"`)
  assert.not.match(script, 'no-new-privs')
  assert.match(script, `mount --bind '/r' '/r'\n`)
  assert.not.match(script, `mount -o remount,bind,ro '/r'\n`)
  const hardened = mountScript({...sandbox, identity: {...ROOT_IDENTITY, uid: 1000, groups: [0, 2000], capabilities: [], noNewPrivs: true, readOnlyRootFilesystem: true, home: '/'}})
  assert.match(hardened, `--uid=1000 --gid=0 --groups=0,2000 --caps=0 --no-new-privs -- "$@"`)
  assert.ok(hardened.indexOf(`mount -o remount,bind,ro '/r'\n`) < hardened.indexOf(`'/r/data'`), 'the root turns read-only before the volumes go on top')
})

// ---------------------------------------------------------------------------
// The exec server with real chroots, no cluster: a ws client with a client cert of our own CA

interface Direct {
  dir: string
  pki: Pki
  images: Images
  server: ExecServer
  faults: ExecFaults
  v4Only: boolean
  sandboxes: Map<string, ContainerSandbox & {image: string}>
  clientTls: {ca: Buffer; cert: Buffer; key: Buffer}
}

let direct: Promise<Direct> | undefined

/** An exec server on its own, serving containers `busybox`, `distroless` and `readonly` of pod `p`. */
function directServer(): Promise<Direct> {
  direct ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-node-unit-'))
    const pki = await createPki(path.join(dir, 'pki'))
    const serving = await issueCert(pki.ca, {name: 'node', cn: 'node', sans: {ip: ['127.0.0.1']}, usage: 'server'})
    const client = await issueCert(pki.ca, {name: 'apiserver', cn: 'apiserver', usage: 'client'})
    const [images, init] = await Promise.all([buildImages(path.join(dir, 'images')), buildContainerInit()])
    const volume = path.join(dir, 'volume')
    await mkdir(path.join(volume, 'sub'), {recursive: true})
    await writeFile(path.join(volume, 'sub', 'hello'), 'hello from the volume\n')
    const sandboxes = new Map<string, ContainerSandbox & {image: string}>()
    for (const [name, image, readOnly] of [['busybox', 'busybox:1.36', false], ['distroless', 'gcr.io/distroless/static', false], ['readonly', 'busybox', true]] as const) {
      const rootfs = path.join(dir, 'containers', name)
      await createContainerRootfs(images, image, rootfs, 'p')
      const sandbox = {image, rootfs, env: {GREETING: 'hi there'}, workingDir: '/data', hostname: 'p', identity: ROOT_IDENTITY, init,
        mounts: [{source: volume, mountPath: '/data', readOnly}, {source: path.join(volume, 'sub'), mountPath: '/sub', readOnly}]}
      await prepareMountPoints(sandbox)
      sandboxes.set(name, sandbox)
    }
    const state: Direct = {dir, pki, images, faults: new ExecFaults(), v4Only: false, sandboxes, server: undefined as unknown as ExecServer,
      clientTls: {ca: await readFile(pki.ca.certFile), cert: await readFile(client.certFile), key: await readFile(client.keyFile)}}
    state.server = await startExecServer({
      cert: await readFile(serving.certFile), key: await readFile(serving.keyFile), ca: await readFile(pki.ca.certFile),
      faults: state.faults, v4Only: () => state.v4Only, log: () => {},
      containers: {
        findContainer: (_ns, pod, container) => {
          const sandbox = pod === 'p' ? sandboxes.get(container) : undefined
          return sandbox && {podName: pod, image: sandbox.image, sandbox, logFile: path.join(dir, 'log'), processes: new Set()}
        },
      },
    })
    return state
  })()
  return direct
}

interface RawExecResult {
  protocol: string
  stdout: string
  stderr: string
  status?: {status: string; details?: {causes?: Array<{message: string}>}}
  closeCode: number
}

/** Runs `command` in container `container` of the direct server with a raw ws client; `stdin` is sent then closed (v5) or the socket closed (v4 with `closeOnEnd`). */
async function rawExec(container: string, command: string[], opts: {stdin?: Buffer; protocols?: string[]; closeAfterStdinMs?: number} = {}): Promise<RawExecResult> {
  const d = await directServer()
  const query = [...command.map((c) => `command=${encodeURIComponent(c)}`), 'output=1', 'error=1', ...(opts.stdin ? ['input=1'] : [])].join('&')
  const ws = new WebSocket(`wss://127.0.0.1:${d.server.port}/exec/ns/p/${container}?${query}`, opts.protocols ?? [V5, V4], d.clientTls)
  const result: RawExecResult = {protocol: '', stdout: '', stderr: '', closeCode: 0}
  ws.on('open', () => {
    result.protocol = ws.protocol
    if (!opts.stdin) return
    ws.send(Buffer.concat([Buffer.from([0]), opts.stdin]))
    if (opts.closeAfterStdinMs !== undefined) setTimeout(() => ws.close(), opts.closeAfterStdinMs)
    else ws.send(Buffer.from([255, 0]))
  })
  ws.on('message', (data: Buffer) => {
    const text = data.subarray(1).toString()
    if (data[0] === 1) result.stdout += text
    if (data[0] === 2) result.stderr += text
    if (data[0] === 3) result.status = JSON.parse(text)
  })
  result.closeCode = await new Promise<number>((resolve, reject) => {
    ws.on('close', resolve)
    ws.on('error', reject)
  })
  return result
}

test('exec server: v5 runs the command in the chroot with its env, volume and working dir', async () => {
  const r = await rawExec('busybox', ['sh', '-c', 'echo "$GREETING"; pwd; cat sub/hello; cat /sub/hello; ls /bin/tar; hostname'])
  assert.is(r.protocol, V5)
  assert.is(r.stdout, 'hi there\n/data\nhello from the volume\nhello from the volume\n/bin/tar\np\n')
  assert.is(r.status?.status, 'Success')
  assert.is(r.closeCode, 1000)
})

test('exec server: v5 [255, 0] ends stdin, and a non-zero exit is a NonZeroExitCode status', async () => {
  const data = randomBytes(300_000)
  const r = await rawExec('busybox', ['sh', '-c', 'sha256sum; exit 7'], {stdin: data})
  assert.is(r.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'))
  assert.is(r.status?.status, 'Failure')
  assert.is(r.status?.details?.causes?.[0]?.message, '7')
})

test('exec server: on v4 the client closing the socket kills the command (no status)', async () => {
  const d = await directServer()
  const marker = path.join(d.dir, 'volume', 'v4-marker')
  const started = Date.now()
  const r = await rawExec('busybox', ['sh', '-c', 'cat >/dev/null; touch /data/v4-marker'], {stdin: Buffer.from('x'), protocols: [V4], closeAfterStdinMs: 200})
  assert.is(r.protocol, V4)
  assert.is(r.status, undefined)
  await sleep(300)
  await assert.not.ok(await exists(marker), 'cat never saw EOF: the command was killed, not ended')
  assert.ok(Date.now() - started < 5000)
})

test('exec server: a client that stops reading stops the command (bounded memory), then gets every byte', async () => {
  const d = await directServer()
  const size = 100 << 20
  const ws = new WebSocket(`wss://127.0.0.1:${d.server.port}/exec/ns/p/busybox?command=head&command=-c&command=${size}&command=/dev/zero&output=1&error=1`, [V5], d.clientTls)
  let bytes = 0
  let status = ''
  ws.on('message', (data: Buffer) => {
    if (data[0] === 1) bytes += data.length - 1
    if (data[0] === 3) status = JSON.parse(data.subarray(1).toString()).status
  })
  await new Promise((resolve) => ws.once('open', resolve))
  ws.pause()
  const before = process.memoryUsage().arrayBuffers
  await sleep(1500)
  const grown = process.memoryUsage().arrayBuffers - before
  assert.ok(grown < 32 << 20, `buffers grew by ${(grown / 1e6).toFixed(1)} MB while the client read nothing`)
  const resumed = process.hrtime.bigint()
  ws.resume()
  await new Promise((resolve) => ws.once('close', resolve))
  const seconds = Number(process.hrtime.bigint() - resumed) / 1e9
  assert.is(bytes, size)
  assert.is(status, 'Success')
  console.log(`    direct (no apiserver): ${size / 1e6} MB in ${seconds.toFixed(2)} s, ${(size / 1e6 / seconds).toFixed(0)} MB/s; buffers grew ${(grown / 1e6).toFixed(1)} MB while paused`)
})

test('exec server: a distroless image has no tar and no sh (exit 126, runtime message)', async () => {
  for (const program of ['tar', 'sh', '/bin/sh']) {
    const r = await rawExec('distroless', [program, '-c', 'true'])
    assert.match(r.stderr, `exec: "${program}": executable file not found in $PATH`)
    assert.is(r.status?.status, 'Failure')
    assert.is(r.status?.details?.causes?.[0]?.message, '126')
  }
  const d = await directServer()
  assert.not.ok(await hasExecutable(d.sandboxes.get('distroless')!.rootfs, 'tar'))
  assert.ok(await hasExecutable(d.sandboxes.get('busybox')!.rootfs, 'tar'))
})

test('exec server: read-only mounts refuse writes; nothing leaks onto the host', async () => {
  const r = await rawExec('readonly', ['sh', '-c', 'echo x > /data/nope'])
  assert.match(r.stderr, /Read-only file system/)
  assert.is(r.status?.details?.causes?.[0]?.message, '1')
  const d = await directServer()
  const mounts = await readFile('/proc/self/mounts', 'utf8')
  assert.not.ok(mounts.includes(d.dir), 'no bind mount of the node is visible in the host mount namespace')
})

test('exec server: only the apiserver (a cert from the cluster CA) may call it; v4-only refuses a v5-only client', async () => {
  const d = await directServer()
  const anonymous = new WebSocket(`wss://127.0.0.1:${d.server.port}/exec/ns/p/busybox?command=true&output=1`, [V5], {ca: d.clientTls.ca})
  const err = await new Promise<Error>((resolve) => anonymous.on('error', resolve))
  assert.ok(err, 'a client without a certificate is refused during the TLS handshake')
  d.v4Only = true
  try {
    const refused = new WebSocket(`wss://127.0.0.1:${d.server.port}/exec/ns/p/busybox?command=true&output=1`, [V5], d.clientTls)
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
    assert.is(status, 400)
  } finally {
    d.v4Only = false
  }
})

test('exec server: stop', async () => {
  const d = await directServer()
  await d.server.close()
  await rm(d.dir, {recursive: true, force: true})
})

test('pod manager: a 410 Gone watch error makes it relist; pods gone meanwhile are forgotten', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-node-pods-'))
  const pod = (name: string) => ({metadata: {name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: '1'}, spec: {containers: [{name: 'main', image: 'busybox'}]}})
  const lists = [[pod('a')], [pod('b')]]
  const calls: string[] = []
  // Just enough of ApiClient for PodManager: lists, a watch that expires once, status patches.
  const api = {
    async get(url: string) {
      calls.push(`GET ${url}`)
      const items = lists.shift() ?? []
      return {metadata: {resourceVersion: String(10 + calls.length)}, items}
    },
    watch(url: string, onEvent: (e: unknown) => void, onEnd: (err?: Error) => void) {
      calls.push(`WATCH ${url}`)
      if (calls.filter((c) => c.startsWith('WATCH')).length === 1) {
        // Expire only once pod a runs: on a busy machine its setup may take longer than the relist.
        void waitFor('pod a to run', () => manager.findContainer('ns', 'a', 'main') !== undefined, {timeoutMs: 5000}).then(() => {
          onEvent({type: 'ERROR', object: {kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version'}})
          onEnd()
        }, () => onEnd())
      }
      return {stop() {}}
    },
    async patch(url: string, body: {status: unknown}) {
      calls.push(`PATCH ${url}`)
      return {status: body.status}
    },
  }
  const manager = new PodManager(api as unknown as ApiClient, {
    nodeName: 'n', podsDir: path.join(dir, 'pods'), images: await buildImages(path.join(dir, 'images')), containerInit: await buildContainerInit(), log: () => {},
  })
  try {
    await manager.start()
    await waitFor('pod a to run', () => manager.findContainer('ns', 'a', 'main') !== undefined, {timeoutMs: 5000})
    await waitFor('the relist after 410', () => manager.findContainer('ns', 'b', 'main') !== undefined, {timeoutMs: 5000})
    assert.is(manager.findContainer('ns', 'a', 'main'), undefined, 'a was deleted while the watch was down')
    const watches = calls.filter((c) => c.startsWith('WATCH'))
    assert.is(calls.filter((c) => c.startsWith('GET')).length, 2)
    assert.match(watches[0]!, 'resourceVersion=11')
    assert.match(watches[1]!, /resourceVersion=1[0-9]/)
    assert.ok(calls.includes('PATCH /api/v1/namespaces/ns/pods/b/status'))
  } finally {
    await manager.stop()
    await rm(dir, {recursive: true, force: true})
  }
})

// ---------------------------------------------------------------------------
// Against the real control plane

const TAINT = 'kubesnap.test/node-test'

interface Env {
  cluster: TestCluster
  node: NodeAgent
  nodeDir: string
  ns: string
  admin: string
}

let env: Promise<Env> | undefined

/** The shared cluster, a private tainted node of ours, and a namespace for these tests. */
function clusterEnv(): Promise<Env> {
  env ??= (async () => {
    const cluster = await sharedCluster()
    const name = `node-test-${randomBytes(3).toString('hex')}`
    const nodeDir = await mkdtemp(path.join(os.tmpdir(), `kubesnap-${name}-`))
    const node = await startNode({
      dir: nodeDir, server: cluster.server, caCertFile: cluster.caCertFile, pki: cluster.pki,
      kubeconfig: cluster.kubeconfigs.admin, name, taints: [{key: TAINT, value: 'true', effect: 'NoSchedule'}],
      log: process.env.KUBESNAP_NODE_LOG ? (line) => console.error(`[${name} ${new Date().toISOString().slice(11, 23)}] ${line}`) : undefined,
    })
    const ns = await cluster.createNamespace({prefix: 'node'})
    return {cluster, node, nodeDir, ns, admin: cluster.kubeconfigs.admin}
  })()
  return env
}

/** Runs kubectl as the admin; `input` goes to its stdin; stdout and stderr come back as Buffers. */
async function kubectl(args: string[], opts: {input?: string | Buffer; reject?: boolean} = {}): Promise<{exitCode: number; stdout: Buffer; stderr: Buffer}> {
  const {admin} = await clusterEnv()
  const r = await execa('kubectl', ['--kubeconfig', admin, ...args], {input: opts.input, reject: opts.reject ?? true, encoding: 'buffer', stripFinalNewline: false, timeout: 120_000})
  return {exitCode: r.exitCode ?? -1, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr)}
}

/** Applies manifests (objects) in the test namespace. */
async function apply(...objects: object[]): Promise<void> {
  const {ns} = await clusterEnv()
  await kubectl(['apply', '-n', ns, '-f', '-'], {input: JSON.stringify({apiVersion: 'v1', kind: 'List', items: objects})})
}

/** What a pod template needs to land on the test's node and only there. */
async function placement() {
  const {node} = await clusterEnv()
  return {nodeSelector: {'kubernetes.io/hostname': node.name}, tolerations: [{key: TAINT, operator: 'Exists', effect: 'NoSchedule'}]}
}

/** A pod spec that sleeps forever on the test node, with optional volumes and securityContexts (the pod's and its container's). */
async function podSpec(opts: {image?: string; volumes?: object[]; volumeMounts?: object[]; env?: object[]; securityContext?: object; containerSecurityContext?: object} = {}) {
  return {
    ...(await placement()),
    containers: [{name: 'main', image: opts.image ?? 'busybox:1.36', command: ['sleep', 'infinity'], volumeMounts: opts.volumeMounts ?? [], env: opts.env ?? [],
      ...(opts.containerSecurityContext ? {securityContext: opts.containerSecurityContext} : {})}],
    volumes: opts.volumes ?? [],
    ...(opts.securityContext ? {securityContext: opts.securityContext} : {}),
  }
}

async function createPod(name: string, opts: Parameters<typeof podSpec>[0] = {}): Promise<void> {
  await apply({apiVersion: 'v1', kind: 'Pod', metadata: {name}, spec: await podSpec(opts)})
}

async function waitReady(what: string, timeout = '60s'): Promise<void> {
  const {ns} = await clusterEnv()
  await kubectl(['wait', '-n', ns, '--for=condition=Ready', what, `--timeout=${timeout}`])
}

/** Each check runs a kubectl process: not more often than four times a second. */
const KUBECTL_POLL = {intervalMs: 250}

async function getJson<T = any>(...args: string[]): Promise<T> {
  const {ns} = await clusterEnv()
  return JSON.parse((await kubectl(['get', '-n', ns, '-o', 'json', ...args])).stdout.toString()) as T
}

interface ClientExecResult {
  stdout: Buffer
  stderr: Buffer
  status?: V1Status
  closeCode: number
  ms: number
}

/**
 * Execs through the apiserver with @kubernetes/client-node's `Exec`, as
 * kubesnap does, and resolves when the socket closes. `stdin` is written and
 * ended, unless `keepStdinOpen` (then it ends after the status arrives).
 */
async function clientExec(pod: string, command: string[], opts: {stdin?: Buffer; keepStdinOpen?: boolean} = {}): Promise<ClientExecResult> {
  const {cluster, ns} = await clusterEnv()
  const started = Date.now()
  const stdoutChunks: Buffer[] = []
  const stderrChunks: Buffer[] = []
  const collector = (chunks: Buffer[]) => new Writable({write(chunk: Buffer, _enc, cb) {
    chunks.push(chunk)
    cb()
  }})
  const stdin = opts.stdin ? new PassThrough() : null
  let status: V1Status | undefined
  const ws = await new Exec(cluster.admin()).exec(ns, pod, 'main', command, collector(stdoutChunks), collector(stderrChunks), stdin, false, (s) => {
    status = s
    if (opts.keepStdinOpen) stdin?.end()
  })
  if (stdin && opts.stdin) {
    stdin.write(opts.stdin)
    if (!opts.keepStdinOpen) stdin.end()
  }
  const closeCode = await new Promise<number>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(0)
    ws.on('close', (code: number) => resolve(code))
  })
  return {stdout: Buffer.concat(stdoutChunks), stderr: Buffer.concat(stderrChunks), status, closeCode, ms: Date.now() - started}
}

test('cluster: the node registers Ready with its kubelet endpoint and a Lease', async () => {
  const {node} = await clusterEnv()
  const n = JSON.parse((await kubectl(['get', 'node', node.name, '-o', 'json'])).stdout.toString())
  assert.equal(n.status.addresses.find((a: any) => a.type === 'InternalIP'), {type: 'InternalIP', address: '127.0.0.1'})
  assert.is(n.status.daemonEndpoints.kubeletEndpoint.Port, node.port)
  assert.is(n.status.conditions.find((c: any) => c.type === 'Ready').status, 'True')
  assert.is(n.status.allocatable.pods, '110')
  const lease = JSON.parse((await kubectl(['get', 'lease', '-n', 'kube-node-lease', node.name, '-o', 'json'])).stdout.toString())
  assert.is(lease.spec.holderIdentity, node.name)
})

test('cluster: a pod becomes Running and Ready with the status a kubelet reports', async () => {
  const {node} = await clusterEnv()
  await createPod('ready')
  await waitReady('pod/ready')
  const pod = await getJson('pod', 'ready')
  assert.is(pod.spec.nodeName, node.name, 'the real scheduler bound it')
  assert.is(pod.status.phase, 'Running')
  assert.is(pod.status.hostIP, '127.0.0.1')
  assert.match(pod.status.podIP, /^10\.244\.\d+\.\d+$/)
  for (const type of ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled']) {
    assert.is(pod.status.conditions.find((c: any) => c.type === type)?.status, 'True', type)
  }
  const container = pod.status.containerStatuses[0]
  assert.is(container.ready, true)
  assert.is(container.started, true)
  assert.is(container.restartCount, 0)
  assert.ok(container.state.running.startedAt)
  assert.match(container.containerID, /^kubesnap:\/\//)
  assert.is(container.image, 'busybox:1.36')
})

test('cluster: kubectl exec (v5 over WebSocket) runs the command and returns its exit code', async () => {
  const {ns} = await clusterEnv()
  const ok = await kubectl(['exec', '-n', ns, 'ready', '--', 'sh', '-c', 'echo "$HOSTNAME"; echo err >&2'])
  assert.is(ok.stdout.toString(), 'ready\n')
  assert.is(ok.stderr.toString(), 'err\n')
  const failed = await kubectl(['exec', '-n', ns, 'ready', '--', 'sh', '-c', 'exit 42'], {reject: false})
  assert.is(failed.exitCode, 42)
  assert.match(failed.stderr.toString(), 'command terminated with exit code 42')
})

test('cluster: kubectl exec -i streams stdin (sha256sum of 5 MB)', async () => {
  const {ns} = await clusterEnv()
  const data = randomBytes(5 << 20)
  const r = await kubectl(['exec', '-i', '-n', ns, 'ready', '--', 'sha256sum'], {input: data})
  assert.is(r.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'))
})

test('cluster: kubectl cp into and out of a pod', async () => {
  const {ns} = await clusterEnv()
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-cp-'))
  try {
    await mkdir(path.join(tmp, 'in', 'nested'), {recursive: true})
    const payload = randomBytes(200_000)
    await writeFile(path.join(tmp, 'in', 'nested', 'blob'), payload)
    await writeFile(path.join(tmp, 'in', 'note.txt'), 'note\n')
    await kubectl(['cp', '-n', ns, path.join(tmp, 'in'), `${ns}/ready:/tmp/copied`])
    const listed = await kubectl(['exec', '-n', ns, 'ready', '--', 'sh', '-c', 'cd /tmp/copied && find . -type f | sort && sha256sum nested/blob'])
    assert.match(listed.stdout.toString(), `./nested/blob\n./note.txt\n${createHash('sha256').update(payload).digest('hex')}`)
    await kubectl(['cp', '-n', ns, `${ns}/ready:/tmp/copied`, path.join(tmp, 'out')])
    assert.equal(await readFile(path.join(tmp, 'out', 'nested', 'blob')), payload)
    assert.is(await readFile(path.join(tmp, 'out', 'note.txt'), 'utf8'), 'note\n')
  } finally {
    await rm(tmp, {recursive: true, force: true})
  }
})

test('cluster: kubectl logs returns the container log', async () => {
  const {ns} = await clusterEnv()
  const r = await kubectl(['logs', '-n', ns, 'ready'])
  assert.match(r.stdout.toString(), 'kubesnap-node: started container main (image busybox:1.36)')
  const tail = await kubectl(['logs', '-n', ns, 'ready', '--tail=1'])
  assert.is(tail.stdout.toString().split('\n').filter(Boolean).length, 1)
})

test('cluster: client-node Exec on v5: Success with stdout; a failing command gives its exit code', async () => {
  const ok = await clientExec('ready', ['sh', '-c', 'echo out; echo err >&2'])
  assert.is(ok.stdout.toString(), 'out\n')
  assert.is(ok.stderr.toString(), 'err\n')
  assert.is(ok.status?.status, 'Success')
  const failed = await clientExec('ready', ['sh', '-c', 'exit 3'])
  assert.is(failed.status?.status, 'Failure')
  assert.is(failed.status?.reason, 'NonZeroExitCode')
  assert.is(failed.status?.details?.causes?.[0]?.message, '3')
  // v5 lets client-node end stdin with a close frame: `tar xf -`-style restores see EOF.
  const data = randomBytes(1 << 20)
  const fed = await clientExec('ready', ['sha256sum'], {stdin: data})
  assert.is(fed.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'))
  assert.is(fed.status?.status, 'Success')
})

test('cluster: a v4-only node behaves as clusters before 1.30 (stdin EOF cannot be sent)', async () => {
  const {node, ns} = await clusterEnv()
  node.setV4Only(true)
  try {
    // client-node ends stdin on v4 by closing the socket: the node kills the command,
    // so its output and status are lost, whatever it would have done after EOF.
    const ended = await clientExec('ready', ['sh', '-c', 'cat > /tmp/v4-in; echo done'], {stdin: Buffer.from('payload')})
    assert.is(ended.status, undefined, 'no status: the command was killed')
    assert.not.match(ended.stdout.toString(), 'done')
    // kubesnap's v4 framing: the command stops reading by itself after N bytes (head -c N),
    // and stdin stays open until the status has come.
    const framed = await clientExec('ready', ['sh', '-c', 'head -c 7 > /tmp/v4-in; wc -c < /tmp/v4-in'], {stdin: Buffer.from('payload'), keepStdinOpen: true})
    assert.is(framed.status?.status, 'Success')
    assert.is(framed.stdout.toString().trim(), '7')
    // kubectl 1.32 offers only v5 over WebSocket, then SPDY, which this node does not speak.
    const kubectlExec = await kubectl(['exec', '-n', ns, 'ready', '--', 'true'], {reject: false})
    assert.is.not(kubectlExec.exitCode, 0)
    assert.match(kubectlExec.stderr.toString(), 'unable to upgrade connection: this node serves exec over WebSocket only, not SPDY')
  } finally {
    node.setV4Only(false)
  }
})

test('cluster: fault cutAfterBytes breaks the stream after exactly N stdout bytes, with no status', async () => {
  const {node} = await clusterEnv()
  node.faults.forPod('ready').cutAfterBytes = 100_000
  try {
    const r = await clientExec('ready', ['head', '-c', '1000000', '/dev/zero'])
    assert.is(r.stdout.length, 100_000)
    assert.is(r.status, undefined)
    assert.is.not(r.closeCode, 1000, 'not a normal close')
  } finally {
    node.faults.reset()
  }
})

test('cluster: fault dropStatus ends the stream normally without a status; `execs` limits it to the next exec', async () => {
  const {node} = await clusterEnv()
  const scope = node.faults.forPod('ready')
  scope.dropStatus = true
  scope.execs = 1
  const dropped = await clientExec('ready', ['echo', 'hi'])
  assert.is(dropped.stdout.toString(), 'hi\n')
  assert.is(dropped.status, undefined)
  assert.is(dropped.closeCode, 1000)
  const next = await clientExec('ready', ['echo', 'hi'])
  assert.is(next.status?.status, 'Success', 'the fault applied to one exec only')
})

test('cluster: faults slowWriter and slowReader throttle stdout and stdin', async () => {
  const {node} = await clusterEnv()
  try {
    node.faults.slowWriterBytesPerSec = 200_000
    const out = await clientExec('ready', ['head', '-c', '400000', '/dev/zero'])
    assert.is(out.stdout.length, 400_000)
    assert.ok(out.ms >= 1800, `400 kB at 200 kB/s took ${out.ms} ms`)
    node.faults.reset()
    node.faults.slowReaderBytesPerSec = 200_000
    const input = await clientExec('ready', ['wc', '-c'], {stdin: randomBytes(400_000)})
    assert.is(input.stdout.toString().trim(), '400000')
    assert.ok(input.ms >= 1800, `400 kB read at 200 kB/s took ${input.ms} ms`)
  } finally {
    node.faults.reset()
  }
})

test('cluster: exec throughput of `tar cf -` of a 100 MB directory through the apiserver (kubectl)', async () => {
  const {ns} = await clusterEnv()
  await createPod('bulk', {volumes: [{name: 'data', emptyDir: {}}], volumeMounts: [{name: 'data', mountPath: '/data'}]})
  await waitReady('pod/bulk')
  await kubectl(['exec', '-n', ns, 'bulk', '--', 'sh', '-c', 'for i in 0 1 2 3 4 5 6 7 8 9; do head -c 10485760 /dev/urandom > /data/f$i; done'])
  const expected = (await kubectl(['exec', '-n', ns, 'bulk', '--', 'sh', '-c', 'tar cf - -C /data . | sha256sum'])).stdout.toString().split(' ')[0]
  // Streamed into the hash, as kubesnap streams into its archive: nothing is buffered whole.
  const {admin} = await clusterEnv()
  const started = process.hrtime.bigint()
  const child = execa('kubectl', ['--kubeconfig', admin, 'exec', '-n', ns, 'bulk', '--', 'tar', 'cf', '-', '-C', '/data', '.'], {buffer: false})
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    hash.update(chunk)
    bytes += chunk.length
  }
  await child
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  assert.is(hash.digest('hex'), expected, 'the stream is byte-identical')
  const mb = bytes / 1e6
  console.log(`    tar cf - of ${mb.toFixed(1)} MB through kubectl exec: ${seconds.toFixed(2)} s, ${(mb / seconds).toFixed(1)} MB/s`)
  assert.ok(bytes > 100 * 1024 * 1024)
})

test('cluster: ConfigMap and Secret volumes are files (items, modes), env from them resolved; read-only', async () => {
  const {ns} = await clusterEnv()
  await apply(
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cfg'}, data: {'app.conf': 'port=80\n', other: 'x'}},
    {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'creds'}, stringData: {password: 's3cret'}},
  )
  await createPod('files', {
    volumes: [
      {name: 'cfg', configMap: {name: 'cfg', items: [{key: 'app.conf', path: 'conf/app.conf'}], defaultMode: 0o600}},
      {name: 'creds', secret: {secretName: 'creds'}},
    ],
    volumeMounts: [{name: 'cfg', mountPath: '/etc/app'}, {name: 'creds', mountPath: '/secrets'}],
    env: [{name: 'PASSWORD', valueFrom: {secretKeyRef: {name: 'creds', key: 'password'}}}, {name: 'POD', valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}}],
  })
  await waitReady('pod/files')
  const r = await kubectl(['exec', '-n', ns, 'files', '--', 'sh', '-c',
    'cat /etc/app/conf/app.conf; ls /etc/app; stat -c %a /etc/app/conf/app.conf; cat /secrets/password; echo; echo $PASSWORD $POD; touch /secrets/x 2>&1 || true'])
  assert.is(r.stdout.toString(), 'port=80\nconf\n600\ns3cret\ns3cret files\ntouch: /secrets/x: Read-only file system\n')
})

test('cluster: a pod whose Secret is missing stays Pending (ContainerCreating) and runs once it appears', async () => {
  const {ns} = await clusterEnv()
  await createPod('waits', {volumes: [{name: 's', secret: {secretName: 'later'}}], volumeMounts: [{name: 's', mountPath: '/s'}]})
  await waitFor('pod waits to be reported ContainerCreating', async () => {
    const pod = await getJson('pod', 'waits')
    return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ContainerCreating'
  }, KUBECTL_POLL)
  assert.is((await getJson('pod', 'waits')).status.phase, 'Pending')
  await apply({apiVersion: 'v1', kind: 'Secret', metadata: {name: 'later'}, stringData: {k: 'v'}})
  await waitReady('pod/waits', '30s')
  assert.is((await kubectl(['exec', '-n', ns, 'waits', '--', 'cat', '/s/k'])).stdout.toString(), 'v')
})

test('cluster: a PVC mounts its PV directory; two pods share it; subPath', async () => {
  const {cluster, ns} = await clusterEnv()
  if (!cluster.storageClass) {
    console.log('    (no storage in this cluster: skipped)')
    return
  }
  await apply({apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name: 'data'},
    spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}, storageClassName: cluster.storageClass}})
  await createPod('writer', {volumes: [{name: 'd', persistentVolumeClaim: {claimName: 'data'}}], volumeMounts: [{name: 'd', mountPath: '/data'}]})
  await createPod('reader', {volumes: [{name: 'd', persistentVolumeClaim: {claimName: 'data'}}], volumeMounts: [{name: 'd', mountPath: '/sub', subPath: 'dir'}]})
  await waitReady('pod/writer')
  await waitReady('pod/reader')
  await kubectl(['exec', '-n', ns, 'writer', '--', 'sh', '-c', 'mkdir -p /data/dir && echo shared > /data/dir/f'])
  assert.is((await kubectl(['exec', '-n', ns, 'reader', '--', 'cat', '/sub/f'])).stdout.toString(), 'shared\n')
  const claim = await getJson('pvc', 'data')
  const pv = JSON.parse((await kubectl(['get', 'pv', claim.spec.volumeName, '-o', 'json'])).stdout.toString())
  assert.is(await readFile(path.join(pv.spec.hostPath.path, 'dir', 'f'), 'utf8'), 'shared\n', 'the data is in the PV directory on the host')
})

test('cluster: a distroless pod runs, but exec of tar fails as on a real runtime', async () => {
  const {ns} = await clusterEnv()
  await createPod('distroless', {image: 'gcr.io/distroless/static-debian12'})
  await waitReady('pod/distroless')
  const viaClient = await clientExec('distroless', ['tar', 'cf', '-', '/'])
  assert.is(viaClient.status?.status, 'Failure')
  assert.is(viaClient.status?.details?.causes?.[0]?.message, '126')
  assert.match(viaClient.stderr.toString(), 'executable file not found in $PATH')
  const viaKubectl = await kubectl(['exec', '-n', ns, 'distroless', '--', 'sh'], {reject: false})
  assert.is(viaKubectl.exitCode, 126)
})

test('cluster: deleting a pod completes (the node finishes the graceful deletion)', async () => {
  const {ns} = await clusterEnv()
  const started = Date.now()
  await kubectl(['delete', '-n', ns, 'pod', 'distroless', '--wait=true', '--timeout=30s'])
  assert.ok(Date.now() - started < 15_000, `deletion took ${Date.now() - started} ms`)
  const left = await kubectl(['get', '-n', ns, 'pod', 'distroless'], {reject: false})
  assert.match(left.stderr.toString(), 'NotFound')
})

test('cluster: a Deployment rolls out and `rollout restart` completes', async () => {
  const {ns} = await clusterEnv()
  const labels = {app: 'web'}
  await apply({apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web'},
    spec: {replicas: 2, selector: {matchLabels: labels}, template: {metadata: {labels}, spec: await podSpec()}}})
  await kubectl(['rollout', 'status', '-n', ns, 'deployment/web', '--timeout=60s'])
  const before = (await getJson('pods', '-l', 'app=web')).items.map((p: any) => p.metadata.uid)
  await kubectl(['rollout', 'restart', '-n', ns, 'deployment/web'])
  await kubectl(['rollout', 'status', '-n', ns, 'deployment/web', '--timeout=60s'])
  await waitFor('old web pods to be gone', async () => {
    const now = (await getJson('pods', '-l', 'app=web')).items.map((p: any) => p.metadata.uid)
    return now.length === 2 && now.every((uid: string) => !before.includes(uid))
  }, KUBECTL_POLL)
})

test('cluster: a StatefulSet scales to 0 and back, and its rolling restart completes', async () => {
  const {ns} = await clusterEnv()
  const labels = {app: 'db'}
  await apply({apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: {name: 'db'},
    spec: {replicas: 2, serviceName: 'db', selector: {matchLabels: labels}, template: {metadata: {labels}, spec: await podSpec()}}})
  await kubectl(['rollout', 'status', '-n', ns, 'statefulset/db', '--timeout=60s'])
  await kubectl(['scale', '-n', ns, 'statefulset/db', '--replicas=0'])
  await waitFor('db pods to be gone', async () => (await getJson('pods', '-l', 'app=db')).items.length === 0, KUBECTL_POLL)
  await kubectl(['scale', '-n', ns, 'statefulset/db', '--replicas=2'])
  await kubectl(['rollout', 'status', '-n', ns, 'statefulset/db', '--timeout=60s'])
  await kubectl(['rollout', 'restart', '-n', ns, 'statefulset/db'])
  await kubectl(['rollout', 'status', '-n', ns, 'statefulset/db', '--timeout=60s'])
  assert.is((await kubectl(['exec', '-n', ns, 'db-1', '--', 'hostname'])).stdout.toString(), 'db-1\n')
})

/** Runs `script` with sh in container `container` (default main) of `pod` through kubectl; stdout and stderr together. */
async function shIn(pod: string, script: string, container = 'main'): Promise<string> {
  const {ns} = await clusterEnv()
  const r = await kubectl(['exec', '-n', ns, pod, '-c', container, '--', 'sh', '-c', `exec 2>&1; ${script}`], {reject: false})
  return r.stdout.toString()
}

test('cluster: securityContext: processes run as runAsUser/runAsGroup with fsGroup and supplementalGroups; emptyDir and claim files are theirs', async () => {
  const {cluster} = await clusterEnv()
  const withClaim = Boolean(cluster.storageClass)
  if (withClaim) {
    await apply({apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name: 'owned'},
      spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}, storageClassName: cluster.storageClass}})
  }
  await createPod('ids', {
    securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000]},
    volumes: [
      {name: 'scratch', emptyDir: {}}, {name: 'creds', secret: {secretName: 'creds', defaultMode: 0o400}},
      ...(withClaim ? [{name: 'data', persistentVolumeClaim: {claimName: 'owned'}}] : []),
    ],
    volumeMounts: [{name: 'scratch', mountPath: '/scratch'}, {name: 'creds', mountPath: '/secrets'}, ...(withClaim ? [{name: 'data', mountPath: '/data'}] : [])],
  })
  await waitReady('pod/ids')
  assert.is(await shIn('ids', 'id -u; id -g; id -G; grep -E "^Cap(Prm|Eff)" /proc/self/status'), '1000\n3000\n3000 2000 4000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n')
  // New files in a setgid directory take its group (fsGroup); elsewhere the process's gid.
  assert.is(await shIn('ids', 'touch /scratch/f /tmp/f && stat -c "%u %g" /scratch/f /tmp/f; stat -c "%g %a" /scratch'), '1000 2000\n1000 3000\n2000 2777\n')
  assert.match(await shIn('ids', 'touch /f; cat /root/x'), /touch: \/f: Permission denied\ncat: can't open '\/root\/x': Permission denied/)
  // A 0400 Secret file is root's, but fsGroup makes it group-readable (0440), as the kubelet does.
  assert.is(await shIn('ids', 'stat -c "%u %g %a" /secrets/password; cat /secrets/password'), '0 2000 440\ns3cret')
  if (!withClaim) {
    console.log('    (no storage in this cluster: the claim part is skipped)')
    return
  }
  assert.is(await shIn('ids', 'stat -c "%g %a" /data; echo hi > /data/f && stat -c "%u %g %a" /data/f'), '2000 2777\n1000 2000 644\n', 'a fresh claim\'s root gets fsGroup and setgid')
  const pv = JSON.parse((await kubectl(['get', 'pv', (await getJson('pvc', 'owned')).spec.volumeName, '-o', 'json'])).stdout.toString())
  const onHost = await stat(path.join(pv.spec.hostPath.path, 'f'))
  assert.equal([onHost.uid, onHost.gid], [1000, 2000], 'the kernel wrote the file as uid 1000, group fsGroup')
})

test('cluster: capabilities: root with drop ALL cannot chown or read another uid\'s 0600 file; root with the defaults can (0000 files too)', async () => {
  const scratch = [{name: 'scratch', mountPath: '/scratch'}]
  await apply({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'caps'}, spec: {
    ...(await placement()),
    containers: [
      {name: 'main', image: 'busybox:1.36', securityContext: {capabilities: {drop: ['ALL']}}, volumeMounts: scratch},
      {name: 'root', image: 'busybox:1.36', volumeMounts: scratch},
    ],
    volumes: [{name: 'scratch', emptyDir: {}}],
  }})
  await waitReady('pod/caps')
  const prepared = await shIn('caps', 'echo s > /scratch/secret && chown 1234 /scratch/secret && chmod 600 /scratch/secret && echo z > /scratch/zero && chmod 000 /scratch/zero && cat /scratch/secret /scratch/zero; grep -E "^Cap(Eff|Bnd)" /proc/self/status', 'root')
  assert.is(prepared, 's\nz\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n', 'root with the default set: CHOWN, DAC_OVERRIDE')
  const dropped = await shIn('caps', 'id -u; cat /scratch/secret; touch /tmp/x; chown 1234 /tmp/x; grep -E "^Cap(Eff|Bnd)" /proc/self/status')
  assert.is(dropped, `0\ncat: can't open '/scratch/secret': Permission denied\nchown: /tmp/x: Operation not permitted\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n`)
})

test('cluster: runAsNonRoot: busybox without runAsUser never runs (CreateContainerConfigError), runAsUser 0 is refused, distroless:nonroot runs', async () => {
  const {ns} = await clusterEnv()
  await createPod('rootful', {securityContext: {runAsNonRoot: true}})
  await createPod('root-uid', {securityContext: {runAsNonRoot: true}, containerSecurityContext: {runAsUser: 0}})
  await createPod('nonroot', {image: 'gcr.io/distroless/static-debian12:nonroot', securityContext: {runAsNonRoot: true}})
  await waitReady('pod/nonroot')
  const waiting = async (name: string) => {
    await waitFor(`pod ${name} to be refused`, async () => (await getJson('pod', name)).status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError', KUBECTL_POLL)
    const pod = await getJson('pod', name)
    assert.is(pod.status.phase, 'Pending')
    assert.is(pod.status.conditions.find((c: any) => c.type === 'Ready').message, 'containers with unready status: [main]')
    return {uid: pod.metadata.uid as string, message: pod.status.containerStatuses[0].state.waiting.message as string}
  }
  const rootful = await waiting('rootful')
  assert.is(rootful.message, `container has runAsNonRoot and image will run as root (pod: "rootful_${ns}(${rootful.uid})", container: main)`)
  const rootUid = await waiting('root-uid')
  assert.is(rootUid.message, `container's runAsUser breaks non-root policy (pod: "root-uid_${ns}(${rootUid.uid})", container: main)`)
  const exec = await kubectl(['exec', '-n', ns, 'rootful', '--', 'true'], {reject: false})
  assert.is.not(exec.exitCode, 0, 'nothing runs in a refused container')
})

test('cluster: readOnlyRootFilesystem makes / read-only, volumes stay writable; allowPrivilegeEscalation false sets NoNewPrivs; /proc shows only the container', async () => {
  await createPod('locked', {
    containerSecurityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false},
    volumes: [{name: 'scratch', emptyDir: {}}], volumeMounts: [{name: 'scratch', mountPath: '/scratch'}],
  })
  await waitReady('pod/locked')
  assert.is(await shIn('locked', 'touch /x; touch /tmp/x; touch /scratch/y && echo volume writable; grep NoNewPrivs /proc/self/status'),
    'touch: /x: Read-only file system\ntouch: /tmp/x: Read-only file system\nvolume writable\nNoNewPrivs:\t1\n')
  assert.is(await shIn('ready', 'grep NoNewPrivs /proc/self/status; touch /x && echo root writable'), 'NoNewPrivs:\t0\nroot writable\n')
  // PID 1 is the exec's own shell: no process of the host or the node is visible.
  const [pid1, processes] = (await shIn('ready', 'cat /proc/1/comm; ls /proc | grep -c "^[0-9]"')).split('\n')
  assert.is(pid1, 'sh')
  assert.ok(Number(processes) <= 3, `${processes} processes visible: the shell, ls and grep at most`)
  assert.match(await shIn('ready', 'echo 1 > /proc/sys/kernel/domainname'), 'Read-only file system')
})

test('cluster: the node stays Ready (heartbeat) and deleting the namespace completes', async () => {
  const {cluster, node, ns} = await clusterEnv()
  const n = JSON.parse((await kubectl(['get', 'node', node.name, '-o', 'json'])).stdout.toString())
  assert.is(n.status.conditions.find((c: any) => c.type === 'Ready').status, 'True')
  assert.not.ok((n.spec.taints ?? []).some((t: any) => t.key.startsWith('node.kubernetes.io/')), 'no unreachable/not-ready taint')
  const lease = JSON.parse((await kubectl(['get', 'lease', '-n', 'kube-node-lease', node.name, '-o', 'json'])).stdout.toString())
  assert.ok(Date.now() - Date.parse(lease.spec.renewTime) < 15_000, `lease renewed at ${lease.spec.renewTime}`)
  const started = Date.now()
  await cluster.deleteNamespace(ns, {wait: true})
  console.log(`    namespace with running pods deleted in ${((Date.now() - started) / 1000).toFixed(1)} s`)
})

test.after(async () => {
  if (!env) return
  const {node, nodeDir} = await env
  await node.stop()
  // The Node object would go NotReady and linger in a shared cluster: remove it.
  await kubectl(['delete', 'node', node.name, '--wait=false'], {reject: false})
  await rm(nodeDir, {recursive: true, force: true})
})

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}

test.run()
