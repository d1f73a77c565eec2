/**
 * What a snapshot does when one claim's data cannot be copied. By default the
 * claim is left out, recorded as failed in the manifest's `skipped` list (the
 * snapshot is partial, exit 3), and the objects and every other volume are
 * kept: one broken claim must not cost the whole namespace's backup. With
 * --volumes-required (plan: `volumes.required`), or when the archive itself
 * failed (a full disk, a signal that removed it), the snapshot stops as before.
 */
import type {SkippedItem} from '../archive/manifest.js'
import {diskError} from '../archive/disk.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'

/** A claim's data could not be copied: the sentence for the user, and the bare reason for the manifest. */
export class ClaimCopyError extends KubesnapError {
  /**
   * @param claim the PersistentVolumeClaim
   * @param reason what went wrong, without the fix (`stream cut after 50000 bytes (attempt 2 of 2)`)
   * @param message the whole sentence: cause and fix
   */
  constructor(readonly claim: string, readonly reason: string, message: string, options: {cause?: unknown} = {}) {
    super(message, {exit: EXIT.failed, cause: options.cause})
    this.name = 'ClaimCopyError'
  }
}

/** What the run does about one claim's failed copy. */
export type ClaimFailureDecision =
  | {action: 'skip'; skipped: SkippedItem; warning: string}
  | {action: 'abort'; why: 'volumes required' | 'archive closed' | 'disk'}

/** Where a claim's copy failed. */
export interface ClaimFailureContext {
  /** --volumes-required: any claim without its data fails the snapshot. */
  volumesRequired: boolean
  /** Whether the archive writer still takes entries (a signal aborts it). */
  archiveOpen: boolean
  /** The output directory: an error about its disk is the archive's, not the claim's. */
  output: string
}

/**
 * Decides whether a claim whose copy failed is left out of the snapshot (and
 * how it is recorded and reported) or fails the whole run. Only the claim's own
 * failures are left out: its pod, its helper, its stream, its files. A failure
 * of the archive would fail every claim after it, so it stops the run.
 */
export function decideClaimFailure(claim: string, err: unknown, context: ClaimFailureContext): ClaimFailureDecision {
  if (!context.archiveOpen) return {action: 'abort', why: 'archive closed'}
  if (diskError(err, context.output, 'no archive was written')) return {action: 'abort', why: 'disk'}
  if (context.volumesRequired) return {action: 'abort', why: 'volumes required'}
  const reason = err instanceof ClaimCopyError ? err.reason : messageOf(err).replace(/\.$/, '')
  const sentence = messageOf(err).replace(/\.?$/, '.')
  return {
    action: 'skip',
    skipped: {kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: claim, reason: `data not copied: ${reason}`, failed: true},
    warning: `${sentence} The snapshot is partial: it keeps the objects and the other volumes, without the data of claim ${claim} (--volumes-required fails the run instead).`,
  }
}
