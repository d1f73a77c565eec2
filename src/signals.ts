/**
 * Turning Ctrl-C, SIGTERM and SIGHUP into an orderly stop: the first signal
 * aborts an AbortSignal the work watches (so it can put back what it changed
 * and say what state it left); the handlers are gone after it, so a second
 * signal ends the process at once, as the user asked twice.
 */

/** A watch on the stop signals; `received` names the one that came. */
export interface Interrupt {
  readonly signal: AbortSignal
  readonly received?: NodeJS.Signals
  /** Removes the handlers (call it in a `finally`). */
  stop(): void
}

/** Aborts the returned signal, with reason `Error('interrupted by SIGTERM')`, on the first of `signals`. */
export function interruptOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']): Interrupt {
  const controller = new AbortController()
  let received: NodeJS.Signals | undefined
  const handler = (signal: NodeJS.Signals) => {
    received = signal
    stop()
    controller.abort(new Error(`interrupted by ${signal}`))
  }
  const stop = () => {
    for (const s of signals) process.off(s, handler)
  }
  for (const s of signals) process.on(s, handler)
  return {
    signal: controller.signal,
    get received() {
      return received
    },
    stop,
  }
}

/**
 * Ends the process by `signal` as if no handler had caught it (exit status
 * 128+N, what a shell and a cron wrapper expect of an interrupted run): for a
 * command that has put everything back and has nothing to report. Call it
 * after Interrupt.stop(), or a handler still catches the signal.
 */
export function endBySignal(signal: NodeJS.Signals): void {
  process.kill(process.pid, signal)
}
