/**
 * How kubesnap sizes V8's heap for itself, set when the CLI starts (bin/run.js)
 * before oclif and the commands load.
 */
import v8 from 'node:v8'

/**
 * How much the old generation may grow past what the last full collection
 * left alive before the next one, in percent: V8 picks 10 to 300 by its own
 * measure of speed, and the restore of 10,000 objects, whose requests in
 * flight are promoted and then die, let 70 MiB of old space fill with garbage
 * over ≈25 MiB alive.
 */
export const OLD_GENERATION_GROWTH_PERCENT = 50

/**
 * Keeps V8's heap close to what is alive, for a CLI whose peak RSS matters
 * more than the last few percent of CPU time:
 * - the young generation stays at the size it starts with (two 1 MiB
 *   semi-spaces) instead of doubling up to two 16 MiB ones, up to 30 MiB of
 *   RSS that hold only garbage between scavenges (`list` of a 3.5 MB manifest
 *   and the restore of 10,000 objects grew it to the full 32 MiB);
 * - the old generation grows by OLD_GENERATION_GROWTH_PERCENT between full
 *   collections.
 * Node fixes the young generation's ceiling (`--max-semi-space-size`) and the
 * heap's limit when it starts, but V8 reads these two at each collection, so
 * they are the settings that act from inside (a `#!/usr/bin/env -S node …`
 * line would fail where `env` is BusyBox's).
 */
export function keepHeapSmall(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1')
  v8.setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`)
}
