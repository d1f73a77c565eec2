/**
 * How kubesnap sizes V8's heap for itself: the young generation from the
 * CLI's start (bin/run.js, before oclif and the commands load), the old one
 * during a restore.
 */
import v8 from 'node:v8'

/**
 * How much the old generation may grow past what the last full collection
 * left alive before the next one, in percent, during a restore. V8
 * picks 10 to 300 by its own measure of speed: the restore of 10,000 objects,
 * whose requests in flight are promoted and then die, let 72 MiB of old space
 * fill with garbage.
 */
export const OLD_GENERATION_GROWTH_PERCENT = 50

/**
 * Keeps V8's young generation at the size it starts with (two 1 MiB
 * semi-spaces) instead of doubling up to two 16 MiB ones, up to 30 MiB of RSS
 * that hold only garbage between scavenges: `list` of a 3.5 MB manifest, the
 * restore of 10,000 objects and a volume snapshot grew it to the full 32 MiB.
 * Node fixes the young generation's ceiling (`--max-semi-space-size`) when it
 * starts, but V8 reads its growth factor at each growth, so this acts from
 * inside (a `#!/usr/bin/env -S node …` line would fail where `env` is
 * BusyBox's). It costs a volume snapshot 0.6–1.0 CPU-seconds per GiB, and
 * saves it 22–28 MiB.
 */
export function keepYoungGenerationSmall(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1')
}

/**
 * Lets the young generation grow again as V8 would (its growth factor, 2, up
 * to Node's 16 MiB semi-spaces): for the volume copy, where each GiB streams
 * tens of thousands of frames through short-lived objects and the CPU per GiB
 * matters more than 22–28 MiB under a 200 MiB bar.
 */
export function letYoungGenerationGrow(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=2')
}

/**
 * Runs `work` with the old generation growing by OLD_GENERATION_GROWTH_PERCENT
 * between full collections, then gives V8 back its own measure. Only around
 * work that fills the old generation with short-lived objects (a restore:
 * open, verify, checks and creates read and parse every object): on a volume
 * snapshot, whose heap is small and whose data lives outside it, it took ≈2.4
 * more CPU-seconds per GiB and saved nothing. Not nested: the inner call would
 * give V8 its measure back early.
 */
export async function withOldGenerationKeptSmall<T>(work: () => Promise<T>): Promise<T> {
  v8.setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`)
  try {
    return await work()
  } finally {
    // 0 is V8's default: no fixed factor.
    v8.setFlagsFromString('--heap-growing-percent=0')
  }
}
