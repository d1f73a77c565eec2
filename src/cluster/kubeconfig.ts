/**
 * Loads a kubeconfig the way kubectl does: `--kubeconfig`, else `$KUBECONFIG`
 * (a list of files, merged), else `~/.kube/config`, else the in-cluster
 * service account; `--context` picks a context; the namespace is `-n`, else the
 * context's namespace, else `default`.
 */
import {existsSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {KubeConfig} from '@kubernetes/client-node'
import {EXIT, KubesnapError, messageOf} from '../errors.js'

export interface ConnectionFlags {
  kubeconfig?: string
  context?: string
  namespace?: string
}

export interface LoadedConfig {
  kc: KubeConfig
  /** The context in use, or `in-cluster`. */
  context: string
  /** The API server URL. */
  server: string
  /** `-n`, else the context's namespace, else `default`. */
  namespace: string
  /** Where the namespace came from, for messages. */
  namespaceSource: 'flag' | 'context' | 'default'
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/** Loads the kubeconfig for the given flags and environment. */
export function loadKubeConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const kc = new KubeConfig()
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
      kc.loadFromCluster()
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
function loadFromList(kc: KubeConfig, list: string): void {
  const files = list.split(':').filter((f) => f && existsSync(f))
  if (files.length === 0) {
    throw new KubesnapError(`None of the files in KUBECONFIG (${list}) exist; fix KUBECONFIG or pass --kubeconfig.`, {exit: EXIT.usage})
  }
  kc.loadFromFile(files[0])
  for (const file of files.slice(1)) {
    const next = new KubeConfig()
    next.loadFromFile(file)
    // client-node's mergeConfig throws on a repeated name; kubectl keeps the first.
    const has = (list: {name: string}[], name: string) => list.some((item) => item.name === name)
    for (const cluster of next.clusters) if (!has(kc.clusters, cluster.name)) kc.addCluster(cluster)
    for (const user of next.users) if (!has(kc.users, user.name)) kc.addUser(user)
    for (const context of next.contexts) if (!has(kc.contexts, context.name)) kc.addContext(context)
    if (!kc.getCurrentContext() && next.getCurrentContext()) kc.setCurrentContext(next.getCurrentContext())
  }
}
