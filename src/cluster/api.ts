/**
 * A small JSON client for the Kubernetes REST API on top of the kubeconfig's
 * credentials. kubesnap needs objects exactly as the server returned them
 * (client-node's typed models drop unknown fields), a request count for the
 * benchmark, deadlines, and retries that never repeat a write the server may
 * have applied (retry.ts); this gives all four.
 */
import https from 'node:https'
import http from 'node:http'
import {URL} from 'node:url'
import pRetry, {AbortError} from 'p-retry'
import type {V1Status} from '@kubernetes/client-node'
import {KubesnapError, messageOf} from '../errors.js'
import {AgentPool} from './agents.js'
import type {LoadedConfig} from './kubeconfig.js'
import {isWrite, mayHaveApplied, NETWORK_CODES, shouldRetry, type AttemptFailure} from './retry.js'

/** A non-2xx answer from the API server, with its `Status` body when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly statusCode: number,
    readonly status: V1Status | undefined,
    readonly retryAfterSeconds?: number,
  ) {
    super(status?.message || `${method} ${path} answered ${statusCode}`)
    this.name = 'ApiError'
  }

  /** The Status `reason` (NotFound, Forbidden, AlreadyExists, Expired, …). */
  get reason(): string | undefined {
    return this.status?.reason
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  /** Defaults to application/json when there is a body. */
  contentType?: string
  /** Whole-request deadline; default 60 s. */
  timeoutMs?: number
  /** Attempts after the first, when shouldRetry allows one; default 4. */
  retries?: number
}

export interface ApiClientOptions {
  timeoutMs?: number
  retries?: number
  userAgent?: string
}

/** How a failed request went, for its caller to settle a write whose answer was lost. */
export interface RequestFailure {
  /** Attempts sent, the last included. */
  attempts: number
  /** Whether the last attempt may have been applied (see mayHaveApplied). */
  mayHaveApplied: boolean
}

/** Connections a client keeps to the API server at most; more requests at once wait for one. */
export const MAX_CONNECTIONS = 16

const failures = new WeakMap<object, RequestFailure>()

/** How the request that threw `err` went; undefined for errors that did not come from a request. */
export function requestFailure(err: unknown): RequestFailure | undefined {
  return typeof err === 'object' && err !== null ? failures.get(err) : undefined
}

/** A JSON client bound to one kubeconfig context. */
export class KubeApi {
  /** Requests sent, retries included: the benchmark reports it. */
  requests = 0
  /** Writes (not dry runs) that were, or may have been, applied: restore's exit code tells "nothing was written" by it. */
  writes = 0
  // Keep-alive agents, direct or through `proxy-url`: a TLS handshake per page would dominate big lists.
  private readonly agents = new AgentPool({keepAlive: true, maxSockets: MAX_CONNECTIONS})
  private readonly base: URL

  constructor(readonly config: LoadedConfig, private readonly options: ApiClientOptions = {}) {
    this.base = new URL(config.server)
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options)
  }

  /**
   * GETs the answer's raw bytes, unparsed, read into `into`: the result is a
   * view of its memory, good until the next request that reads into it. A
   * lister reuses one buffer for all its pages instead of a new one per page.
   */
  getBytes(path: string, into: ByteBuffer, options?: RequestOptions): Promise<Buffer> {
    return this.exchange('GET', path, options ?? {}, into)
  }

  post<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, {...options, body})
  }

  put<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, {...options, body})
  }

  patch<T>(path: string, body: unknown, contentType: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, {...options, body, contentType})
  }

  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, options)
  }

  /**
   * Sends one request and parses the JSON answer, retrying 429 and 5xx (after
   * `Retry-After` when given) and dropped connections of reads. Unreachable
   * servers and refused credentials become a KubesnapError sentence.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const body = await this.exchange(method, path, options, new ByteBuffer())
    if (body.length === 0) return undefined as T
    try {
      return JSON.parse(body.toString('utf8')) as T
    } catch (err) {
      throw new Error(`${method} ${path} returned invalid JSON: ${messageOf(err)}`)
    }
  }

  /**
   * Sends one request as request() does and resolves once it succeeded,
   * leaving the answer unparsed: for writes whose answer nobody reads (a
   * create's answer is the whole object again, which restore would parse
   * only to drop, 10,000 times).
   */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<void> {
    await this.exchange(method, path, options, undefined)
  }

  /**
   * Sends one request with the retries and explanations of request(); resolves
   * with the body of a 2xx answer, read into `into` (without it, the body of a
   * 2xx answer is not kept: the result is empty).
   */
  private async exchange(method: string, path: string, options: RequestOptions, into: ByteBuffer | undefined): Promise<Buffer> {
    const retries = options.retries ?? this.options.retries ?? 4
    const write = isWrite(method, path, Boolean(options.query?.dryRun))
    // Serialized once, as bytes, whatever the attempts: a string body would be measured and encoded again by every write.
    const payload = options.body === undefined ? undefined
      : Buffer.isBuffer(options.body) ? options.body : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body))
    let attempts = 0
    let last: AttemptFailure | undefined
    try {
      const body = await pRetry(
        async () => {
          attempts++
          try {
            return await this.once(method, path, payload, options, into)
          } catch (err) {
            last = attemptFailure(err)
            if (!last || !shouldRetry(write, last)) throw new AbortError(err as Error)
            if (err instanceof ApiError && err.retryAfterSeconds) await sleep(Math.min(err.retryAfterSeconds, 10) * 1000)
            throw err
          }
        },
        {retries, minTimeout: 200, maxTimeout: 3000, factor: 2, randomize: true},
      )
      if (write) this.writes++
      return body
    } catch (err) {
      const explained = this.explain(err)
      const maybe = last !== undefined && mayHaveApplied(write, last)
      if (write && maybe) this.writes++
      if (typeof explained === 'object' && explained !== null) failures.set(explained, {attempts, mayHaveApplied: maybe})
      throw explained
    }
  }

  /** Turns transport failures into the sentences a user can act on. */
  private explain(err: unknown): unknown {
    const server = this.config.server
    const context = this.config.context
    if (err instanceof ApiError) {
      if (err.statusCode === 401) {
        return new KubesnapError(`The API server at ${server} refused the credentials of context "${context}" (401 Unauthorized); log in again or fix the user in the kubeconfig.`, {cause: err})
      }
      return err
    }
    if (err instanceof KubesnapError) return err
    const code = (err as NodeJS.ErrnoException)?.code ?? ''
    if (isNetworkError(err)) {
      return new KubesnapError(`Cannot reach the Kubernetes API server at ${server} (${code || messageOf(err)}); check that the cluster is up and that --context/--kubeconfig point at it.`, {cause: err})
    }
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
      return new KubesnapError(`The API server's certificate at ${server} is not trusted (${code}); check certificate-authority for context "${context}" in the kubeconfig.`, {cause: err})
    }
    return err
  }

  /** Releases pooled sockets so the process can exit. */
  close(): void {
    this.agents.destroy()
  }

  private async once(method: string, path: string, body: Buffer | undefined, options: RequestOptions, into: ByteBuffer | undefined): Promise<Buffer> {
    const url = new URL(this.base.pathname.replace(/\/$/, '') + path, this.base)
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value))
    }
    const requestOptions: https.RequestOptions = {headers: {}}
    await this.config.kc.applyCredentials(requestOptions)
    const agent = await this.agents.agentFor(this.config.kc.getCurrentCluster(), requestOptions)
    const headers: http.OutgoingHttpHeaders = {
      ...(requestOptions.headers as http.OutgoingHttpHeaders),
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'kubesnap',
    }
    if (body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/json'
      headers['content-length'] = body.length
    }
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 60_000
    this.requests++

    return new Promise<Buffer>((resolve, reject) => {
      const transport = url.protocol === 'https:' ? https : http
      const req = transport.request(url, {method, headers, agent, auth: requestOptions.auth}, (res) => {
        // Copied into one buffer as it arrives (sized up front when the length is known):
        // a page is held once, not as chunks plus a joined copy.
        const status = res.statusCode ?? 0
        // An error's body is the Status that explains it: always read. A success's only when wanted.
        const answer = status >= 200 && status < 300 ? into : new ByteBuffer()
        answer?.reset(Number(res.headers['content-length']) || 0)
        res.on('data', (chunk: Buffer) => answer?.append(chunk))
        res.on('error', reject)
        res.on('end', () => {
          clearTimeout(timer)
          if (!answer) {
            resolve(Buffer.alloc(0))
            return
          }
          if (status >= 200 && status < 300) {
            resolve(answer.bytes())
            return
          }
          let statusBody: V1Status | undefined
          try {
            const parsed = JSON.parse(answer.bytes().toString('utf8'))
            if (parsed?.kind === 'Status') statusBody = parsed
          } catch {
            // Not JSON (a proxy's page): the status code says enough.
          }
          const retryAfter = Number(res.headers['retry-after'])
          reject(new ApiError(method, url.pathname, status, statusBody, Number.isFinite(retryAfter) ? retryAfter : undefined))
        })
      })
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`no answer within ${timeoutMs} ms`), {code: 'ETIMEDOUT'})
        req.destroy(err)
      }, timeoutMs)
      // Whether any byte may have left: once the connection (and TLS session) is up, the request goes out.
      let sent = false
      req.on('socket', (socket) => {
        if (!socket.connecting) sent = true
        else socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => (sent = true))
      })
      req.on('error', (err) => {
        clearTimeout(timer)
        reject(Object.assign(err, {requestSent: sent}))
      })
      req.end(body)
    })
  }
}

/** A growable byte buffer, reused from one answer to the next. */
export class ByteBuffer {
  #buffer = Buffer.alloc(0)
  #length = 0

  /** Empties it, making room for `expected` bytes at once when known. */
  reset(expected = 0): void {
    this.#length = 0
    if (expected > this.#buffer.length) this.#buffer = Buffer.allocUnsafe(expected)
  }

  append(chunk: Buffer): void {
    const needed = this.#length + chunk.length
    if (needed > this.#buffer.length) {
      // By half, not double: the room stays for every later page and type. No
      // minimum: a small answer (most requests are one) costs its own size.
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.ceil(this.#buffer.length * 1.5)))
      this.#buffer.copy(grown, 0, 0, this.#length)
      this.#buffer = grown
    }
    chunk.copy(this.#buffer, this.#length)
    this.#length = needed
  }

  /** The bytes held: a view, valid until the next reset(). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length)
  }
}

/** How one attempt failed, for shouldRetry; undefined for what is neither an answer nor a connection error. */
function attemptFailure(err: unknown): AttemptFailure | undefined {
  if (err instanceof ApiError) return {status: err.statusCode}
  const code = (err as NodeJS.ErrnoException)?.code
  if (!code) return undefined
  return {network: code, sent: (err as {requestSent?: boolean}).requestSent !== false}
}

/** True for errors of the connection rather than of the request. */
function isNetworkError(err: unknown): boolean {
  return NETWORK_CODES.has((err as NodeJS.ErrnoException)?.code ?? '')
}

/** True when the error is the API's answer with this HTTP status. */
export function isStatus(err: unknown, code: number): err is ApiError {
  return err instanceof ApiError && err.statusCode === code
}

/**
 * Turns a failed API call into one sentence of what could not be done, the
 * server's reason and what to do; `forbidden` is what to do about a 403 (which
 * right to grant, and where). Sentences the client made already
 * (unreachable server, refused credentials) and other errors pass through.
 */
export function apiFailure(err: unknown, action: string, forbidden?: string): Error {
  if (!(err instanceof ApiError)) return err instanceof Error ? err : new Error(String(err))
  const reason = `${err.statusCode}${err.reason ? ` ${err.reason}` : ''}: ${err.message.replace(/\.$/, '')}`
  const fix = err.statusCode === 403 && forbidden ? forbidden
    : err.statusCode === 409 ? 'something else changed it at the same time: run again'
      : err.statusCode === 429 || err.statusCode >= 500 ? 'the API server kept failing after retries: check its health and run again'
        : 'fix what the server says and run again'
  return new KubesnapError(`Could not ${action} (${reason}); ${fix}.`, {cause: err})
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
