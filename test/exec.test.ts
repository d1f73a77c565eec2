/**
 * The exec transport (src/cluster/exec.ts) through the real apiserver to a
 * node of this test's own, whose fault and v4-only switches the test flips:
 * stdout and exit codes on v5 and v4, stdin EOF on v5 and length framing on
 * v4, cut streams, lost statuses, and flat memory with slow readers and writers.
 *
 *   cd /work/main && node --import tsx test/exec.test.ts
 */
import {createHash, randomBytes} from 'node:crypto'
import {PassThrough, Readable, Writable} from 'node:stream'
import v8 from 'node:v8'
import {runInNewContext} from 'node:vm'
import {CoreV1Api, type KubeConfig} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ExecError, execInPod, exitCodeOf, V4_PROTOCOL, V5_PROTOCOL, type ExecOptions} from '../src/cluster/exec.js'
import {sharedCluster, type PrivateNode, type TestCluster} from './cluster/index.js'
import {waitFor} from './cluster/wait.js'

interface Env {
  cluster: TestCluster
  node: PrivateNode
  ns: string
  /** The namespace-only user, bound to kubesnap's Role: exec rights as documented. */
  user: KubeConfig
}

let env: Promise<Env> | undefined
const POD = 'box'

function setup(): Promise<Env> {
  env ??= (async () => {
    const cluster = await sharedCluster()
    const node = await cluster.startPrivateNode({prefix: 'exec-test'})
    const ns = await cluster.createNamespace({prefix: 'exec'})
    const core = cluster.admin().makeApiClient(CoreV1Api)
    await core.createNamespacedPod({namespace: ns, body: {
      metadata: {name: POD},
      spec: {...node.placement, terminationGracePeriodSeconds: 0, containers: [{name: 'main', image: 'busybox:1.36', command: ['sleep', 'infinity']}]},
    }})
    await waitFor('pod box Running', async () => (await core.readNamespacedPod({namespace: ns, name: POD})).status?.phase === 'Running', {timeoutMs: 60_000, retryErrors: true})
    return {cluster, node, ns, user: cluster.user()}
  })()
  return env
}

/** Runs a command in pod box, container main, as the namespace-only user; collects stdout. */
async function run(command: string[], opts: Partial<ExecOptions> = {}) {
  const {ns, user} = await setup()
  const chunks: Buffer[] = []
  const stdout = opts.stdout ?? new Writable({write(chunk: Buffer, _e, cb) {
    chunks.push(chunk)
    cb()
  }})
  const result = await execInPod(user, {namespace: ns, pod: POD, container: 'main', command, ...opts, stdout})
  return {...result, stdout: Buffer.concat(chunks)}
}

async function rejection(promise: Promise<unknown>): Promise<ExecError> {
  try {
    await promise
  } catch (err) {
    assert.instance(err, ExecError)
    return err as ExecError
  }
  throw new Error('expected a rejection')
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

test('exitCodeOf reads the ExitCode cause of a Failure status', () => {
  assert.is(exitCodeOf({status: 'Success'}), 0)
  assert.is(exitCodeOf({status: 'Failure', reason: 'NonZeroExitCode', details: {causes: [{reason: 'ExitCode', message: '42'}]}}), 42)
  assert.is(exitCodeOf({status: 'Failure', reason: 'InternalError', message: 'boom'}), undefined)
  assert.is(exitCodeOf(undefined), undefined)
})

test('v5: stdout, stderr and byte counts of a command that succeeds', async () => {
  const r = await run(['sh', '-c', 'printf hello; echo oops >&2'])
  assert.is(r.protocol, V5_PROTOCOL)
  assert.is(r.exitCode, 0)
  assert.is(r.stdout.toString(), 'hello')
  assert.is(r.stdoutBytes, 5)
  assert.is(r.stderr, 'oops\n')
})

test('v5: a failing command rejects with its exit code and stderr in one sentence', async () => {
  const err = await rejection(run(['sh', '-c', 'echo "disk on fire" >&2; exit 3']))
  assert.is(err.failure, 'exit')
  assert.is(err.exitCode, 3)
  assert.is(err.stderr, 'disk on fire\n')
  assert.match(err.message, /^The command `sh -c 'echo "disk on fire" >&2; exit 3'` in pod exec-\w+\/box, container main, exited with code 3: disk on fire\.$/)
})

test('v5: a missing executable is exit 126 with the runtime message', async () => {
  const err = await rejection(run(['no-such-tool']))
  assert.is(err.exitCode, 126)
  assert.match(err.stderr, 'executable file not found')
})

test('v5: stdin ends with the close frame (sha256sum of 3 MB, unsized and sized)', async () => {
  const data = randomBytes(3 << 20)
  const unsized = await run(['sha256sum'], {stdin: Readable.from([data])})
  assert.is(unsized.stdout.toString().split(' ')[0], sha256(data))
  assert.is(unsized.stdinBytes, data.length)
  const sized = await run(['sha256sum'], {stdin: {length: data.length, stream: Readable.from([data])}})
  assert.is(sized.stdout.toString().split(' ')[0], sha256(data))
})

test('a refused exec (no such container) rejects as refused, naming pod and container', async () => {
  const {ns, user} = await setup()
  const err = await rejection(execInPod(user, {namespace: ns, pod: POD, container: 'nope', command: ['true']}))
  assert.is(err.failure, 'refused')
  assert.match(err.message, `in pod ${ns}/box, container nope, was refused by the API server`)
})

test('v4-only node: stdout and exit codes; sized stdin with head -c works; unsized stdin is refused', async () => {
  const {node} = await setup()
  node.agent.setV4Only(true)
  try {
    const r = await run(['sh', '-c', 'echo v4'])
    assert.is(r.protocol, V4_PROTOCOL)
    assert.is(r.stdout.toString(), 'v4\n')
    const failed = await rejection(run(['sh', '-c', 'exit 7']))
    assert.is(failed.exitCode, 7)
    const data = randomBytes(2 << 20)
    const framed = await run(['sh', '-c', `head -c ${data.length} | sha256sum`], {stdin: {length: data.length, stream: Readable.from([data])}})
    assert.is(framed.stdout.toString().split(' ')[0], sha256(data))
    assert.is(framed.stdinBytes, data.length)
    const unsized = await rejection(run(['cat'], {stdin: Readable.from([data])}))
    assert.is(unsized.failure, 'usage')
    assert.match(unsized.message, 'speaks only v4.channel.k8s.io')
    const short = await rejection(run(['sh', '-c', 'head -c 10 >/dev/null'], {stdin: {length: 10, stream: Readable.from([Buffer.from('12345')])}}))
    assert.match(short.message, 'ended after 5 of the 10 bytes announced')
  } finally {
    node.agent.setV4Only(false)
  }
})

test('fault cutAfterBytes: the stream breaks off, the exec rejects as cut and stdout is destroyed', async () => {
  const {node} = await setup()
  node.agent.faults.forPod(POD).cutAfterBytes = 300_000
  try {
    const out = new PassThrough()
    out.resume()
    const err = await rejection(run(['head', '-c', '2000000', '/dev/zero'], {stdout: out}))
    assert.is(err.failure, 'cut')
    assert.match(err.message, 'without an exit status (stream cut)')
    assert.is(err.details.stdoutBytes, 300_000)
    assert.ok(out.destroyed, 'the consumer learns of the failure')
  } finally {
    node.agent.faults.reset()
  }
})

test('fault dropStatus: a stream that closes normally without a status is rejected', async () => {
  const {node} = await setup()
  const scope = node.agent.faults.forPod(POD)
  scope.dropStatus = true
  scope.execs = 1
  const err = await rejection(run(['echo', 'hi']))
  assert.is(err.failure, 'cut')
  assert.match(err.message, 'closed normally after 3 stdout bytes without an exit status')
  const next = await run(['echo', 'hi'])
  assert.is(next.stdout.toString(), 'hi\n', 'the next exec is fine')
})

test('fault slowWriter: a throttled stdout completes intact', async () => {
  const {node} = await setup()
  node.agent.faults.slowWriterBytesPerSec = 1_000_000
  try {
    const started = Date.now()
    const r = await run(['head', '-c', '1500000', '/dev/urandom'])
    assert.is(r.stdout.length, 1_500_000)
    assert.ok(Date.now() - started >= 1200, 'throttled')
  } finally {
    node.agent.faults.reset()
  }
})

test('backpressure: a slow stdout consumer keeps memory flat (48 MiB through a 16 MB/s writer)', async () => {
  const total = 48 << 20
  let received = 0
  const hash = createHash('sha256')
  const slow = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _e, cb) {
      received += chunk.length
      hash.update(chunk)
      setTimeout(cb, (chunk.length / 16_000_000) * 1000)
    },
  })
  const peak = await peakBuffers(() => run(['head', '-c', String(total), '/dev/zero'], {stdout: slow}))
  assert.is(received, total)
  assert.is(hash.digest('hex'), sha256(Buffer.alloc(total)))
  if (process.env.DEBUG) console.log(`stdout backpressure: peak ${(peak / 2 ** 20).toFixed(1)} MiB`)
  // The private node runs in this process, so its send buffers count too: under a
  // loaded machine the two sides hold up to ~18 MiB; without backpressure it is the whole 48.
  assert.ok(peak < 24 << 20, `buffers grew by ${(peak / 2 ** 20).toFixed(1)} MiB for a ${total >> 20} MiB stream`)
})

test('fault slowReader: stdin is sent only as fast as the pod reads it (memory flat)', async () => {
  const {node} = await setup()
  node.agent.faults.slowReaderBytesPerSec = 10_000_000
  try {
    const total = 32 << 20
    let produced = 0
    const chunk = Buffer.alloc(64 * 1024, 7)
    // A source as fast as memory: without backpressure all of it would queue on the socket.
    const source = new Readable({read() {
      if (produced >= total) return void this.push(null)
      produced += chunk.length
      this.push(chunk)
    }})
    let result: Awaited<ReturnType<typeof run>> | undefined
    const peak = await peakBuffers(async () => {
      result = await run(['wc', '-c'], {stdin: source})
    })
    assert.is(result!.stdout.toString().trim(), String(total))
    assert.is(result!.stdinBytes, total)
    if (process.env.DEBUG) console.log(`stdin backpressure: peak ${(peak / 2 ** 20).toFixed(1)} MiB`)
    // The private node runs in this process, so its send buffers count too: under a
  // loaded machine the two sides hold up to ~18 MiB; without backpressure it is the whole 48.
  assert.ok(peak < 24 << 20, `buffers grew by ${(peak / 2 ** 20).toFixed(1)} MiB for ${total >> 20} MiB of stdin`)
  } finally {
    node.agent.faults.reset()
  }
})

test('abort: the signal drops the socket and rejects', async () => {
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 300)
  const err = await rejection(run(['sleep', '30'], {signal: controller.signal}))
  assert.is(err.failure, 'aborted')
})

test.after(async () => {
  if (!env) return
  const {cluster, node, ns} = await env
  await cluster.deleteNamespace(ns)
  await node.stop()
})

/** A real gc(), so that samples count live Buffers, not garbage waiting for a collection. */
v8.setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Runs `work` and returns the highest growth of live Buffer memory (arrayBuffers after a gc) seen while it ran. */
async function peakBuffers(work: () => Promise<unknown>): Promise<number> {
  gc()
  const base = process.memoryUsage().arrayBuffers
  let peak = 0
  const timer = setInterval(() => {
    gc()
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)
  }, 100)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  return peak
}

test.run()
