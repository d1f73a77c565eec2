/**
 * Fault switches for the node's exec streams, flipped by tests at run time so
 * that a client's handling of bad days (cut streams, lost status, slow links)
 * can be observed against the real apiserver.
 *
 *   node.faults.cutAfterBytes = 4096              // every exec, until reset
 *   node.faults.forPod('db-0').dropStatus = true  // only execs in pod db-0
 *   node.faults.forPod('db-0').execs = 1          // ... and only the next one
 *   node.faults.reset()
 */

/** What can go wrong with one exec stream. */
export interface FaultSwitches {
  /** Close the stream abruptly (no close frame, no status) after this many stdout bytes; the command is killed. */
  cutAfterBytes?: number
  /** End the stream normally but without the channel-3 status. */
  dropStatus?: boolean
  /** Read the client's stdin at most this fast. */
  slowReaderBytesPerSec?: number
  /** Send the command's stdout at most this fast. */
  slowWriterBytesPerSec?: number
  /** Apply these switches to this many more execs only, then switch them off; unset = until reset. */
  execs?: number
}

/** The switches that apply to one exec, with `execs` already consumed. */
export type ActiveFaults = Omit<FaultSwitches, 'execs'>

const SWITCH_KEYS = ['cutAfterBytes', 'dropStatus', 'slowReaderBytesPerSec', 'slowWriterBytesPerSec'] as const

/** Node-wide switches, plus per-pod switches that take precedence for that pod's execs. */
export class ExecFaults implements FaultSwitches {
  cutAfterBytes?: number
  dropStatus?: boolean
  slowReaderBytesPerSec?: number
  slowWriterBytesPerSec?: number
  execs?: number
  private readonly perPod = new Map<string, FaultSwitches>()

  /** Returns the mutable switches for execs in pods named `podName` (any namespace). */
  forPod(podName: string): FaultSwitches {
    let switches = this.perPod.get(podName)
    if (!switches) {
      switches = {}
      this.perPod.set(podName, switches)
    }
    return switches
  }

  /** Switches every fault off, node-wide and per pod. */
  reset(): void {
    clearSwitches(this)
    this.perPod.clear()
  }

  /**
   * Returns the faults for a new exec in pod `podName` and counts that exec
   * against any `execs` limit. A pod's own switch wins over the node-wide one.
   */
  take(podName: string): ActiveFaults {
    const active: ActiveFaults = {}
    const scopes: FaultSwitches[] = [this]
    const pod = this.perPod.get(podName)
    if (pod) scopes.push(pod)
    for (const scope of scopes) {
      if (!hasSwitch(scope)) continue
      for (const key of SWITCH_KEYS) {
        if (scope[key] !== undefined) (active as Record<string, unknown>)[key] = scope[key]
      }
      if (scope.execs !== undefined) {
        scope.execs -= 1
        if (scope.execs <= 0) clearSwitches(scope)
      }
    }
    return active
  }
}

function hasSwitch(scope: FaultSwitches): boolean {
  return SWITCH_KEYS.some((key) => scope[key] !== undefined && scope[key] !== false)
}

function clearSwitches(scope: FaultSwitches): void {
  for (const key of SWITCH_KEYS) delete scope[key]
  delete scope.execs
}
