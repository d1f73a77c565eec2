/**
 * Polling for the tests and the test cluster: a condition that becomes true
 * within a time limit, or an error that names what was awaited.
 */
import {setTimeout as sleep} from 'node:timers/promises'

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number
  /** Between checks; default 100 ms. */
  intervalMs?: number
  /** A check that throws counts as "not yet" (a pod or claim that does not exist yet), instead of failing the wait. */
  retryErrors?: boolean
  /** Added to the timeout error: what was seen last. */
  detail?: () => string
}

/** Checks `check` until it returns true, at least once and once more at the deadline; throws `timed out after N ms waiting for WHAT`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = options.retryErrors ? await Promise.resolve().then(check).catch(() => false) : await check()
    if (ok) return
    if (Date.now() >= deadline) {
      const extra = options.detail?.()
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra ? ` (${extra})` : ''}`)
    }
    await sleep(options.intervalMs ?? 100)
  }
}
