/**
 * How a restore ended, as Velero's restore result says it: every phase records
 * its outcomes, and the run's status and exit code follow from two facts,
 * whether anything was written and whether anything failed. Exit 1 promises
 * the cluster is as it was; once a write happened, a failure is partial (3).
 */
import {EXIT, type ExitCode} from '../errors.js'

/** `failed`: nothing was written; `partial`: something was, and something failed; `interrupted`: a signal stopped it. */
export type RestoreStatus = 'complete' | 'partial' | 'failed' | 'interrupted'

/** What the decision needs to know about a finished (or stopped) restore. */
export interface RestoreFacts {
  /** Whether anything was, or may have been, written (a dry run: whether it would write anything). */
  wrote: boolean
  /** Outcomes that failed: objects, volumes, workloads not scaled back or not ready, restarts, dumps. */
  failures: number
  /** A phase threw and the run stopped there. */
  stopped?: boolean
  /** A signal stopped the run. */
  interrupted?: boolean
}

/** The status and exit code of a restore. Pure. */
export function restoreResult(facts: RestoreFacts): {status: RestoreStatus; exit: ExitCode} {
  const failed = facts.failures > 0 || facts.stopped === true || facts.interrupted === true
  if (!failed) return {status: 'complete', exit: EXIT.ok}
  const exit = facts.wrote ? EXIT.partial : EXIT.failed
  if (facts.interrupted) return {status: 'interrupted', exit}
  return {status: facts.wrote ? 'partial' : 'failed', exit}
}

/** The command that puts a workload back to its replicas, for when kubesnap could not. */
export function scaleCommand(namespace: string, ref: {kind: string; name: string}, replicas: number): string {
  return `kubectl scale -n ${namespace} ${ref.kind.toLowerCase()}/${ref.name} --replicas=${replicas}`
}
