/**
 * Loads a kubeconfig the way kubectl does: `--kubeconfig`, else `$KUBECONFIG`
 * (a list of files, merged), else `~/.kube/config`, else the in-cluster
 * service account; `--context` picks a context; the namespace is `-n`, else the
 * context's namespace, else `default`.
 *
 * The file is read with client-node's own parts (its kubeconfig entry parsers
 * and its exec, token-file, OIDC, Azure and GCP authenticators), but not with
 * its `KubeConfig` class: that module imports client-node's whole generated
 * API (≈0.3 s and ≈65 MiB of RSS) for `makeApiClient`, which kubesnap never calls.
 */
import {existsSync, readFileSync} from 'node:fs'
import type https from 'node:https'
import {homedir} from 'node:os'
import {dirname, isAbsolute, join} from 'node:path'
import {isIPv6} from 'node:net'
import yaml from 'js-yaml'
// Deep imports: client-node has no `exports` map, and these modules import nothing of its generated API.
import {newClusters, newContexts, newUsers, type Cluster, type Context, type User} from '@kubernetes/client-node/dist/config_types.js'
import type {Authenticator} from '@kubernetes/client-node/dist/auth.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {createAgent, type HTTPSOptions} from './agents.js'

export interface ConnectionFlags {
  kubeconfig?: string
  context?: string
  namespace?: string
}

export interface LoadedConfig {
  kc: ClientConfig
  /** The context in use, or `in-cluster`. */
  context: string
  /** The API server URL. */
  server: string
  /** `-n`, else the context's namespace, else `default`. */
  namespace: string
  /** Where the namespace came from, for messages. */
  namespaceSource: 'flag' | 'context' | 'default'
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
const IN_CLUSTER_TOKEN = `${SERVICE_ACCOUNT_DIR}/token`

/** Loads the kubeconfig for the given flags and environment. */
export function loadKubeConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const kc = new ClientConfig()
  try {
    if (flags.kubeconfig) {
      if (!existsSync(flags.kubeconfig)) {
        throw new KubesnapError(`The kubeconfig file ${flags.kubeconfig} does not exist; check the --kubeconfig path.`, {exit: EXIT.usage})
      }
      kc.loadFromFile(flags.kubeconfig)
    } else if (env.KUBECONFIG) {
      loadFromList(kc, env.KUBECONFIG)
    } else if (existsSync(join(env.HOME ?? homedir(), '.kube', 'config'))) {
      kc.loadFromFile(join(env.HOME ?? homedir(), '.kube', 'config'))
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
      kc.loadFromCluster(env)
    } else {
      throw new KubesnapError('No kubeconfig found; pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config.', {exit: EXIT.usage})
    }
  } catch (err) {
    if (err instanceof KubesnapError) throw err
    throw new KubesnapError(`The kubeconfig could not be read (${messageOf(err)}); fix the file or pass another with --kubeconfig.`, {exit: EXIT.usage, cause: err})
  }

  if (flags.context) {
    if (!kc.getContextObject(flags.context)) {
      const known = kc.getContexts().map((c) => c.name).join(', ') || 'none'
      throw new KubesnapError(`The context "${flags.context}" is not in the kubeconfig (contexts: ${known}); pass one of those with --context.`, {exit: EXIT.usage})
    }
    kc.setCurrentContext(flags.context)
  }

  const cluster = kc.getCurrentCluster()
  if (!cluster) {
    throw new KubesnapError('The kubeconfig has no current context; pass --context or run `kubectl config use-context`.', {exit: EXIT.usage})
  }
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace
  const namespace = flags.namespace || contextNamespace || 'default'
  const namespaceSource = flags.namespace ? 'flag' : contextNamespace ? 'context' : 'default'
  return {kc, context: kc.getCurrentContext(), server: cluster.server, namespace, namespaceSource}
}

/**
 * Merges a `KUBECONFIG` list as kubectl does: the first file to set a value
 * wins, and the first file's current-context is used.
 */
function loadFromList(kc: ClientConfig, list: string): void {
  const files = list.split(':').filter((f) => f && existsSync(f))
  if (files.length === 0) {
    throw new KubesnapError(`None of the files in KUBECONFIG (${list}) exist; fix KUBECONFIG or pass --kubeconfig.`, {exit: EXIT.usage})
  }
  kc.loadFromFile(files[0])
  for (const file of files.slice(1)) {
    const next = new ClientConfig()
    next.loadFromFile(file)
    // client-node's mergeConfig throws on a repeated name; kubectl keeps the first.
    const has = (list: {name: string}[], name: string) => list.some((item) => item.name === name)
    for (const cluster of next.clusters) if (!has(kc.clusters, cluster.name)) kc.addCluster(cluster)
    for (const user of next.users) if (!has(kc.users, user.name)) kc.addUser(user)
    for (const context of next.contexts) if (!has(kc.contexts, context.name)) kc.addContext(context)
    if (!kc.getCurrentContext() && next.getCurrentContext()) kc.setCurrentContext(next.getCurrentContext())
  }
}

/** What a request needs from a kubeconfig; client-node's `KubeConfig` has the same shape (tests pass either). */
export interface RequestConfig {
  getCurrentCluster(): Cluster | null
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>
}


/**
 * The clusters, users and contexts of a kubeconfig, and the TLS options and
 * credentials for a request to the current context. It behaves as client-node's
 * `KubeConfig` for everything kubesnap calls (entries parsed by client-node's
 * own functions, credentials applied by its own authenticators, in its order),
 * without importing the generated API that `KubeConfig`'s module pulls in.
 */
export class ClientConfig implements RequestConfig {
  clusters: Cluster[] = []
  users: User[] = []
  contexts: Context[] = []
  private currentContext = ''
  // One set per config, as in client-node: the exec authenticator caches its credential until it expires.
  private authenticators?: Promise<Authenticator[]>
  /** CA, certificate and key files read, and their base64 data decoded, once: every API request and exec applies them. */
  private readonly files = new Map<string, Buffer>()
  private readonly decoded = new Map<string, Buffer>()

  /** Reads a kubeconfig file; relative certificate paths are taken from the file's directory. */
  loadFromFile(file: string): void {
    const doc = yaml.load(readFileSync(file, 'utf8')) as Record<string, unknown> | null
    if (!doc || typeof doc !== 'object') throw new Error(`${file} is not a kubeconfig (no YAML mapping)`)
    this.clusters = newClusters(doc.clusters)
    this.users = newUsers(doc.users)
    this.contexts = newContexts(doc.contexts)
    this.currentContext = typeof doc['current-context'] === 'string' ? doc['current-context'] : ''
    const root = dirname(file)
    const absolute = (path: string | undefined) => (path && !isAbsolute(path) ? join(root, path) : path)
    for (const cluster of this.clusters) cluster.caFile = absolute(cluster.caFile)
    for (const user of this.users) {
      user.certFile = absolute(user.certFile)
      user.keyFile = absolute(user.keyFile)
    }
  }

  /**
   * Uses the pod's service account, as client-node's `loadFromCluster` does:
   * its CA, its token file (re-read every minute), its namespace. `root`
   * prefixes those paths (tests).
   */
  loadFromCluster(env: NodeJS.ProcessEnv = process.env, root = ''): void {
    const host = env.KUBERNETES_SERVICE_HOST ?? ''
    const port = env.KUBERNETES_SERVICE_PORT ?? ''
    const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https'
    const namespaceFile = `${root}${SERVICE_ACCOUNT_DIR}/namespace`
    this.clusters = [{name: 'inCluster', caFile: `${root}${SERVICE_ACCOUNT_DIR}/ca.crt`, server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, skipTLSVerify: false}]
    this.users = [{name: 'inClusterUser', authProvider: {name: 'tokenFile', config: {tokenFile: `${root}${IN_CLUSTER_TOKEN}`}}}]
    this.contexts = [{name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8') : undefined}]
    this.currentContext = 'inClusterContext'
  }

  getContexts(): Context[] {
    return this.contexts
  }

  getCurrentContext(): string {
    return this.currentContext
  }

  setCurrentContext(name: string): void {
    this.currentContext = name
  }

  getContextObject(name: string): Context | null {
    return this.contexts.find((c) => c.name === name) ?? null
  }

  getCurrentCluster(): Cluster | null {
    const context = this.getContextObject(this.currentContext)
    return (context && this.clusters.find((c) => c.name === context.cluster)) ?? null
  }

  getCurrentUser(): User | null {
    const context = this.getContextObject(this.currentContext)
    return (context && this.users.find((u) => u.name === context.user)) ?? null
  }

  addCluster(cluster: Cluster): void {
    this.clusters.push(cluster)
  }

  addUser(user: User): void {
    this.users.push(user)
  }

  addContext(context: Context): void {
    this.contexts.push(context)
  }

  /**
   * Fills in a request's TLS options, credentials and agent for the current
   * context, as client-node's `applyToHTTPSOptions` does: applyCredentials,
   * then a new agent made with them (through `proxy-url` when set).
   */
  async applyToHTTPSOptions(options: https.RequestOptions): Promise<void> {
    await this.applyCredentials(options)
    options.agent = await createAgent(this.getCurrentCluster(), options as HTTPSOptions)
  }

  /**
   * Fills in a request's TLS options and credentials for the current context,
   * without an agent (a client with a pool of its own, agents.ts's AgentPool, takes them):
   * CA, client certificate and key (files or data), skip-TLS-verify, TLS server
   * name, impersonation, exec plugins and auth providers, bearer token, basic auth.
   */
  async applyCredentials(options: https.RequestOptions): Promise<void> {
    const opts = options as HTTPSOptions
    const cluster = this.getCurrentCluster()
    const user = this.getCurrentUser()
    if (user) {
      if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false
      if (cluster?.tlsServerName) opts.servername = cluster.tlsServerName
      const ca = cluster && this.fileOrData(cluster.caFile, cluster.caData)
      if (ca) opts.ca = ca
      const cert = this.fileOrData(user.certFile, user.certData)
      if (cert) opts.cert = cert
      const key = this.fileOrData(user.keyFile, user.keyData)
      if (key) opts.key = key
      opts.headers ??= {}
      if (user.impersonateUser != null) opts.headers['Impersonate-User'] = user.impersonateUser
      // Only users with an exec plugin or an auth provider load the authenticators (OIDC's client is ≈6 MiB).
      if (user.exec || user.authProvider) {
        const authenticator = (await this.loadAuthenticators()).find((a) => a.isAuthProvider(user))
        await authenticator?.applyAuthentication(user, opts)
      }
      if (user.token) opts.headers.Authorization = `Bearer ${user.token}`
      if (user.username) opts.auth = `${user.username}:${user.password}`
    }
  }

  /** A file's bytes (read on first use), else base64 data decoded, else undefined. */
  private fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
    if (file) {
      let bytes = this.files.get(file)
      if (!bytes) this.files.set(file, (bytes = readFileSync(file)))
      return bytes
    }
    if (data) {
      let bytes = this.decoded.get(data)
      if (!bytes) this.decoded.set(data, (bytes = Buffer.from(data, 'base64')))
      return bytes
    }
    return undefined
  }

  private loadAuthenticators(): Promise<Authenticator[]> {
    this.authenticators ??= Promise.all([
      import('@kubernetes/client-node/dist/azure_auth.js').then((m) => new m.AzureAuth()),
      import('@kubernetes/client-node/dist/gcp_auth.js').then((m) => new m.GoogleCloudPlatformAuth()),
      import('@kubernetes/client-node/dist/exec_auth.js').then((m) => new m.ExecAuth()),
      import('@kubernetes/client-node/dist/file_auth.js').then((m) => new m.FileAuth()),
      import('@kubernetes/client-node/dist/oidc_auth.js').then((m) => new m.OpenIDConnectAuth()),
    ])
    return this.authenticators
  }
}
