/**
 * A small Kubernetes REST client for the node, authenticated with the node's
 * client certificate (`system:node:<name>`). The node needs three things that
 * are awkward through @kubernetes/client-node 1.4: strategic-merge patches of
 * status subresources, watches whose resourceVersion it controls (to relist on
 * 410 Gone), and no hidden retries. Plain `https` gives all three in a page.
 */
import https from 'node:https'
import {readFile} from 'node:fs/promises'

/** An error answer from the apiserver: HTTP code and its `Status` message. */
export class ApiError extends Error {
  constructor(readonly code: number, message: string, readonly reason?: string) {
    super(message)
    this.name = 'ApiError'
  }
}

/** One event of a watch stream. */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  object: T
}

/** A running watch; `stop()` ends it without calling `onEnd` with an error. */
export interface WatchHandle {
  stop(): void
}

/** Where the apiserver is and which credentials the node presents. */
export interface ApiClientOptions {
  server: string
  caCertFile: string
  certFile: string
  keyFile: string
}

/** A JSON-over-HTTPS client for one apiserver and one identity. */
export class ApiClient {
  private constructor(private readonly base: URL, private readonly agent: https.Agent, private readonly watchAgent: https.Agent) {}

  /** Reads the credentials and returns a client with a keep-alive connection pool. */
  static async create(opts: ApiClientOptions): Promise<ApiClient> {
    const [ca, cert, key] = await Promise.all([readFile(opts.caCertFile), readFile(opts.certFile), readFile(opts.keyFile)])
    // Watches get their own agent: their sockets are never reused and are unref'd (see watch()).
    return new ApiClient(new URL(opts.server), new https.Agent({ca, cert, key, keepAlive: true, maxSockets: 16}), new https.Agent({ca, cert, key}))
  }

  /** GETs `path` and returns the decoded object. */
  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path)
  }

  /** POSTs `body` to `path`. */
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body)
  }

  /** PUTs `body` to `path`. */
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body)
  }

  /** Applies a strategic-merge patch: lists with merge keys (conditions by `type`) are merged, not replaced. */
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body, 'application/strategic-merge-patch+json')
  }

  /** DELETEs `path` with optional `DeleteOptions`. */
  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, body)
  }

  /** Sends one request and decodes the JSON answer; non-2xx answers become an `ApiError`. */
  request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise<T>((resolve, reject) => {
      const req = https.request(new URL(path, this.base), {
        method,
        agent: this.agent,
        headers: {
          accept: 'application/json',
          ...(payload ? {'content-type': contentType, 'content-length': payload.length} : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) {
            try {
              resolve((text ? JSON.parse(text) : {}) as T)
            } catch (err) {
              reject(new Error(`${method} ${path}: answer is not JSON`, {cause: err}))
            }
            return
          }
          reject(statusError(status, text, `${method} ${path}`))
        })
      })
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  /**
   * Watches `path` (a collection URL with its query) and calls `onEvent` for
   * each event. `onEnd` gets an error when the stream could not start or broke,
   * nothing when the server closed it normally (its watch timeout): the caller
   * decides whether to re-watch from the last resourceVersion or to relist.
   */
  watch<T>(path: string, onEvent: (event: WatchEvent<T>) => void, onEnd: (err?: Error) => void): WatchHandle {
    let stopped = false
    let ended = false
    const end = (err?: Error) => {
      if (ended || stopped) return
      ended = true
      onEnd(err)
    }
    const req = https.request(new URL(path, this.base), {method: 'GET', agent: this.watchAgent, headers: {accept: 'application/json'}}, (res) => {
      if ((res.statusCode ?? 0) !== 200) {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => end(statusError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), `watch ${path}`)))
        res.on('error', end)
        return
      }
      // Watch events are one JSON document per line.
      let pending = ''
      res.setEncoding('utf8')
      res.on('data', (text: string) => {
        pending += text
        let newline: number
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline).trim()
          pending = pending.slice(newline + 1)
          if (!line || stopped) continue
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>)
          } catch (err) {
            end(err as Error)
            req.destroy()
            return
          }
        }
      })
      res.on('end', () => end())
      res.on('error', end)
      res.on('close', () => end())
    })
    req.on('error', end)
    // A watch lasts as long as the node; it must not keep the test process alive by itself.
    req.on('socket', (socket) => socket.unref())
    req.end()
    return {
      stop() {
        stopped = true
        req.destroy()
      },
    }
  }

  /** Closes the pooled connections. */
  close(): void {
    this.agent.destroy()
    this.watchAgent.destroy()
  }
}

/** Returns true when `err` is an `ApiError` with HTTP code `code`. */
export function isApiError(err: unknown, code: number): err is ApiError {
  return err instanceof ApiError && err.code === code
}

function statusError(code: number, text: string, what: string): ApiError {
  let message = text.trim()
  let reason: string | undefined
  try {
    const status = JSON.parse(text) as {message?: string; reason?: string}
    message = status.message ?? message
    reason = status.reason
  } catch {
    // Not a Status object (a proxy or TLS error page): keep the raw text.
  }
  return new ApiError(code, `${what}: ${code} ${message}`, reason)
}
