/**
 * Which stored claims get their data taken, and how: the pure decision before
 * any copy starts.
 */
import type {SkippedItem} from '../archive/manifest.js'
import {strategyOf, type SnapshotSettings} from '../plan/settings.js'
import {isBound, type ClaimObject} from '../volumes/index.js'

/** The claims of one snapshot, by what happens to their data. */
export interface ClaimPartition {
  /** Claims streamed into the archive (`tar`), sorted. */
  tar: string[]
  /** Claims taken as VolumeSnapshots (`csi`), sorted. */
  csi: string[]
  /** Bound claims whose strategy is `none`, sorted. */
  none: string[]
  /** How many stored claims are bound to a volume. */
  bound: number
  /** Claims whose data is not taken, with the reason (unbound, strategy none), for the manifest. */
  skipped: SkippedItem[]
  /** The plan names a claim this snapshot does not hold (a typo, or a claim gone). */
  warnings: string[]
}

/**
 * Splits the stored claims by volume strategy (the plan's per-claim choice,
 * else the run's): only bound claims have data; an unbound claim and a claim
 * with strategy `none` are recorded as left out on purpose.
 */
export function partitionClaims(claims: ClaimObject[], volumes: Pick<SnapshotSettings['volumes'], 'strategy' | 'claims'>): ClaimPartition {
  const names = new Set(claims.map((c) => c.metadata?.name ?? ''))
  const warnings = Object.keys(volumes.claims).filter((c) => !names.has(c)).sort()
    .map((claim) => `The plan sets a volume strategy for claim ${claim}, which this snapshot does not hold.`)
  const skipped: SkippedItem[] = claims.filter((c) => !isBound(c))
    .map((c) => leftOut(c.metadata?.name, 'data not copied: the claim is not bound to a volume'))
  const bound = claims.filter(isBound).map((c) => c.metadata?.name ?? '').sort()
  const byStrategy = (strategy: string) => bound.filter((c) => strategyOf(volumes, c) === strategy)
  const none = byStrategy('none')
  skipped.push(...none.map((claim) => leftOut(claim, 'data not copied: its volume strategy is none')))
  return {tar: byStrategy('tar'), csi: byStrategy('csi'), none, bound: bound.length, skipped, warnings}
}

function leftOut(name: string | undefined, reason: string): SkippedItem {
  return {kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name, reason}
}
