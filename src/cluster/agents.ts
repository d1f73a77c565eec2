/**
 * The HTTP agents requests go through: the one client-node would make for a
 * cluster (direct, or through its `proxy-url`), and a client's pool of them.
 * Apart from kubeconfig.ts because the API client needs it and nothing of
 * client-node: archive commands load the client's module, never client-node.
 */
import http from 'node:http'
import https from 'node:https'
import type {Cluster} from '@kubernetes/client-node/dist/config_types.js'

/** TLS and header options as client-node's authenticators fill them in. */
export type HTTPSOptions = Omit<https.RequestOptions, 'headers'> & {headers?: Record<string, string | string[] | number | undefined>}

/** The options createAgent passes on to the agent: an agent made with them serves any request with the same ones. */
const AGENT_OPTIONS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'timeout', 'rejectUnauthorized'] as const

/**
 * The agents of one client, made with its pooling options (keep-alive, most
 * sockets): the current one serves every request whose cluster and TLS options
 * are those it was made with (every request but the first, unless an exec
 * plugin hands out a new client certificate); other options get a new one.
 * A new agent per request cost the restore of 10,000 objects ≈25 MB of garbage,
 * and one made once for the first request's options kept a rotated certificate out.
 */
export class AgentPool {
  #current?: {key: unknown[]; agent: Promise<http.Agent>}
  /** Agents of earlier options, still finishing their requests: destroyed with the pool. */
  readonly #retired: Promise<http.Agent>[] = []

  constructor(private readonly pooling: http.AgentOptions) {}

  agentFor(cluster: Cluster | null, opts: https.RequestOptions): Promise<http.Agent> {
    const key = [cluster, ...AGENT_OPTIONS.map((name) => opts[name])]
    const current = this.#current
    if (current && current.key.every((value, i) => value === key[i])) return current.agent
    if (current) this.#retired.push(current.agent)
    // The promise is kept, not the agent: requests that start together share the one being made.
    const agent = createAgent(cluster, opts as HTTPSOptions, this.pooling)
    this.#current = {key, agent}
    return agent
  }

  /** Closes every pooled socket, so the process can exit. */
  destroy(): void {
    for (const agent of [...this.#retired, ...(this.#current ? [this.#current.agent] : [])]) void agent.then((a) => a.destroy(), () => {})
    this.#retired.length = 0
    this.#current = undefined
  }
}

/** The agent client-node would make for this cluster: through its `proxy-url` (SOCKS or HTTP), or direct with the TLS options; `pooling` adds a client's own (keep-alive, most sockets). */
export async function createAgent(cluster: Cluster | null, opts: HTTPSOptions, pooling: http.AgentOptions = {}): Promise<http.Agent> {
  const tls: https.AgentOptions = {
    ...pooling,
    ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase,
    servername: opts.servername, timeout: opts.timeout,
    ...(opts.rejectUnauthorized !== undefined ? {rejectUnauthorized: opts.rejectUnauthorized} : {}),
  }
  if (cluster?.proxyUrl) {
    if (cluster.proxyUrl.startsWith('socks')) {
      const {SocksProxyAgent} = await import('socks-proxy-agent')
      return new SocksProxyAgent(cluster.proxyUrl, tls)
    }
    const {HttpProxyAgent, HttpsProxyAgent} = await import('hpagent')
    if (cluster.server.startsWith('https')) return new HttpsProxyAgent({...tls, proxy: cluster.proxyUrl})
    if (cluster.server.startsWith('http')) return new HttpProxyAgent({...tls, proxy: cluster.proxyUrl})
    throw new Error('Unsupported proxy type')
  }
  if (cluster?.server?.startsWith('http:')) {
    if (!cluster.skipTLSVerify) throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false')
    return new http.Agent(tls)
  }
  return new https.Agent(tls)
}
