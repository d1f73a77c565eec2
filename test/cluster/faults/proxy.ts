/**
 * A fault-injecting HTTPS proxy in front of the test apiserver, for the bad
 * days: chosen requests are answered with 429/500/503 (a real `metav1.Status`
 * body, `Retry-After` on 429) or delayed; everything else passes through
 * untouched, watch streams and WebSocket/SPDY upgrades (pod exec) included.
 * It counts and logs every request, so benchmarks can count API calls too.
 *
 * TLS is terminated here with a certificate from a CA of the proxy's own;
 * {@link withProxy} writes a kubeconfig that trusts that CA and points at the
 * proxy. Bearer tokens pass through as headers. A client certificate cannot be
 * forwarded (the proxy does not have its key) unless the kubeconfig went
 * through {@link withProxy}, which hands the proxy the certificate and key so
 * it can present them upstream for that client.
 */
import {randomBytes, X509Certificate} from 'node:crypto'
import {rmSync} from 'node:fs'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import type {IncomingHttpHeaders, IncomingMessage} from 'node:http'
import https from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls, {type TLSSocket} from 'node:tls'
import yaml from 'js-yaml'
import {createPki, issueCert} from '../pki.js'

/** One fault: which requests it hits and what it does to them. */
export interface FaultRule {
  /** HTTP method to match (any when unset), e.g. `GET`. */
  method?: string
  /** Tested against the URL path without the query, e.g. `/api/v1/namespaces/x/secrets`. */
  pathPattern: RegExp
  /** Answer with this status instead of forwarding (or, with `forward`, instead of the apiserver's answer). */
  status?: 429 | 500 | 503
  /** With `status`: forward the request first and answer with `status` once the apiserver has, as when a write is applied and its answer lost. */
  forward?: boolean
  /** Wait this long before forwarding (or answering with `status`). */
  latencyMs?: number
  /** How many requests the rule hits before it retires; unlimited when unset. */
  times?: number
  /** `Retry-After` and `details.retryAfterSeconds` of a 429 (default 1) or 503 (none unless set). */
  retryAfterSeconds?: number
}

/** One request the proxy saw. */
export interface ProxyLogEntry {
  method: string
  /** URL path without the query. */
  path: string
  /** The query string without `?` (empty when none). */
  query: string
  /** The status the client got: a fault's, the apiserver's, or 502 when the apiserver could not be reached. */
  status: number
  /** Whether a fault rule answered or delayed it. */
  faulted: boolean
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `https://127.0.0.1:<port>`. */
  url: string
  /** Requests received since start or the last {@link reset}. */
  readonly requests: number
  /** Every request with its final status, in the order responses started. */
  log: ProxyLogEntry[]
  /** PEM file of the CA that issued the proxy's serving certificate. */
  caCertFile: string
  addRule(rule: FaultRule): void
  /** Drops all rules, the log and the request count. */
  reset(): void
  /** Cuts every open client connection (watches, exec sessions, idle keep-alives), as a network failure or an apiserver restart would; returns how many. */
  cutConnections(): number
  stop(): Promise<void>
}

/** Options for {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The apiserver, `https://127.0.0.1:<port>`. */
  target: string
  /** CA file to verify the apiserver with. Without it (or `caCert`) the apiserver's certificate is not verified. */
  caCertFile?: string
  /** The same CA as PEM text, as kubeconfigs carry it (`certificate-authority-data`, decoded). */
  caCert?: string | Buffer
}

/** What a kubeconfig's client certificate is, for presenting it upstream. */
interface ClientIdentity {
  cert: Buffer
  key: Buffer
}

interface ActiveRule extends FaultRule {
  remaining: number
}

/** The proxies of this process by URL, so {@link withProxy} can take a URL as the contract says. */
const running = new Map<string, {caCertFile: string; dir: string; addIdentity(identity: ClientIdentity): void}>()

// Headers that belong to one connection, not to the request: never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection'])

/** Starts a proxy in front of `opts.target` on a free loopback port. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target)
  if (target.protocol !== 'https:') throw new Error(`the fault proxy needs an https target, got ${opts.target}`)
  const upstreamCa = opts.caCert ?? (opts.caCertFile ? await readFile(opts.caCertFile) : undefined)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-fault-proxy-'))
  const cleanup = (): void => rmSync(dir, {recursive: true, force: true})
  process.once('exit', cleanup)
  const serving = await servingCert()

  const rules: ActiveRule[] = []
  const log: ProxyLogEntry[] = []
  let requests = 0
  const sockets = new Set<Socket>()
  // Upstream agents per client identity (raw DER of its certificate); '' is "no client certificate".
  const identities = new Map<string, ClientIdentity>()
  const agents = new Map<string, https.Agent>()

  const upstreamTls = (identity: ClientIdentity | undefined): tls.ConnectionOptions => ({
    host: target.hostname,
    port: Number(target.port || 443),
    servername: isIpAddress(target.hostname) ? undefined : target.hostname,
    ca: upstreamCa,
    rejectUnauthorized: upstreamCa !== undefined,
    cert: identity?.cert,
    key: identity?.key,
    ALPNProtocols: ['http/1.1'],
  })

  /** Returns the identity the client presented, if the proxy was given its key. */
  function identityOf(socket: Socket): [string, ClientIdentity | undefined] {
    const peer = (socket as TLSSocket).getPeerCertificate?.()
    const der = peer && 'raw' in peer && peer.raw ? peer.raw.toString('base64') : ''
    const identity = identities.get(der)
    return identity ? [der, identity] : ['', undefined]
  }

  function agentFor(socket: Socket): https.Agent {
    const [key, identity] = identityOf(socket)
    let agent = agents.get(key)
    if (!agent) {
      // Keep-alive upstream: a benchmark through the proxy should not pay a TLS handshake per request.
      agent = new https.Agent({keepAlive: true, ...upstreamTls(identity)})
      agents.set(key, agent)
    }
    return agent
  }

  /** Returns the first live rule for this request, using up one of its hits. */
  function takeRule(method: string, pathname: string): ActiveRule | undefined {
    const rule = rules.find((r) => r.remaining > 0 && (!r.method || r.method.toUpperCase() === method) && pathname.search(r.pathPattern) !== -1)
    if (rule) rule.remaining--
    return rule
  }

  const server = https.createServer({
    cert: serving.cert,
    key: serving.key,
    // Ask for a client certificate but accept any (or none): the apiserver, not us, judges it.
    requestCert: true,
    rejectUnauthorized: false,
  })
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  // A client that presents a certificate we cannot verify still gets through; only a broken handshake lands here.
  server.on('tlsClientError', () => {})

  server.on('request', (req: IncomingMessage, res) => {
    requests++
    const {pathname, query} = splitUrl(req.url)
    const method = req.method ?? 'GET'
    const rule = takeRule(method, pathname)
    const record = (status: number): void => void log.push({method, path: pathname, query, status, faulted: rule !== undefined})
    void (async () => {
      if (rule?.latencyMs) await sleep(rule.latencyMs)
      if (rule?.status) {
        if (rule.forward) {
          // The apiserver gets and applies the request; its answer is dropped for the fault's.
          const applied = await forwardAndDiscard(req)
          if (!applied) {
            res.destroy()
            return
          }
        } else {
          // Drain the body so the connection stays usable for the client's next request.
          req.resume()
        }
        const {headers, body} = faultResponse(rule.status, rule.retryAfterSeconds)
        res.writeHead(rule.status, headers)
        res.end(body)
        record(rule.status)
        return
      }
      const upstream = https.request({
        ...upstreamTls(undefined),
        agent: agentFor(req.socket),
        method,
        path: req.url,
        headers: forwardHeaders(req.headers, target.host),
      }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, withoutHopByHop(upRes.headers))
        // Flush headers now: a watch may send its first event much later.
        res.flushHeaders()
        record(upRes.statusCode ?? 502)
        upRes.pipe(res)
        upRes.on('error', () => res.destroy())
      })
      upstream.on('error', (err) => {
        if (res.headersSent) {
          res.destroy()
          return
        }
        res.writeHead(502, {'content-type': 'application/json'})
        res.end(JSON.stringify(status(502, 'InternalError', `fault proxy: apiserver unreachable: ${err.message}`)))
        record(502)
      })
      // The client hung up before the end (e.g. ended a watch): end the upstream request too.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy()
      })
      req.pipe(upstream)
    })()
  })

  /** Sends `req` to the apiserver and reads its whole answer; resolves with whether it answered. */
  function forwardAndDiscard(req: IncomingMessage): Promise<boolean> {
    return new Promise((resolve) => {
      const upstream = https.request({
        ...upstreamTls(undefined),
        agent: agentFor(req.socket),
        method: req.method,
        path: req.url,
        headers: forwardHeaders(req.headers, target.host),
      }, (upRes) => {
        upRes.resume()
        upRes.on('end', () => resolve(true))
        upRes.on('error', () => resolve(false))
      })
      upstream.on('error', () => resolve(false))
      req.pipe(upstream)
    })
  }

  // Upgrades (exec over WebSocket or SPDY) are spliced: the proxy copies bytes both ways and reads nothing.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests++
    const {pathname, query} = splitUrl(req.url)
    const method = req.method ?? 'GET'
    const rule = takeRule(method, pathname)
    const record = (code: number): void => void log.push({method, path: pathname, query, status: code, faulted: rule !== undefined})
    let upstream: TLSSocket | undefined
    socket.on('error', () => upstream?.destroy())
    void (async () => {
      if (rule?.latencyMs) await sleep(rule.latencyMs)
      if (rule?.status) {
        const {headers, body} = faultResponse(rule.status, rule.retryAfterSeconds)
        const lines = [`HTTP/1.1 ${rule.status} ${STATUS_TEXT[rule.status]}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', '']
        socket.end(lines.join('\r\n') + body)
        record(rule.status)
        return
      }
      const [, identity] = identityOf(socket)
      upstream = tls.connect(upstreamTls(identity))
      const up = upstream
      up.setNoDelay(true)
      up.on('error', () => socket.destroy())
      up.on('close', () => socket.destroy())
      socket.on('close', () => up.destroy())
      up.once('secureConnect', () => {
        const lines = [`${method} ${req.url} HTTP/1.1`]
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          const name = req.rawHeaders[i]!
          lines.push(`${name}: ${name.toLowerCase() === 'host' ? target.host : req.rawHeaders[i + 1]}`)
        }
        up.write(lines.join('\r\n') + '\r\n\r\n')
        if (head.length > 0) up.write(head)
        up.once('data', (first: Buffer) => {
          // The status line tells whether the upgrade happened (101) or was refused (403, 400...).
          record(Number(/^HTTP\/1\.[01] (\d{3})/.exec(first.toString('latin1'))?.[1] ?? 0))
          socket.write(first)
          up.pipe(socket)
        })
        socket.pipe(up)
      })
    })()
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  running.set(url, {
    caCertFile: serving.caCertFile,
    dir,
    addIdentity(identity) {
      const peer = new X509Certificate(identity.cert)
      identities.set(peer.raw.toString('base64'), identity)
    },
  })

  return {
    url,
    get requests() {
      return requests
    },
    log,
    caCertFile: serving.caCertFile,
    addRule(rule) {
      rules.push({...rule, remaining: rule.times ?? Infinity})
    },
    reset() {
      rules.length = 0
      log.length = 0
      requests = 0
    },
    cutConnections() {
      const count = sockets.size
      for (const socket of sockets) socket.destroy()
      return count
    },
    async stop() {
      running.delete(url)
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // Watches and exec sessions never end by themselves: cut them.
      for (const socket of sockets) socket.destroy()
      for (const agent of agents.values()) agent.destroy()
      await closed
      process.removeListener('exit', cleanup)
      cleanup()
    },
  }
}

/**
 * Writes a copy of the kubeconfig at `kubeconfigPath` whose current cluster is
 * the proxy at `proxy` (its URL or the proxy itself), trusting the proxy's CA,
 * with the same credentials; returns the new file's path (in the proxy's own
 * directory, removed when the proxy stops). A client certificate in it is
 * handed to the proxy, which presents it upstream for this client.
 */
export async function withProxy(kubeconfigPath: string, proxy: string | FaultProxy): Promise<string> {
  const proxyUrl = typeof proxy === 'string' ? proxy : proxy.url
  const known = running.get(proxyUrl)
  if (!known) throw new Error(`no fault proxy of this process listens at ${proxyUrl}; start one with startFaultProxy`)
  const base = path.dirname(path.resolve(kubeconfigPath))
  const config = yaml.load(await readFile(kubeconfigPath, 'utf8')) as Kubeconfig
  const contextName = config['current-context']
  const context = config.contexts?.find((c) => c.name === contextName)?.context
  const cluster = config.clusters?.find((c) => c.name === context?.cluster)?.cluster
  if (!context || !cluster) throw new Error(`${kubeconfigPath} has no current context with a cluster`)
  delete cluster['certificate-authority']
  delete cluster['insecure-skip-tls-verify']
  delete cluster['tls-server-name']
  cluster.server = proxyUrl
  cluster['certificate-authority-data'] = (await readFile(known.caCertFile)).toString('base64')

  for (const entry of config.users ?? []) {
    const user = entry.user ?? {}
    // The copy lives elsewhere: file references must not be relative to the old place.
    for (const field of ['client-certificate', 'client-key', 'tokenFile'] as const) {
      if (user[field]) user[field] = path.resolve(base, user[field])
    }
    if (entry.name !== context.user) continue
    const cert = user['client-certificate-data'] ? Buffer.from(user['client-certificate-data'], 'base64') : user['client-certificate'] ? await readFile(user['client-certificate']) : undefined
    const key = user['client-key-data'] ? Buffer.from(user['client-key-data'], 'base64') : user['client-key'] ? await readFile(user['client-key']) : undefined
    if (cert && key) known.addIdentity({cert, key})
  }
  const file = path.join(known.dir, `${path.basename(kubeconfigPath)}.${randomBytes(4).toString('hex')}.proxied`)
  await writeFile(file, yaml.dump(config), {mode: 0o600})
  return file
}

/** The parts of a kubeconfig we touch. */
interface Kubeconfig {
  'current-context'?: string
  clusters?: {name: string; cluster: Record<string, string>}[]
  contexts?: {name: string; context: {cluster: string; user: string}}[]
  users?: {name: string; user?: Record<string, string>}[]
}

const STATUS_TEXT: Record<number, string> = {429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable'}

/** The response a fault rule gives: headers and a `metav1.Status` body like the apiserver's own. */
function faultResponse(code: 429 | 500 | 503, retryAfterSeconds: number | undefined): {headers: Record<string, string>; body: string} {
  const headers: Record<string, string> = {'content-type': 'application/json', 'cache-control': 'no-cache, private'}
  let body
  if (code === 429) {
    const seconds = retryAfterSeconds ?? 1
    headers['retry-after'] = String(seconds)
    // The apiserver's own max-in-flight answer, word for word.
    body = status(429, 'TooManyRequests', 'Too many requests, please try again later.', {retryAfterSeconds: seconds})
  } else if (code === 503) {
    if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds)
    body = status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request (injected by the fault proxy)',
      retryAfterSeconds !== undefined ? {retryAfterSeconds} : undefined)
  } else {
    body = status(500, 'InternalError', 'Internal error occurred: injected by the fault proxy', {causes: [{message: 'injected by the fault proxy'}]})
  }
  const text = JSON.stringify(body)
  headers['content-length'] = String(Buffer.byteLength(text))
  return {headers, body: text}
}

/** A `metav1.Status` failure. */
function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? {details} : {}), code}
}

/** The request's headers for upstream: the apiserver's host, no hop-by-hop headers. */
function forwardHeaders(headers: IncomingHttpHeaders, host: string): IncomingHttpHeaders {
  return {...withoutHopByHop(headers), host}
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value
  return out
}

function splitUrl(url: string | undefined): {pathname: string; query: string} {
  const raw = url ?? '/'
  const q = raw.indexOf('?')
  return q === -1 ? {pathname: raw, query: ''} : {pathname: raw.slice(0, q), query: raw.slice(q + 1)}
}

/** Whether `host` is an IP address (TLS SNI carries only names). */
function isIpAddress(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':')
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

let servingCertOnce: Promise<{cert: Buffer; key: Buffer; caCertFile: string}> | undefined

/**
 * Returns the proxy's serving certificate (for 127.0.0.1 and localhost) and
 * its CA. Made once per process and shared by all its proxies: minting RSA keys
 * costs a few hundred milliseconds.
 */
function servingCert(): Promise<{cert: Buffer; key: Buffer; caCertFile: string}> {
  servingCertOnce ??= (async () => {
    const certDir = await mkdtemp(path.join(os.tmpdir(), 'kubesnap-fault-proxy-ca-'))
    process.once('exit', () => rmSync(certDir, {recursive: true, force: true}))
    const pki = await createPki(certDir)
    const issued = await issueCert(pki.ca, {name: 'fault-proxy', cn: 'kubesnap-fault-proxy', sans: {ip: ['127.0.0.1'], dns: ['localhost']}, usage: 'server'})
    return {cert: await readFile(issued.certFile), key: await readFile(issued.keyFile), caCertFile: pki.ca.certFile}
  })()
  return servingCertOnce
}
