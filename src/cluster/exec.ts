/**
 * Runs a command in a container over the exec API (a WebSocket through the
 * API server), with what @kubernetes/client-node's `Exec` lacks:
 *
 * - it settles when the command has ended, on the channel-3 status, never
 *   when the socket opens; a socket that ends without a status is an error,
 *   because exec can lose the tail of a stream and still close cleanly;
 * - backpressure both ways: the socket is paused while the stdout consumer is
 *   full, and stdin is sent only as fast as the socket drains, so memory
 *   stays flat whatever the speeds at either end;
 * - stdin EOF: on `v5.channel.k8s.io` the close frame `[255, 0]` ends the
 *   command's stdin; `v4.channel.k8s.io` (servers before 1.30) has no way to
 *   say it, so there stdin must come with its length and the command must stop
 *   reading by itself (`sh -c 'head -c N | tar xf - -C DIR'`); the socket then
 *   stays open until the status arrives.
 *
 *   const result = await execInPod(api, {namespace, pod, container, command: ['tar', 'cf', '-', '-C', '/data', '.'], stdout})
 */
import type {Readable, Writable} from 'node:stream'
import {finished} from 'node:stream/promises'
import type https from 'node:https'
import type {V1Status} from '@kubernetes/client-node'
import WebSocket from 'ws'
import type {KubeApi} from './api.js'
import type {RequestConfig} from './kubeconfig.js'

export const V5_PROTOCOL = 'v5.channel.k8s.io'
export const V4_PROTOCOL = 'v4.channel.k8s.io'
/** The subprotocols offered, best first: only these two can carry an exit status and stdin. */
const PROTOCOLS = [V5_PROTOCOL, V4_PROTOCOL]

export type ExecProtocol = typeof V5_PROTOCOL | typeof V4_PROTOCOL

const STDIN = 0
const STDOUT = 1
const STDERR = 2
const STATUS = 3
const CLOSE = 255

/** Bytes queued on the socket above which sending stdin waits for the socket to drain. */
const SEND_HIGH_WATER = 1 << 20
/** stdin is sent in frames of at most this size, so one huge chunk cannot overshoot the high water mark by much. */
const MAX_FRAME = 256 * 1024
/** stderr kept for messages: the first bytes (where a command says what went wrong). */
const STDERR_LIMIT = 64 * 1024
/** After the status, how long the server gets to close the socket before we drop it. */
const CLOSE_GRACE_MS = 5000

/** stdin of known length: required on v4, where the end of stdin cannot be signalled. */
export interface SizedInput {
  length: number
  stream: Readable
}

export interface ExecOptions {
  namespace: string
  pod: string
  container: string
  command: string[]
  /** Sent to the command's stdin; a bare stream is refused on a v4-only server (give its length). */
  stdin?: Readable | SizedInput
  /** Receives the command's stdout, with backpressure; ended when the command succeeds, destroyed otherwise (a pipeline reading it then fails). Discarded (but counted) when absent. */
  stdout?: Writable
  /** Aborts the exec: the socket is dropped (the server kills the command) and the promise rejects. */
  signal?: AbortSignal
  /** Called once the protocol is negotiated, before any stdin is sent. */
  onOpen?: (protocol: ExecProtocol) => void
  /** How messages name the command (default: the command, shortened), e.g. `tar of /data`. */
  label?: string
}

/** A command that ran to its end with exit code 0. */
export interface ExecResult {
  exitCode: 0
  /** The command's stderr (its first 64 KiB), decoded as UTF-8. */
  stderr: string
  stdoutBytes: number
  stdinBytes: number
  protocol: ExecProtocol
}

/**
 * How an exec went wrong: `exit` (the command failed: `exitCode` is set when
 * the server says it), `cut` (the socket ended before the status), `refused`
 * (the server would not start it: 403, 404, no container…), `usage` (stdin
 * without a length on v4), `aborted`.
 */
export type ExecFailure = 'exit' | 'cut' | 'refused' | 'usage' | 'aborted'

/** An exec that did not succeed; the message is one sentence naming pod, container and command. */
export class ExecError extends Error {
  constructor(
    message: string,
    readonly failure: ExecFailure,
    readonly details: {
      namespace: string
      pod: string
      container: string
      command: string[]
      exitCode?: number
      stderr: string
      stdoutBytes: number
      stdinBytes: number
      protocol?: ExecProtocol
      status?: V1Status
      httpStatus?: number
    },
  ) {
    super(message)
    this.name = 'ExecError'
  }

  get exitCode(): number | undefined {
    return this.details.exitCode
  }

  get stderr(): string {
    return this.details.stderr
  }
}

/**
 * Runs `command` in the container and resolves once it has exited 0 (the
 * channel-3 Success status). Rejects with an ExecError otherwise: the command's
 * exit code and stderr when it failed, `cut` when the stream ended without a
 * status.
 */
export async function execInPod(client: KubeApi | RequestConfig, options: ExecOptions): Promise<ExecResult> {
  const kc = 'config' in client ? client.config.kc : client
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('The kubeconfig has no current cluster; pass --context.')
  const url = execUrl(cluster.server, options)
  // TLS material, bearer token or exec-plugin credentials, and the proxy agent, as for any request.
  const tls: Record<string, unknown> & {headers?: Record<string, string>} = {}
  await kc.applyToHTTPSOptions(tls as https.RequestOptions)
  return new ExecSession(options).run(() =>
    new WebSocket(url, PROTOCOLS, {...tls, headers: {...tls.headers, 'user-agent': 'kubesnap'}, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024}),
  )
}

/** The exec URL of the API server: the command as repeated `command` parameters. */
export function execUrl(server: string, options: Pick<ExecOptions, 'namespace' | 'pod' | 'container' | 'command' | 'stdin'>): string {
  const base = new URL(server)
  base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
  const path = `${base.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods/${encodeURIComponent(options.pod)}/exec`
  const url = new URL(path, base)
  for (const arg of options.command) url.searchParams.append('command', arg)
  url.searchParams.set('container', options.container)
  url.searchParams.set('stdin', String(options.stdin !== undefined))
  url.searchParams.set('stdout', 'true')
  url.searchParams.set('stderr', 'true')
  return url.toString()
}

/** Reads the exit code out of a Failure status (`causes[{reason: ExitCode, message: "N"}]`). */
export function exitCodeOf(status: V1Status | undefined): number | undefined {
  if (!status || status.status === 'Success') return status ? 0 : undefined
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
  const code = Number(cause?.message)
  return Number.isInteger(code) ? code : undefined
}

/** One exec: the socket, its channels, and how it ends. */
class ExecSession {
  private ws?: WebSocket
  private protocol?: ExecProtocol
  private status?: V1Status
  private stderr: Buffer[] = []
  private stderrBytes = 0
  private stdoutBytes = 0
  private stdinBytes = 0
  private settled = false
  private waitingForDrain = false
  private resolve!: (result: ExecResult) => void
  private reject!: (err: ExecError) => void
  private closeTimer?: NodeJS.Timeout

  constructor(private readonly options: ExecOptions) {}

  run(open: () => WebSocket): Promise<ExecResult> {
    const done = new Promise<ExecResult>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    const signal = this.options.signal
    if (signal?.aborted) {
      this.fail('aborted', 'was aborted before it started')
      return done
    }
    const onAbort = () => this.fail('aborted', 'was aborted')
    signal?.addEventListener('abort', onAbort, {once: true})
    done.then(() => signal?.removeEventListener('abort', onAbort), () => signal?.removeEventListener('abort', onAbort))

    const ws = open()
    this.ws = ws
    ws.binaryType = 'nodebuffer'
    ws.on('unexpected-response', (_req, res) => {
      // The upgrade was refused: the body is a Status (403 Forbidden, 404 pod not found…).
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (body.length < STDERR_LIMIT) body += chunk
      })
      res.on('end', () => {
        let message = body.trim()
        try {
          message = (JSON.parse(body) as V1Status).message ?? message
        } catch {
          // Not a Status: keep the text.
        }
        this.fail('refused', `was refused by the API server (${res.statusCode}${message ? `: ${message}` : ''})`, {httpStatus: res.statusCode})
      })
      res.on('error', () => this.fail('refused', `was refused by the API server (${res.statusCode})`, {httpStatus: res.statusCode}))
    })
    ws.on('error', (err: Error) => this.fail('cut', `failed on its connection (${err.message})`))
    ws.on('open', () => this.opened())
    ws.on('message', (data: Buffer) => this.frame(data))
    ws.on('close', (code: number) => this.closed(code))
    return done
  }

  private opened(): void {
    const protocol = this.ws!.protocol
    if (protocol !== V5_PROTOCOL && protocol !== V4_PROTOCOL) {
      this.fail('refused', `cannot run: the server speaks ${protocol || 'no subprotocol'}, not ${PROTOCOLS.join(' or ')}`)
      return
    }
    this.protocol = protocol
    this.options.onOpen?.(protocol)
    const stdin = this.options.stdin
    if (stdin === undefined) return
    const sized = isSized(stdin)
    if (protocol === V4_PROTOCOL && !sized) {
      this.fail('usage', `cannot end its stdin: the server speaks only ${V4_PROTOCOL}, so stdin needs a length and a command that stops reading by itself (head -c N)`)
      return
    }
    this.sendStdin(sized ? stdin.stream : stdin, sized ? stdin.length : undefined).catch((err: Error) => {
      this.fail('usage', `could not send its stdin (${err.message})`)
    })
  }

  /** Sends stdin in frames, waiting whenever more than the high water mark is queued on the socket. */
  private async sendStdin(stream: Readable, length: number | undefined): Promise<void> {
    const ws = this.ws!
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      if (this.settled || this.status) break
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      for (let offset = 0; offset < data.length; offset += MAX_FRAME) {
        const piece = data.subarray(offset, offset + MAX_FRAME)
        if (length !== undefined && this.stdinBytes + piece.length > length) {
          throw new Error(`the stream is longer than the ${length} bytes announced`)
        }
        const frame = Buffer.allocUnsafe(piece.length + 1)
        frame[0] = STDIN
        piece.copy(frame, 1)
        const sent = new Promise<void>((resolve, reject) => ws.send(frame, {binary: true}, (err) => (err ? reject(err) : resolve())))
        sent.catch(() => {}) // a send failure shows as the socket's close
        this.stdinBytes += piece.length
        if (ws.bufferedAmount > SEND_HIGH_WATER) await sent
        if (this.settled || this.status) return
      }
    }
    if (this.settled || this.status) return
    if (length !== undefined && this.stdinBytes !== length) {
      throw new Error(`the stream ended after ${this.stdinBytes} of the ${length} bytes announced`)
    }
    // v5 ends the command's stdin; on v4 the command stops after `length` bytes by itself.
    if (this.protocol === V5_PROTOCOL) ws.send(Buffer.from([CLOSE, STDIN]), {binary: true})
  }

  private frame(data: Buffer): void {
    if (this.settled || data.length === 0) return
    const channel = data[0]
    const payload = data.subarray(1)
    if (channel === STDOUT) {
      this.stdoutBytes += payload.length
      const out = this.options.stdout
      if (out && payload.length > 0 && !out.write(payload) && !this.waitingForDrain) {
        // Stop reading the socket until the consumer catches up: TCP then slows the pod.
        // (A few frames already parsed may still arrive; they are bounded.)
        this.waitingForDrain = true
        this.ws!.pause()
        out.once('drain', () => {
          this.waitingForDrain = false
          this.ws?.resume()
        })
      }
    } else if (channel === STDERR) {
      if (this.stderrBytes < STDERR_LIMIT) this.stderr.push(payload.subarray(0, STDERR_LIMIT - this.stderrBytes))
      this.stderrBytes += payload.length
    } else if (channel === STATUS) {
      try {
        this.status = JSON.parse(payload.toString('utf8')) as V1Status
      } catch {
        this.status = {status: 'Failure', message: `unreadable status ${payload.toString('utf8').slice(0, 200)}`}
      }
      // The command has ended: nothing more to send; the server closes the socket next.
      this.closeTimer = setTimeout(() => this.ws?.terminate(), CLOSE_GRACE_MS)
      this.closeTimer.unref()
    }
  }

  private closed(code: number): void {
    clearTimeout(this.closeTimer)
    if (this.settled) return
    const status = this.status
    if (!status) {
      const how = code === 1000 ? 'closed normally' : `broke off (close code ${code})`
      this.fail('cut', `lost its stream: the connection ${how} after ${this.stdoutBytes} stdout bytes without an exit status (stream cut)`)
      return
    }
    if (status.status === 'Success') {
      this.settled = true
      const result: ExecResult = {exitCode: 0, stderr: this.stderrText(), stdoutBytes: this.stdoutBytes, stdinBytes: this.stdinBytes, protocol: this.protocol!}
      const out = this.options.stdout
      if (!out) return this.resolve(result)
      // Resolve once the consumer has taken every byte, not when the last one
      // left the socket: a slow consumer may still hold the tail in its queue.
      // (Its own failure is its pipeline's to report.)
      out.end()
      void finished(out, {readable: false}).catch(() => undefined).then(() => this.resolve(result))
      return
    }
    const exitCode = exitCodeOf(status)
    const stderr = this.stderrText().trim()
    const why = exitCode !== undefined ? `exited with code ${exitCode}` : `failed (${status.reason ?? 'Failure'}: ${status.message ?? 'no message'})`
    this.fail('exit', `${why}${stderr ? `: ${lastLines(stderr)}` : ''}`, {exitCode})
  }

  private fail(failure: ExecFailure, what: string, extra: {exitCode?: number; httpStatus?: number} = {}): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.closeTimer)
    const o = this.options
    const err = new ExecError(`The command ${o.label ?? `\`${describeCommand(o.command)}\``} in pod ${o.namespace}/${o.pod}, container ${o.container}, ${what}.`, failure, {
      namespace: o.namespace,
      pod: o.pod,
      container: o.container,
      command: o.command,
      stderr: this.stderrText(),
      stdoutBytes: this.stdoutBytes,
      stdinBytes: this.stdinBytes,
      protocol: this.protocol,
      status: this.status,
      ...extra,
    })
    // Dropping the socket makes the server kill the command, as kubectl's Ctrl-C does.
    if (this.ws && this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate()
    // Destroyed without the error (which the caller gets from the promise): a pipeline
    // reading it fails with a premature close, and no unhandled 'error' event can escape.
    this.options.stdout?.destroy()
    this.reject(err)
  }

  private stderrText(): string {
    return Buffer.concat(this.stderr).toString('utf8')
  }
}

function isSized(stdin: Readable | SizedInput): stdin is SizedInput {
  return typeof (stdin as SizedInput).length === 'number' && 'stream' in stdin
}

/** The command as a person would type it, shortened: scripts passed to `sh -c` can be long. */
export function describeCommand(command: string[]): string {
  const text = command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ')
  const oneLine = text.replace(/\s*\n\s*/g, '; ')
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine
}

/** The last lines of a stderr, on one line: what a sentence can carry. */
function lastLines(text: string, lines = 3): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-lines).join(' / ')
}
