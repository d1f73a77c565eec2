/**
 * Restore's first phase: the archive's every byte, then whose it is, then its
 * contents opened, all before anything else is read from it.
 */
import type {ArchiveReader} from '../archive/reader.js'
import {openArchive} from '../archive/reader.js'
import {verifyArchive} from '../archive/verify.js'
import {openForContents} from '../archive/contents.js'
import {KubesnapError} from '../errors.js'
import {checkTrust, type SignatureSummary} from '../archive/sign.js'
import type {RestorePlan} from './plan.js'

/** An archive verified, its signature checked, its contents readable. */
export interface OpenedArchive {
  reader: ArchiveReader
  signature: SignatureSummary
  /** Members verified. */
  members: number
}

/**
 * Verifies every checksum of `plan.path`, checks its signature against
 * `plan.trust`, and opens it for its contents with `plan.identity`; throws a
 * KubesnapError that says what to do when any of these fails.
 */
export async function openVerified(plan: Pick<RestorePlan, 'path' | 'identity' | 'trust'>): Promise<OpenedArchive> {
  const path = plan.path
  // Every byte before the first write: a damaged archive never half-restores.
  const verified = await verifyArchive(path)
  if (!verified.ok) {
    throw new KubesnapError(`The archive ${path} is damaged at ${verified.entry} (${verified.problem}); nothing was restored: restore from another snapshot.`)
  }
  // Then whose it is: a tampered, unsigned (with --trust) or untrusted archive stops here, before any content is read.
  const checked = await openArchive(path)
  const signature = await checkTrust(checked, plan.trust)
  // A missing or wrong key stops here, before any write.
  const reader = await openForContents(path, plan.identity)
  // Entries are read against this manifest: it must be the one whose signature was checked.
  if (reader.trailer.manifestSha256 !== checked.trailer.manifestSha256) {
    throw new KubesnapError(`${path} changed while it was being read; nothing was restored: make sure nothing writes the archive, and restore again.`)
  }
  return {reader, signature, members: verified.members}
}
