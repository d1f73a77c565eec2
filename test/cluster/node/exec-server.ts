/**
 * The node's kubelet API: an HTTPS server that only the apiserver (holding a
 * client cert from the cluster CA) may call, serving
 *
 * - `GET /exec/{ns}/{pod}/{container}?command=…&input=1&output=1&error=1[&tty=1]`
 *   as a WebSocket speaking `v5.channel.k8s.io` or `v4.channel.k8s.io`, running
 *   the real command in the container;
 * - `GET /containerLogs/{ns}/{pod}/{container}` for `kubectl logs`;
 * - `GET /healthz`.
 *
 * The apiserver proxies the exec upgrade unchanged, `Sec-WebSocket-Protocol`
 * included, so client and node negotiate the subprotocol end to end.
 */
import type {ChildProcess} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import https from 'node:https'
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'
import type {Readable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import {WebSocketServer, WebSocket} from 'ws'
import {spawnInContainer, type ContainerSandbox} from './container.js'
import type {ActiveFaults, ExecFaults} from './faults.js'
import {hasExecutable} from './rootfs.js'

/** A container the node can exec into. */
export interface ExecTarget {
  podName: string
  image?: string
  sandbox: ContainerSandbox
  logFile: string
  /** Processes running in the pod, killed when the pod goes. */
  processes: Set<ChildProcess>
}

/** Finds a running container by namespace, pod and container name. */
export interface ContainerDirectory {
  findContainer(namespace: string, pod: string, container: string): ExecTarget | undefined
}

export interface ExecServerOptions {
  cert: Buffer
  key: Buffer
  /** The cluster CA: the apiserver's kubelet-client cert must chain to it. */
  ca: Buffer
  containers: ContainerDirectory
  faults: ExecFaults
  /** Whether to offer only v4.channel.k8s.io, as nodes before 1.30 do; read per exec. */
  v4Only: () => boolean
  log: (line: string) => void
}

export interface ExecServer {
  port: number
  close(): Promise<void>
}

export const V5 = 'v5.channel.k8s.io'
export const V4 = 'v4.channel.k8s.io'

const STDIN = 0
const STDOUT = 1
const STDERR = 2
const STATUS = 3
const RESIZE = 4
const CLOSE = 255

// Above this many bytes queued toward the apiserver, stop reading the command's output.
const HIGH_WATER = 1 << 20

/** Starts the server on 127.0.0.1 at `port` (0 = any free port). */
export async function startExecServer(opts: ExecServerOptions, port = 0): Promise<ExecServer> {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (offered) => chooseProtocol(offered, opts.v4Only()),
  })
  const server = https.createServer({cert: opts.cert, key: opts.key, ca: opts.ca, requestCert: true, rejectUnauthorized: true})
  server.on('request', (req, res) => {
    handleRequest(req, res, opts.containers).catch((err) => {
      opts.log(`kubelet API ${req.url}: ${String(err)}`)
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const route = parseExecUrl(req.url ?? '')
    const reject = (code: number, message: string) => {
      socket.end(`HTTP/1.1 ${code} ${message}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`)
    }
    if (!route) return reject(404, 'not found')
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return reject(400, 'this node serves exec over WebSocket only, not SPDY')
    const target = opts.containers.findContainer(route.namespace, route.pod, route.container)
    if (!target) return reject(404, `container ${route.container} not found in pod ${route.namespace}/${route.pod}`)
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    if (!chooseProtocol(new Set(offered), opts.v4Only())) {
      return reject(400, `no supported subprotocol offered (this node speaks ${opts.v4Only() ? V4 : `${V5}, ${V4}`})`)
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      runExec(ws, route, target, opts).catch((err) => {
        opts.log(`exec ${route.namespace}/${route.pod}: ${String(err)}`)
        ws.terminate()
      })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  // Serving must not keep the test process alive by itself; running execs and their sockets do.
  server.unref()
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Picks the subprotocol a kubelet of this kind would: v5 when offered and allowed, else v4. */
export function chooseProtocol(offered: Set<string>, v4Only: boolean): string | false {
  if (!v4Only && offered.has(V5)) return V5
  if (offered.has(V4)) return V4
  return false
}

interface ExecRoute {
  namespace: string
  pod: string
  container: string
  command: string[]
  stdin: boolean
  stdout: boolean
  stderr: boolean
  tty: boolean
}

/** Parses `/exec/{ns}/{pod}[/{uid}]/{container}?command=…` (the kubelet also accepts the pod UID form). */
export function parseExecUrl(url: string): ExecRoute | undefined {
  const parsed = new URL(url, 'https://node')
  const parts = parsed.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  if (parts[0] !== 'exec' || (parts.length !== 4 && parts.length !== 5)) return undefined
  const flag = (name: string) => ['1', 'true'].includes(parsed.searchParams.get(name) ?? '')
  return {
    namespace: parts[1]!,
    pod: parts[2]!,
    container: parts[parts.length - 1]!,
    command: parsed.searchParams.getAll('command'),
    stdin: flag('input'),
    stdout: flag('output'),
    stderr: flag('error'),
    tty: flag('tty'),
  }
}

/** The channel-3 status a kubelet sends when the command ends. */
export function exitStatus(exitCode: number, command: string[]): Record<string, unknown> {
  if (exitCode === 0) return {metadata: {}, status: 'Success'}
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: {causes: [{reason: 'ExitCode', message: String(exitCode)}]},
  }
}

/** Serves one exec session: starts the command, pumps the channels, reports the exit status. */
async function runExec(ws: WebSocket, route: ExecRoute, target: ExecTarget, opts: ExecServerOptions): Promise<void> {
  const faults = opts.faults.take(route.pod)
  const protocol = ws.protocol
  const label = `exec ${route.namespace}/${route.pod}/${route.container} ${JSON.stringify(route.command)} (${protocol})`
  const session = new ExecSession(ws, faults, route.command)

  const program = route.command[0]
  if (!program || !(await hasExecutable(target.sandbox.rootfs, program, target.sandbox.workingDir))) {
    // What runc reports through docker/cri-dockerd for a missing binary (exit 126);
    // containerd reports the same text as an InternalError status instead.
    session.started()
    const message = `OCI runtime exec failed: exec failed: unable to start container process: exec: "${program ?? ''}": executable file not found in $PATH: unknown\r\n`
    await session.send(route.tty ? STDOUT : STDERR, Buffer.from(message))
    await session.finish(126)
    opts.log(`${label}: executable not found in image ${target.image ?? '?'}`)
    return
  }

  const child = spawnInContainer(target.sandbox, route.command)
  target.processes.add(child)
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      opts.log(`${label}: cannot start: ${String(err)}`)
      resolve(127)
    })
    child.once('exit', (code, signal) => resolve(code ?? 128 + signalNumber(signal)))
  }).finally(() => target.processes.delete(child))

  const killGroup = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  // A client that goes away takes its command with it, as on a real kubelet.
  ws.once('close', killGroup)
  session.onCut = killGroup

  child.stdin!.on('error', () => {
    // EPIPE: the command exited without reading all of its stdin; the exit status tells the story.
  })
  if (route.stdin) session.feedStdin(child.stdin!, protocol === V5)
  else child.stdin!.end()
  session.started()

  const pumps = [
    session.pump(child.stdout!, route.stdout ? STDOUT : undefined),
    session.pump(child.stderr!, route.stderr ? (route.tty ? STDOUT : STDERR) : undefined),
  ]
  const [exitCode] = await Promise.all([exited, ...pumps])
  await session.finish(exitCode)
  opts.log(`${label}: exit ${exitCode}, ${session.bytesIn} bytes in, ${session.bytesOut} bytes out${describeFaults(faults)}`)
}

/** The channel framing, flow control and fault injection of one exec WebSocket. */
class ExecSession {
  bytesIn = 0
  bytesOut = 0
  /** Called when a `cutAfterBytes` fault breaks the stream. */
  onCut: () => void = () => {}
  private cut = false
  private readonly holds = new Set<string>()
  private readAllowedAt = 0
  private readTimer?: NodeJS.Timeout

  constructor(private readonly ws: WebSocket, private readonly faults: ActiveFaults, private readonly command: string[]) {
    // Frames that arrive before the command runs would be dropped with no listener: hold them in the socket.
    this.hold('starting')
  }

  /** Lets the client's frames in once the command is set up to take them. */
  started(): void {
    this.release('starting')
  }

  /** Whether the stream can still carry frames. */
  get open(): boolean {
    return !this.cut && this.ws.readyState === WebSocket.OPEN
  }

  /** Writes channel 0 frames to `stdin`, pausing the socket while `stdin` is full or the slow-reader fault throttles. */
  feedStdin(stdin: NodeJS.WritableStream, v5: boolean): void {
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length === 0) return
      const channel = data[0]
      if (channel === STDIN) {
        const payload = data.subarray(1)
        this.bytesIn += payload.length
        if (!stdin.write(payload)) {
          this.hold('stdin-full')
          stdin.once('drain', () => this.release('stdin-full'))
        }
        const rate = this.faults.slowReaderBytesPerSec
        if (rate && payload.length > 0) {
          // Frames already read when the socket paused still arrive: each pushes the reopening further out.
          const now = Date.now()
          this.readAllowedAt = Math.max(now, this.readAllowedAt) + (payload.length / rate) * 1000
          this.hold('slow-reader')
          clearTimeout(this.readTimer)
          this.readTimer = setTimeout(() => this.release('slow-reader'), this.readAllowedAt - now)
        }
      } else if (channel === CLOSE && v5 && data[1] === STDIN) {
        stdin.end()
      } else if (channel === RESIZE) {
        // No terminal to resize: commands run without a pty.
      }
    })
  }

  /**
   * Copies `stream` to `channel` (or discards it when the client did not ask
   * for it). Reading waits for the socket to drain, so a slow client slows the
   * command through its pipe instead of filling the node's memory.
   */
  async pump(stream: Readable, channel: number | undefined): Promise<void> {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (channel === undefined || !this.open) continue
        const rate = channel === STDOUT ? this.faults.slowWriterBytesPerSec : undefined
        // Throttled output goes out in pieces of a tenth of a second each.
        const pieceSize = rate ? Math.max(1, Math.floor(rate / 10)) : chunk.length
        for (let offset = 0; offset < chunk.length && this.open; offset += pieceSize) {
          let piece = chunk.subarray(offset, offset + pieceSize)
          const limit = channel === STDOUT ? this.faults.cutAfterBytes : undefined
          const cutNow = limit !== undefined && this.bytesOut + piece.length >= limit
          if (cutNow) piece = piece.subarray(0, limit - this.bytesOut)
          if (channel === STDOUT) this.bytesOut += piece.length
          await this.send(channel, piece)
          if (cutNow) {
            this.breakStream()
            break
          }
          if (rate) await sleep((piece.length / rate) * 1000)
        }
      }
    } catch {
      // The stream was destroyed because the command was killed; nothing more to send.
    }
  }

  /** Sends one frame; waits for it to be written when too much is queued. */
  async send(channel: number, payload: Buffer): Promise<void> {
    if (!this.open) return
    const frame = Buffer.allocUnsafe(payload.length + 1)
    frame[0] = channel
    payload.copy(frame, 1)
    const written = new Promise<void>((resolve) => this.ws.send(frame, {binary: true}, () => resolve()))
    if (this.ws.bufferedAmount > HIGH_WATER) await written
  }

  /** Sends the exit status (unless the dropStatus fault is on) and closes the stream normally. */
  async finish(exitCode: number): Promise<void> {
    if (!this.open) return
    if (!this.faults.dropStatus) await this.send(STATUS, Buffer.from(JSON.stringify(exitStatus(exitCode, this.command))))
    this.ws.close(1000)
  }

  /** Ends the connection without a close frame, as a crashed node or a cut network would. */
  private breakStream(): void {
    this.cut = true
    this.onCut()
    // Let the frames already queued reach the socket first, so exactly `cutAfterBytes` arrive.
    const socket = (this.ws as unknown as {_socket?: Socket})._socket
    if (socket) socket.end(() => socket.destroy())
    else this.ws.terminate()
  }

  private hold(reason: string): void {
    if (this.holds.size === 0) this.ws.pause()
    this.holds.add(reason)
  }

  private release(reason: string): void {
    if (!this.holds.delete(reason)) return
    if (this.holds.size === 0) this.ws.resume()
  }
}

/** Serves the plain HTTP endpoints: /healthz and /containerLogs. */
async function handleRequest(req: IncomingMessage, res: ServerResponse, containers: ContainerDirectory): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://node')
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  if (req.method === 'GET' && url.pathname === '/healthz') {
    res.writeHead(200, {'content-type': 'text/plain'}).end('ok')
    return
  }
  if (req.method === 'GET' && parts[0] === 'containerLogs' && parts.length === 4) {
    const target = containers.findContainer(parts[1]!, parts[2]!, parts[3]!)
    if (!target) {
      res.writeHead(404, {'content-type': 'text/plain'}).end(`container ${parts[3]} not found in pod ${parts[1]}/${parts[2]}`)
      return
    }
    res.writeHead(200, {'content-type': 'text/plain'}).end(selectLogLines(await readFile(target.logFile), url.searchParams))
    return
  }
  if (parts[0] === 'exec') {
    res.writeHead(400, {'content-type': 'text/plain'}).end('exec needs a WebSocket upgrade; this node does not serve SPDY')
    return
  }
  res.writeHead(404, {'content-type': 'text/plain'}).end('not found')
}

/**
 * Applies `tailLines` and `limitBytes` to a log. `follow` returns what is
 * there: nothing long-lived runs on this node, so no more lines will come.
 */
export function selectLogLines(log: Buffer, query: URLSearchParams): Buffer {
  let out = log
  const tail = query.get('tailLines')
  if (tail !== null) {
    const lines = out.toString('utf8').split('\n')
    if (lines.at(-1) === '') lines.pop()
    const kept = Number(tail) > 0 ? lines.slice(-Number(tail)) : []
    out = Buffer.from(kept.map((l) => `${l}\n`).join(''))
  }
  const limit = query.get('limitBytes')
  if (limit !== null) out = out.subarray(0, Number(limit))
  return out
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15}
  return (signal && numbers[signal]) ?? 0
}

function describeFaults(faults: ActiveFaults): string {
  const on = Object.entries(faults).filter(([, v]) => v !== undefined && v !== false)
  return on.length ? ` [faults: ${on.map(([k, v]) => `${k}=${String(v)}`).join(' ')}]` : ''
}
