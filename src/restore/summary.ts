/**
 * What `restore` reports, built from the outcomes of its phases on every path
 * (Velero's restore result): the summary, how many things failed, and how the
 * run ended (restoreResult is the exit-code rule). Pure.
 */
import type {DumpOutcome} from '../dumps/index.js'
import {messageOf} from '../errors.js'
import {formatBytes} from '../format.js'
import type {SignatureSummary} from '../archive/sign.js'
import type {CheckedRestore} from './check.js'
import type {ObjectOutcome} from './objects.js'
import type {RestartPlan, RolloutResult} from './restart.js'
import {workloadKey} from '../volumes/workloads.js'
import {restoreResult, type RestoreStatus} from './result.js'
import type {ClaimWithoutData, VolumeOutcome} from './volumes.js'

/** What `restore --json` prints. */
export interface RestoreSummary {
  /**
   * `failed`: nothing was written (exit 1); `partial`: something was, and something failed (exit 3);
   * `interrupted`: a signal stopped it (exit 3, or 1 before any write). See restoreResult.
   */
  status: RestoreStatus
  /** What stopped the run before its end (a phase that could not go on, or a signal); the outcomes say how far it got. */
  error?: string
  dryRun: boolean
  archive: string
  sourceNamespace: string
  namespace: string
  namespaceCreated: boolean
  objects: {create: number; update: number; skip: number; conflict: number; failed: number}
  outcomes: ObjectOutcome[]
  /** Volume data: restored, planned (dry run) or failed, per claim. */
  volumes: VolumeOutcome[]
  /** Claims re-created without data: the archive holds none for them (a partial snapshot's failed copies among them). */
  withoutData: ClaimWithoutData[]
  /** Workloads restarted (or, in a dry run, to restart) to pick up restored Secrets, ConfigMaps or live-written data. */
  restarted: RestartPlan[]
  /** How the wait for restarted, rescaled and created workloads ended (empty with --no-wait). */
  rollouts: RolloutResult[]
  /** Application dumps streamed into their load commands (planned in a dry run, skipped without a Ready pod or with --no-dumps). */
  dumps: DumpOutcome[]
  /** When the manifest is signed: by which key, and whether that key is trusted (--trust). */
  signature?: SignatureSummary
  warnings: string[]
}

/** The outcomes of the write phases, as far as the run got; each phase fills its own. */
export interface RestoreOutcomes {
  namespaceCreated: boolean
  outcomes: ObjectOutcome[]
  volumes: VolumeOutcome[]
  restarted: RestartPlan[]
  rollouts: RolloutResult[]
  dumps: DumpOutcome[]
  /** Said while writing (helper pods a killed run left), after the preconditions' own. */
  warnings: string[]
}

/** Outcomes before the first write: none. */
export function noOutcomes(): RestoreOutcomes {
  return {namespaceCreated: false, outcomes: [], volumes: [], restarted: [], rollouts: [], dumps: [], warnings: []}
}

/** The summary of a restore whose preconditions held, with status `complete` until {@link finishRestore} settles it. */
export function summarizeRestore(run: {path: string; dryRun: boolean; sourceNamespace: string; signature?: SignatureSummary; checked: CheckedRestore; done: RestoreOutcomes}): RestoreSummary {
  const {checked, done} = run
  const count = (action: ObjectOutcome['action']) => done.outcomes.filter((o) => o.action === action).length
  return {
    status: 'complete',
    dryRun: run.dryRun,
    archive: run.path,
    sourceNamespace: run.sourceNamespace,
    namespace: checked.namespace,
    namespaceCreated: done.namespaceCreated,
    objects: {create: count('create'), update: count('update'), skip: count('skip'), conflict: count('conflict'), failed: count('failed')},
    outcomes: done.outcomes,
    volumes: done.volumes,
    withoutData: checked.withoutData,
    restarted: done.restarted,
    rollouts: done.rollouts,
    dumps: done.dumps,
    warnings: [...checked.preconditions.warnings, ...done.warnings, ...done.outcomes.filter((o) => o.warning).map((o) => `${o.kind}/${o.name}: ${o.warning}`),
      ...done.volumes.flatMap((v) => v.warnings ?? []),
      ...checked.withoutData.filter((c) => c.failed).map((c) => `Claim ${c.claim} is restored without data: the snapshot could not copy it (${c.reason.replace(/^data not copied: /, '')}); its data can only come from another snapshot that holds it.`),
      ...done.dumps.filter((d) => d.action === 'skipped').map((d) => `Dump ${d.name} was not loaded: ${d.reason}.`)],
    ...(run.signature?.signed ? {signature: run.signature} : {}),
  }
}

/** The workloads scaled down around volume copies, once each. */
export function scaledWorkloads(volumes: VolumeOutcome[]): NonNullable<VolumeOutcome['scaled']>[] {
  return [...new Map(volumes.flatMap((v) => (v.scaled ? [[workloadKey(v.scaled), v.scaled] as const] : []))).values()]
}

/** Every failed outcome of a restore: objects, volumes, workloads left scaled down, restarts, rollouts not ready, dumps. */
export function countFailures(summary: RestoreSummary): number {
  return summary.objects.failed + summary.objects.conflict
    + summary.volumes.filter((v) => v.action === 'failed').length
    + scaledWorkloads(summary.volumes).filter((w) => w.scaledBack === false).length
    + summary.restarted.filter((r) => r.error).length
    + summary.rollouts.filter((r) => !r.ready).length
    + summary.dumps.filter((d) => d.action === 'failed').length
}

/** How a run ended: the API writes it made, and what stopped it (a phase's error, a signal), if anything did. */
export interface RunEnd {
  apiWrites: number
  /** The error a phase threw: the run stopped there. */
  stopped?: unknown
  /** The signal that stopped it. */
  signal?: NodeJS.Signals
}

/**
 * Whether a restore wrote anything (a dry run: whether it would). A dry run is
 * judged by what it would write (a plan that would fail half-way is partial);
 * stopped by a signal, it wrote nothing.
 */
export function wroteAnything(summary: RestoreSummary, end: RunEnd): boolean {
  if (summary.dryRun) return end.signal === undefined && summary.outcomes.some((o) => o.action === 'create' || o.action === 'update') || summary.volumes.length > 0
  // Writes through the API, and what exec wrote into pods: volume data, dumps loaded (or failed part-way).
  return end.apiWrites > 0 || summary.volumes.some((v) => v.action === 'restored' || v.copyStarted) || summary.dumps.some((d) => d.action === 'loaded' || d.action === 'failed')
}

/** Settles a summary's status and error by restoreResult; returns the exit code. */
export function finishRestore(summary: RestoreSummary, end: RunEnd): {summary: RestoreSummary; exit: number} {
  const interrupted = end.signal !== undefined
  const result = restoreResult({wrote: wroteAnything(summary, end), failures: countFailures(summary), stopped: end.stopped !== undefined, interrupted})
  const settled: RestoreSummary = {...summary, status: result.status}
  if (interrupted) settled.error = `The restore was interrupted by ${end.signal} and stopped there: the objects, volumes and workloads above are as listed, helper pods are deleted, and every workload it had scaled down is scaled back (or named with the command to do it); restore again to finish.`
  else if (end.stopped !== undefined) settled.error = `The restore stopped: ${messageOf(end.stopped).replace(/\.$/, '')}; the objects, volumes and workloads above are as listed: fix the cause, then restore again (existing objects are skipped).`
  return {summary: settled, exit: result.exit}
}

/** A dry-run line for one volume: how many bytes go where. */
export function describeVolume(v: VolumeOutcome): string {
  if (v.snapshot) return `${'volume'.padEnd(8)} ${v.claim}: re-created from VolumeSnapshot ${v.snapshot}${v.bytes ? ` (${formatBytes(v.bytes)})` : ''}`
  const into = v.target === 'helper' ? 'through a helper pod' : `into the running pod ${v.target.slice('live '.length)}`
  const scaled = v.scaled ? ` while ${workloadKey(v.scaled)} is scaled from ${v.scaled.replicas} to 0` : ''
  return `${'volume'.padEnd(8)} ${v.claim}: ${formatBytes(v.bytes)} ${into}${scaled}`
}
