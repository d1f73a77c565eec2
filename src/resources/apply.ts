/**
 * Creates one cleaned object in the cluster, or settles what to do when it
 * exists already: `skip`, `update` (server-side apply, field manager
 * `kubesnap`, forced) or `fail`. With dryRun the server validates and nothing
 * is stored.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import {ApiError, requestFailure, type KubeApi} from '../cluster/api.js'
import {collectionPath} from '../cluster/discovery.js'
import {messageOf} from '../errors.js'
import {holdsSecretValues} from './secrets.js'

export type ExistingPolicy = 'skip' | 'update' | 'fail'

export interface ObjectType {
  group: string
  version: string
  resource: string
}

export interface ApplyOutcome {
  action: 'create' | 'update' | 'skip' | 'conflict' | 'failed'
  /** Changed fields (paths) for updates; Secret values are never shown. */
  diff?: string[]
  error?: string
  /** Something the operator should know though it worked (e.g. an answer lost and the object read back). */
  warning?: string
}

export const FIELD_MANAGER = 'kubesnap'

/** Applies one object per policy; never throws for per-object problems (the outcome says). */
export async function applyObject(api: KubeApi, type: ObjectType, obj: KubernetesObject, options: {existing: ExistingPolicy; dryRun: boolean}): Promise<ApplyOutcome> {
  const namespace = obj.metadata?.namespace
  const name = obj.metadata?.name ?? ''
  const collection = collectionPath(type, namespace)
  const itemPath = `${collection}/${encodeURIComponent(name)}`
  const dryRun = options.dryRun ? 'All' : undefined
  try {
    if (options.dryRun) {
      // A dry run must also say what an existing object would become.
      const live = await getOrUndefined(api, itemPath)
      if (live) return await settleExisting(api, itemPath, obj, live, options.existing, dryRun)
    }
    const sent = Date.now()
    try {
      await api.send('POST', collection, {body: obj, query: {dryRun, fieldManager: FIELD_MANAGER}})
    } catch (err) {
      // The answer was lost (a 5xx, a cut connection) or a retried create met an object: was it ours?
      const failure = requestFailure(err)
      const exists = err instanceof ApiError && err.statusCode === 409 && err.reason === 'AlreadyExists'
      if (!dryRun && (failure?.mayHaveApplied || (exists && (failure?.attempts ?? 1) > 1))) {
        const settled = await readBack(api, itemPath, obj, sent, err)
        if (settled) return settled
      }
      throw err
    }
    return {action: 'create'}
  } catch (err) {
    if (err instanceof ApiError && err.statusCode === 409 && err.reason === 'AlreadyExists') {
      try {
        const live = options.existing === 'skip' ? undefined : await api.get<KubernetesObject>(itemPath)
        return await settleExisting(api, itemPath, obj, live, options.existing, dryRun)
      } catch (inner) {
        return {action: 'failed', error: messageOf(inner)}
      }
    }
    return {action: 'failed', error: messageOf(err)}
  }
}

/**
 * Settles a create whose answer was lost by reading the object back: created
 * when it holds what was sent, with kubesnap's field manager, made since the
 * request (5 min of clock skew allowed); failed when it is not there; undefined
 * when it is someone else's (the caller treats it as existing).
 */
async function readBack(api: KubeApi, itemPath: string, sent: KubernetesObject, sentAt: number, err: unknown): Promise<ApplyOutcome | undefined> {
  let live: KubernetesObject | undefined
  try {
    live = await getOrUndefined(api, itemPath)
  } catch (inner) {
    return {action: 'failed', error: `${messageOf(err)}; it may have been created, and reading it back failed too (${messageOf(inner)}): check it with kubectl get`}
  }
  if (!live) return {action: 'failed', error: `${messageOf(err)}; read back: it was not created`}
  const created = Date.parse(String(live.metadata?.creationTimestamp ?? ''))
  const ours = diffFields(sent, live).length === 0
    && (live.metadata?.managedFields ?? []).some((f) => f.manager === FIELD_MANAGER)
    && created >= sentAt - 5 * 60_000
  if (!ours) return (err instanceof ApiError && err.statusCode === 409) ? undefined : {action: 'failed', error: `${messageOf(err)}; read back: it exists with other content, so it is not known to be this restore's: check it with kubectl get`}
  return {action: 'create', warning: `the server's answer to its create was lost (${messageOf(err)}); read back, it holds what was sent: created`}
}

async function settleExisting(api: KubeApi, itemPath: string, desired: KubernetesObject, live: KubernetesObject | undefined, policy: ExistingPolicy, dryRun: string | undefined): Promise<ApplyOutcome> {
  if (policy === 'skip') return {action: 'skip'}
  const diff = live ? diffFields(desired, live) : []
  if (policy === 'fail') return {action: 'conflict', diff, error: 'exists already (--existing fail)'}
  await api.patch(itemPath, JSON.stringify(desired), 'application/apply-patch+yaml', {query: {fieldManager: FIELD_MANAGER, force: true, dryRun}})
  return {action: 'update', diff}
}

async function getOrUndefined(api: KubeApi, path: string): Promise<KubernetesObject | undefined> {
  try {
    return await api.get<KubernetesObject>(path)
  } catch (err) {
    if (err instanceof ApiError && err.statusCode === 404) return undefined
    throw err
  }
}

/**
 * The paths where the desired object differs from the live one, for the dry-run
 * plan: `spec.replicas: 3 → 1`. Only what the archive sets is compared (the
 * server fills defaults); a Secret's values are reported as changed, never shown.
 */
export function diffFields(desired: KubernetesObject, live: KubernetesObject): string[] {
  const secret = desired.kind === 'Secret'
  const out: string[] = []
  const walk = (want: unknown, have: unknown, path: string[]) => {
    if (path[0] === 'metadata' && ['namespace', 'name'].includes(path[1] ?? '')) return
    if (isPlainObject(want) && isPlainObject(have)) {
      for (const key of Object.keys(want)) walk(want[key], have[key], [...path, key])
      return
    }
    if (JSON.stringify(want) === JSON.stringify(have)) return
    const where = path.join('.')
    if (secret && holdsSecretValues(path)) out.push(`${where}: changed (value hidden)`)
    else out.push(`${where}: ${show(have)} → ${show(want)}`)
  }
  walk(desired, live, [])
  return out
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function show(value: unknown): string {
  if (value === undefined) return '(unset)'
  const text = JSON.stringify(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}
