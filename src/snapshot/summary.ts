/**
 * What a snapshot reports: the warnings and left-out items that go into its
 * manifest, and the typed result the command renders (`snapshot --json`).
 */
import {snapshotStatus, UNLISTED_REASON, type Manifest, type SkippedItem, type SnapshotStatus} from '../archive/manifest.js'

/** What `snapshot --json` prints (the command adds `prune`). */
export interface SnapshotResult {
  /** `partial` when types could not be listed or claims' data could not be copied (snapshotStatus). */
  status: SnapshotStatus
  path: string
  namespace: string
  number: number
  startedAt: string
  finishedAt: string
  objects: number
  /** Volumes streamed into the archive (--volumes tar). */
  volumes: number
  /** VolumeSnapshots taken and recorded (--volumes csi). */
  volumeSnapshots: number
  /** Application dumps stored (--dump). */
  dumps: number
  bytes: number
  /** Requests sent to the API server, retries included. */
  apiRequests: number
  /** Objects and types left out, with reasons (also in the manifest). */
  skipped: Manifest['skipped']
  warnings: string[]
}

/** A type that could not be listed (or a group version discovery failed for), and why. */
export interface Unlisted {
  resource: string
  reason: string
}

/** What the phases found to report, gathered for the manifest. */
export interface SnapshotFindings {
  /** Left out by the type plan and by the listing (skip rules). */
  skipped: SkippedItem[]
  unlisted: Unlisted[]
  /** Whether the identity could read the CustomResourceDefinitions. */
  crdsReadable: boolean
  volumes: {skipped: SkippedItem[]; warnings: string[]}
}

/** The manifest's `skipped` and `warnings`, in the order a person reads them: types, then volumes. */
export function snapshotReport(findings: SnapshotFindings): {skipped: SkippedItem[]; warnings: string[]} {
  const warnings = [...findings.unlisted.map((u) => `Could not list ${u.resource} (${u.reason}).`), ...findings.volumes.warnings]
  if (!findings.crdsReadable) warnings.push('CustomResourceDefinitions are not readable with these credentials and are not in the archive; restore needs them installed already.')
  const skipped = [
    ...findings.skipped,
    ...findings.unlisted.map((u) => ({resource: u.resource, reason: `${UNLISTED_REASON}${u.reason}`, failed: true})),
    ...findings.volumes.skipped,
  ]
  return {skipped, warnings}
}

/** The result of a finished snapshot, from its manifest. */
export function summarizeSnapshot(manifest: Manifest, run: {path: string; apiRequests: number; volumeSnapshots: number}): SnapshotResult {
  return {
    status: snapshotStatus(manifest),
    path: run.path,
    namespace: manifest.namespace,
    number: manifest.number,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    objects: manifest.entries.filter((e) => e.type === 'object').length,
    volumes: manifest.entries.filter((e) => e.type === 'volume').length,
    volumeSnapshots: run.volumeSnapshots,
    dumps: manifest.entries.filter((e) => e.type === 'dump').length,
    bytes: manifest.entries.reduce((sum, e) => sum + e.size, 0),
    apiRequests: run.apiRequests,
    skipped: manifest.skipped,
    warnings: manifest.warnings,
  }
}

/**
 * Why a run must not write an archive although nothing failed, or undefined:
 * it stored no object and the identity may not get namespaces (`exists`
 * undefined), so a typo in -n cannot be told from an empty namespace.
 */
export function unverifiedNamespaceError(run: {namespace: string; exists: boolean | undefined; objects: number; narrowed: boolean}): string | undefined {
  if (run.exists !== undefined || run.objects > 0) return undefined
  const narrowed = run.narrowed ? ' and what -l/--include-kinds select' : ''
  return `No object of namespace ${run.namespace} could be stored, and this identity may not get namespaces to tell whether it exists; check the name given with -n${narrowed} (no archive was written).`
}
