/**
 * The volume phase of a snapshot: each stored, bound claim's data, by its
 * strategy. `csi` claims become VolumeSnapshots recorded in the archive;
 * `tar` claims go one at a time: the running container that mounts the claim
 * (else a helper pod) → `tar cf -` over exec → an archive entry. A claim whose
 * copy fails is left out and named (the snapshot is partial), unless
 * --volumes-required or the archive itself failed.
 */
import type {SkippedItem} from '../archive/manifest.js'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {formatBytes} from '../format.js'
import type {SnapshotSettings} from '../plan/settings.js'
import {listWorkloads} from '../volumes/workloads.js'
import {copyVolume, decideClaimFailure, HelperPods, listPods, snapshotClaimsCsi, type ClaimObject} from '../volumes/index.js'
import {partitionClaims} from './claims.js'
import type {PhaseReport} from './progress.js'
import type {SnapshotArchive} from './take.js'

export interface VolumeContext {
  api: KubeApi
  namespace: string
  archive: SnapshotArchive
  volumes: SnapshotSettings['volumes']
  /** The output location: a disk error there is the archive's, not a claim's. */
  output: string
  /** Attempts per volume stream. */
  attempts?: number
  signal?: AbortSignal
}

/** What the volume phase adds to the snapshot's report. */
export interface VolumesResult {
  skipped: SkippedItem[]
  warnings: string[]
  /** VolumeSnapshots taken (--volumes csi). */
  volumeSnapshots: number
}

/** Takes the data of the stored claims into the archive (or as VolumeSnapshots); reports on `report`. */
export async function takeVolumes(context: VolumeContext, claims: ClaimObject[], report: PhaseReport): Promise<VolumesResult> {
  const partition = partitionClaims(claims, context.volumes)
  const result: VolumesResult = {skipped: partition.skipped, warnings: partition.warnings, volumeSnapshots: 0}
  const {tar, csi, none} = partition
  if (tar.length + csi.length === 0) {
    report.title = partition.bound === 0 ? 'No bound claims: no volume data to copy' : `No volume data copied (strategy none for ${none.length} claim(s))`
    return result
  }
  if (csi.length > 0) {
    const taken = await snapshotClaimsCsi({
      api: context.api, namespace: context.namespace, claims: csi, number: context.archive.number, startedAt: context.archive.startedAt, sink: context.archive,
      snapshotClass: context.volumes.snapshotClass, timeoutMs: context.volumes.snapshotTimeoutSeconds * 1000,
      onStatus: (line) => (report.output = line),
    })
    result.volumeSnapshots = csi.length
    report.title = `Took ${csi.length} VolumeSnapshot(s)${taken.snapshotClass ? ` of class ${taken.snapshotClass}` : ''}`
  }
  if (tar.length === 0) return result
  const helpers = new HelperPods(context.api, context.namespace, {image: context.volumes.helperImage, asRoot: context.volumes.helperAsRoot})
  // Leftovers of a killed run go first: they mount claims and would pin helpers beside them.
  const copied = await helpers.use(async (removedStale) => {
    result.warnings.push(...removedStale)
    return copyTarClaims(context, tar, helpers, result, report)
  }, {signal: context.signal})
  report.title = `Copied the data of ${copied}/${tar.length} claim(s)${csi.length > 0 ? `, took ${csi.length} VolumeSnapshot(s)` : ''}`
  return result
}

/** Streams each claim in turn into the archive; returns how many were copied, recording the others in `result`. */
async function copyTarClaims(context: VolumeContext, claims: string[], helpers: HelperPods, result: VolumesResult, report: PhaseReport): Promise<number> {
  const {api, namespace} = context
  const pods = await listPods(api, namespace)
  // When no pod mounts a claim, its helper runs as the workload whose template does.
  // Without the right to list them (a Role for snapshots of some kinds only), helpers run as root or as the platform says.
  const workloads = (await listWorkloads(api, namespace).catch((err: unknown) => {
    if (isStatus(err, 403)) return []
    throw err
  })).map((w) => ({...w.object, kind: w.kind}))
  let copied = 0
  for (const [index, claim] of claims.entries()) {
    report.title = `Copy volume data (${index + 1}/${claims.length}): ${claim}`
    try {
      const {entry, helperReason, warnings} = await copyVolume({
        api, namespace, claim, pods, workloads, sink: context.archive, helpers, attempts: context.attempts, signal: context.signal,
        onStatus: (line) => (report.output = `${claim}: ${line}`),
        onProgress: (bytes) => (report.output = `${claim}: ${formatBytes(bytes)}`),
      })
      if (helperReason) result.warnings.push(`Claim ${claim} was copied through a helper pod: ${helperReason}.`)
      result.warnings.push(...warnings)
      report.output = `${claim}: ${formatBytes(entry.rawSize)} (${formatBytes(entry.size)} stored)`
      copied++
    } catch (err) {
      // One claim's failure leaves it out (the snapshot is partial), unless volumes are required or the archive itself failed.
      const decision = decideClaimFailure(claim, err, {volumesRequired: context.volumes.required, archiveOpen: context.archive.state === 'open', output: context.output})
      if (decision.action === 'abort') throw err
      result.skipped.push(decision.skipped)
      result.warnings.push(decision.warning)
      report.output = `${claim}: not copied`
    }
  }
  return copied
}
