/**
 * The CSI strategy: one VolumeSnapshot per claim, taken by the cluster's CSI
 * driver; the data stays in the cluster. The archive records each snapshot as
 * an object entry (`objects/snapshot.storage.k8s.io/<version>/volumesnapshots/<name>.json`,
 * the object once it is readyToUse), which restore turns into a claim with
 * `dataSource: VolumeSnapshot`.
 */
import {setTimeout as sleep} from 'node:timers/promises'
import type {EntrySink} from '../archive/sink.js'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {MANAGED_BY, SNAPSHOT_NUMBER_LABEL} from '../labels.js'

const GROUP = 'snapshot.storage.k8s.io'
const DEFAULT_CLASS_ANNOTATION = 'snapshot.storage.kubernetes.io/is-default-class'

export interface CsiOptions {
  api: KubeApi
  namespace: string
  claims: string[]
  /** Snapshot number and start time: they name the VolumeSnapshots. */
  number: number
  startedAt: Date
  /** --snapshot-class; default: the cluster's default class. */
  snapshotClass?: string
  /** How long to wait for all snapshots to be readyToUse (default 5 min). */
  timeoutMs?: number
  sink: EntrySink
  onStatus?: (line: string) => void
}

export interface CsiResult {
  /** VolumeSnapshot names, by claim. */
  snapshots: Record<string, string>
  /** The class used, or undefined when the cluster's default was left to the snapshot controller. */
  snapshotClass?: string
  version: string
}

interface VolumeSnapshot {
  metadata?: {name?: string}
  status?: {readyToUse?: boolean; error?: {message?: string}}
}

/**
 * Creates a VolumeSnapshot of each claim, waits until all are readyToUse, and
 * adds each to the archive. If any fails or times out, the ones this run
 * created are deleted again and the error names the claim.
 */
export async function snapshotClaimsCsi(options: CsiOptions): Promise<CsiResult> {
  const {api, namespace} = options
  const version = await servedVersion(api)
  const snapshotClass = options.snapshotClass ?? await defaultSnapshotClass(api, version)
  const base = `/apis/${GROUP}/${version}/namespaces/${namespace}/volumesnapshots`
  const stamp = options.startedAt.toISOString().replace(/[-:]|\.\d+/g, '').toLowerCase()
  const snapshots: Record<string, string> = {}
  try {
    for (const claim of options.claims) {
      const name = `${claim.slice(0, 200)}-kubesnap-${options.number}-${stamp}`
      await api.post(base, {
        apiVersion: `${GROUP}/${version}`,
        kind: 'VolumeSnapshot',
        metadata: {name, labels: {...MANAGED_BY, [SNAPSHOT_NUMBER_LABEL]: String(options.number)}},
        spec: {...(snapshotClass ? {volumeSnapshotClassName: snapshotClass} : {}), source: {persistentVolumeClaimName: claim}},
      }, {retries: 0})
      snapshots[claim] = name
      options.onStatus?.(`created VolumeSnapshot ${name}`)
    }
    const deadline = Date.now() + (options.timeoutMs ?? 300_000)
    const pending = new Set(Object.keys(snapshots))
    while (pending.size > 0) {
      for (const claim of [...pending]) {
        const snapshot = await api.get<VolumeSnapshot>(`${base}/${snapshots[claim]}`)
        if (snapshot.status?.readyToUse) {
          await options.sink.addObject({kind: 'VolumeSnapshot', group: GROUP, version, resource: 'volumesnapshots', name: snapshots[claim]}, JSON.stringify(snapshot))
          pending.delete(claim)
          continue
        }
        const error = snapshot.status?.error?.message
        if (error) {
          const hint = snapshotClass ? '' : ', or name a VolumeSnapshotClass with --snapshot-class'
          throw new KubesnapError(`The VolumeSnapshot ${snapshots[claim]} of claim ${claim} failed (${error}); fix the snapshot class or driver${hint}, or use --volumes tar.`)
        }
      }
      if (pending.size === 0) break
      if (Date.now() > deadline) {
        throw new KubesnapError(`The VolumeSnapshots of ${[...pending].join(', ')} were not ready within ${Math.round((options.timeoutMs ?? 300_000) / 1000)} s; raise --snapshot-timeout or check the CSI driver.`)
      }
      options.onStatus?.(`waiting for ${pending.size} VolumeSnapshot(s) to be ready`)
      await sleep(1000)
    }
  } catch (err) {
    // No archive will name them: do not leave them behind.
    await Promise.all(Object.values(snapshots).map((name) => api.delete(`${base}/${name}`).catch(() => {})))
    if (err instanceof KubesnapError) throw err
    throw new KubesnapError(`Taking VolumeSnapshots in namespace ${namespace} failed (${messageOf(err)}); check the kubesnap Role (create on volumesnapshots) or use --volumes tar.`, {cause: err})
  }
  return {snapshots, snapshotClass, version}
}

/** The served version of snapshot.storage.k8s.io (v1, or v1beta1 on older clusters). */
async function servedVersion(api: KubeApi): Promise<string> {
  try {
    const group = await api.get<{preferredVersion?: {version?: string}}>(`/apis/${GROUP}`)
    const version = group.preferredVersion?.version
    if (version) return version
  } catch (err) {
    if (!isStatus(err, 404)) throw err
  }
  throw new KubesnapError(`The cluster does not serve VolumeSnapshots (${GROUP}); use --volumes tar.`, {exit: EXIT.usage})
}

/**
 * The class marked default, when classes are readable. They are cluster-scoped,
 * so a namespace-only identity usually cannot list them: then no class is named
 * and the snapshot controller applies the default class of the claim's driver,
 * as it does for any VolumeSnapshot without one.
 */
async function defaultSnapshotClass(api: KubeApi, version: string): Promise<string | undefined> {
  let classes: {items?: Array<{metadata?: {name?: string; annotations?: Record<string, string>}}>}
  try {
    classes = await api.get(`/apis/${GROUP}/${version}/volumesnapshotclasses`)
  } catch (err) {
    if (isStatus(err, 403)) return undefined
    throw err
  }
  const defaults = (classes.items ?? []).filter((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true')
  if (defaults.length === 1) return defaults[0].metadata?.name
  const names = (classes.items ?? []).map((c) => c.metadata?.name).join(', ') || 'none'
  throw new KubesnapError(`The cluster has ${defaults.length === 0 ? 'no' : 'more than one'} default VolumeSnapshotClass (classes: ${names}); pass one with --snapshot-class.`, {exit: EXIT.usage})
}
