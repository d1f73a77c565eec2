/**
 * Restore's write phases, in the order the command runs them once the
 * preconditions hold: objects before the data, the claims' data, claims from
 * VolumeSnapshots, the workloads, restarts of what reads restored data,
 * application dumps, and the wait for it all to be ready. Each takes what the
 * phases before produced and returns its own outcomes; none throws for one
 * object's, volume's or workload's failure.
 */
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {qualifiedName, type KubeApi} from '../cluster/index.js'
import {loadableDumps, loadDumps, type DumpOutcome} from '../dumps/index.js'
import {messageOf} from '../errors.js'
import {restoreRank} from '../resources/priorities.js'
import {HelperPods} from '../volumes/helper.js'
import type {CheckedRestore} from './check.js'
import {restoreObjects, type ObjectOutcome} from './objects.js'
import type {RestorePlan} from './plan.js'
import {planRestarts, restoredChanges, rolloutRestart, waitForRollouts, type RestartPlan, type RolloutResult} from './restart.js'
import {archivedWorkloads, csiOutcomes, planVolumes, restoreVolumes, type VolumeOutcome, type VolumePlan} from './volumes.js'
import {workloadsBeforeDumps, workloadsToWait, type TouchedWorkloads} from './waits.js'

/** Workloads are created after volume data is back, so they start once, on their data. */
const FIRST_WORKLOAD_RANK = restoreRank('apps', 'statefulsets')

/** The checked entries split at the workloads: objects restored before the volume data, and after it. */
export function splitAtWorkloads(entries: ObjectEntry[]): {beforeData: ObjectEntry[]; afterData: ObjectEntry[]} {
  return {
    beforeData: entries.filter((e) => restoreRank(e.group, e.resource) < FIRST_WORKLOAD_RANK),
    afterData: entries.filter((e) => restoreRank(e.group, e.resource) >= FIRST_WORKLOAD_RANK),
  }
}

/** Applies `entries` (one phase of the ordered plan); returns their outcomes. */
export async function applyEntries(api: KubeApi, reader: ArchiveReader, checked: CheckedRestore, plan: RestorePlan, entries: ObjectEntry[], onOutcome: () => void): Promise<ObjectOutcome[]> {
  // In a namespace that does not exist yet, the server cannot dry-run creates: they are plain creates.
  if (plan.dryRun && checked.preconditions.namespaceExists === false) {
    return entries.map((e) => ({kind: e.kind, resource: qualifiedName(e), name: e.name, action: 'create' as const}))
  }
  return restoreObjects(api, reader, {
    entries,
    targets: checked.preconditions.targets,
    sourceNamespace: reader.manifest.namespace,
    targetNamespace: checked.namespace,
    selector: plan.selector,
    existing: plan.existing,
    dryRun: plan.dryRun,
    concurrency: plan.concurrency,
    claimSnapshots: checked.claimSnapshots,
    storageClasses: plan.storageClasses,
    modifiers: plan.modifiers,
    onOutcome,
  })
}

/**
 * The claims' data (--volumes tar), planned against what runs now: workloads
 * the archive brings are created only after their data. A dry run returns the
 * plan. A signal during the copy stops it in order: helpers deleted, scaled
 * workloads put back, the state reported.
 */
export async function restoreVolumeData(api: KubeApi, reader: ArchiveReader, checked: CheckedRestore, plan: RestorePlan, options: {
  signal?: AbortSignal
  onStatus: (line: string) => void
  onWarnings: (warnings: string[]) => void
}): Promise<VolumeOutcome[]> {
  const plans = await planVolumes(api, checked.namespace, checked.volumeEntries, {live: plan.live, workloads: checked.workloadsBefore})
  if (plan.dryRun) return plans.map(plannedVolume)
  const helpers = new HelperPods(api, checked.namespace, {image: plan.helper.image, asRoot: plan.helper.asRoot, startTimeoutMs: plan.timeoutMs})
  return helpers.use(async (removedStale) => {
    options.onWarnings(removedStale)
    return restoreVolumes({
      api, namespace: checked.namespace, reader, plans, helpers, signal: options.signal,
      mode: plan.volumeMode, timeoutMs: plan.timeoutMs, onStatus: options.onStatus,
      approved: checked.volumesApproved,
      workloads: checked.workloadsBefore.map((w) => ({...w.object, kind: w.kind})),
      archivedWorkloads: await archivedWorkloads(reader, checked.entries),
    })
  }, {signal: options.signal})
}

/** A dry run's outcome for one planned volume. */
function plannedVolume(p: VolumePlan): VolumeOutcome {
  return {claim: p.claim, bytes: p.bytes, action: 'planned', target: p.target.type === 'live' ? `live ${p.target.pod}/${p.target.container}` : 'helper', ...(p.owner ? {scaled: p.owner} : {})}
}

/** --volumes csi: each claim re-created from its VolumeSnapshot, as its object's outcome says. */
export function restoreCsiClaims(checked: CheckedRestore, outcomes: ObjectOutcome[], dryRun: boolean): VolumeOutcome[] {
  const claims = new Map(outcomes.filter((o) => o.resource === 'persistentvolumeclaims').map((o) => [o.name, o]))
  return csiOutcomes(checked.csiSnapshots ?? [], claims, dryRun)
}

/** Restarts the workloads live before the restore that read restored Secrets, ConfigMaps or live-written claims (a dry run plans them). */
export async function restartReaders(api: KubeApi, checked: CheckedRestore, run: {outcomes: ObjectOutcome[]; volumes: VolumeOutcome[]}, dryRun: boolean): Promise<RestartPlan[]> {
  const {changes, scaled} = restoredChanges(run.outcomes, run.volumes)
  const restarted = planRestarts(checked.workloadsBefore, changes, scaled)
  for (const plan of dryRun ? [] : restarted) {
    // One workload's failed restart is recorded; the others are still restarted.
    await rolloutRestart(api, checked.namespace, plan).catch((err: unknown) => (plan.error = `not restarted: ${messageOf(err)}`))
  }
  return restarted
}

/** Why dumps are not loaded in this run (--no-dumps, --only-secrets), if they are not. */
export function dumpsLeftReason(plan: Pick<RestorePlan, 'dumps' | 'onlySecrets'>): string | undefined {
  if (!plan.dumps || plan.onlySecrets) return plan.dumps ? 'not loaded with --only-secrets' : 'not loaded with --no-dumps'
  return undefined
}

/**
 * Streams each archived dump into its load command, after the workloads it
 * loads into that this restore touched are rolled out. Left with a reason
 * (dumpsLeftReason), planned in a dry run. The load command (which may carry
 * credentials) is in the outcome only in a dry run, the plan an operator reads.
 */
export async function loadArchivedDumps(api: KubeApi, reader: ArchiveReader, checked: CheckedRestore, plan: RestorePlan, run: TouchedWorkloads, options: {
  signal?: AbortSignal
  onStatus: (line: string) => void
}): Promise<DumpOutcome[]> {
  const entries = loadableDumps(reader.manifest.entries)
  const outcome = (e: (typeof entries)[number], action: DumpOutcome['action'], reason?: string): DumpOutcome =>
    ({name: e.name, workload: String(e.extra?.workload), ...(action === 'planned' ? {load: String(e.extra?.load)} : {}), bytes: e.rawSize, action, ...(reason ? {reason} : {})})
  const left = dumpsLeftReason(plan)
  if (left) return entries.map((e) => outcome(e, 'skipped', left))
  if (plan.dryRun) return entries.map((e) => outcome(e, 'planned'))
  // A workload this restore created, scaled or restarted gets its rollout first: the load needs it running.
  const refs = workloadsBeforeDumps(entries, run)
  if (refs.length > 0 && plan.wait) await waitForRollouts(api, checked.namespace, refs, {timeoutMs: plan.timeoutMs, onStatus: options.onStatus, signal: options.signal})
  return loadDumps({api, namespace: checked.namespace, reader, entries, onStatus: options.onStatus})
}

/** Waits for the workloads restarted, scaled back or created (workloadsToWait) to be ready. */
export async function waitForWorkloads(api: KubeApi, checked: CheckedRestore, plan: RestorePlan, run: TouchedWorkloads, options: {
  signal?: AbortSignal
  onStatus: (line: string) => void
}): Promise<RolloutResult[]> {
  return waitForRollouts(api, checked.namespace, workloadsToWait(run), {timeoutMs: plan.timeoutMs, onStatus: options.onStatus, signal: options.signal})
}
