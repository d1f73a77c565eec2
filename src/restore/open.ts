/**
 * Restore's first phase: whose the archive is, its contents opened, then its
 * every byte verified (scanning the volumes' tar streams in the same read),
 * all before anything else is read from it.
 */
import type {ArchiveReader} from '../archive/reader.js'
import {openArchive} from '../archive/reader.js'
import type {StreamEntry} from '../archive/manifest.js'
import {verifyArchive, type VerifyResult} from '../archive/verify.js'
import {openForContents} from '../archive/contents.js'
import {KubesnapError} from '../errors.js'
import {checkTrust, type SignatureSummary} from '../archive/sign.js'
import type {RestorePlan} from './plan.js'
import {verifyWithVolumeScans, type VolumeScan} from './volumes.js'

/** An archive verified, its signature checked, its contents readable. */
export interface OpenedArchive {
  reader: ArchiveReader
  signature: SignatureSummary
  /** Members verified. */
  members: number
  /** The volumes scanned for hostile members as the archive was verified (checkVolumeArchives takes them). */
  volumeScans: Map<string, VolumeScan>
}

/**
 * Checks the signature of `plan.path` against `plan.trust`, opens it for its
 * contents with `plan.identity`, and verifies every checksum; throws a
 * KubesnapError that says what to do when any of these fails.
 */
export async function openVerified(plan: Pick<RestorePlan, 'path' | 'identity' | 'trust' | 'volumes' | 'onlySecrets' | 'select' | 'selector'>): Promise<OpenedArchive> {
  const path = plan.path
  const damaged = (verified: VerifyResult & {ok: false}) => new KubesnapError(`The archive ${path} is damaged at ${verified.entry} (${verified.problem}); nothing was restored: restore from another snapshot.`)
  // Whose it is first: a tampered, unsigned (with --trust) or untrusted archive stops here, before any content is read.
  const checked = await openArchive(path).catch(async (err: unknown) => {
    // One that does not open is damaged somewhere: the full check names where.
    const verified = await verifyArchive(path)
    throw verified.ok ? err : damaged(verified)
  })
  const signature = await checkTrust(checked, plan.trust)
  // A missing or wrong key stops here, before any write.
  const reader = await openForContents(path, plan.identity)
  // Entries are read against this manifest: it must be the one whose signature was checked.
  if (reader.trailer.manifestSha256 !== checked.trailer.manifestSha256) {
    throw new KubesnapError(`${path} changed while it was being read; nothing was restored: make sure nothing writes the archive, and restore again.`)
  }
  // Every byte before the first write: a damaged archive never half-restores. When every claim is restored, each
  // volume is scanned for hostile members in the same read; a narrower selection is scanned by the preconditions.
  const {verified, scans} = await verifyWithVolumeScans(reader, restoresEveryClaim(plan) ? reader.manifest.entries.filter((e): e is StreamEntry => e.type === 'volume') : [])
  if (!verified.ok) throw damaged(verified)
  return {reader, signature, members: verified.members, volumeScans: scans}
}

/** Whether the restore takes every claim's tar data: no kind, name or label narrows what it restores. */
function restoresEveryClaim(plan: Pick<RestorePlan, 'volumes' | 'onlySecrets' | 'select' | 'selector'>): boolean {
  const {include, exclude, resources} = plan.select
  return plan.volumes === 'tar' && !plan.onlySecrets && include.length === 0 && exclude.length === 0 && resources.length === 0 && plan.selector.length === 0
}
