/**
 * Pre- and post-hooks around the volume copy (`--pre-hook 'statefulset/db:fsfreeze …'`):
 * once the pre-hooks have started, the post-hooks run whatever happens, so
 * what the pre-hooks did (a frozen file system, a paused writer) is undone
 * also when the copy fails or the run is interrupted.
 */
import type {KubeApi} from '../cluster/api.js'
import {runHook, type DumpPlan} from '../dumps/index.js'
import {messageOf} from '../errors.js'
import type {SnapshotProgress} from './progress.js'

export interface HookContext {
  api: KubeApi
  namespace: string
  hooks: Pick<DumpPlan, 'preHooks' | 'postHooks'>
  progress: SnapshotProgress
  /** The run's stop signal: it stops a pre-hook; the post-hooks still run after it, to undo. */
  signal?: AbortSignal
}

/**
 * Runs `body` between the pre-hooks and the post-hooks (a phase each). When a
 * pre-hook or `body` fails, every post-hook runs all the same (their failures
 * become warnings) and the first error is thrown; when all went well, a failed
 * post-hook fails the run.
 */
export async function withHooks<T>(context: HookContext, body: () => Promise<T>): Promise<T> {
  const {preHooks, postHooks} = context.hooks
  if (preHooks.length === 0 && postHooks.length === 0) return body()
  let result: T
  try {
    await context.progress.phase('Run pre-hooks', async (report) => {
      for (const hook of preHooks) {
        const at = await runHook(context.api, context.namespace, hook, 'pre-hook', context.signal)
        report.output = `pre-hook in ${at.pod}: done`
      }
      report.title = `Ran ${preHooks.length} pre-hook(s)`
    })
    result = await body()
  } catch (err) {
    // The copy (or a pre-hook) failed: undo what the pre-hooks did all the same.
    await runPostHooks(context).catch((postErr: unknown) => context.progress.note(messageOf(postErr)))
    throw err
  }
  if (postHooks.length > 0) {
    await context.progress.phase('Run post-hooks', async (report) => {
      await runPostHooks(context, (line) => (report.output = line))
      report.title = `Ran ${postHooks.length} post-hook(s)`
    })
  }
  return result
}

/** Runs every post-hook, also after one failed; throws the first failure. */
async function runPostHooks(context: HookContext, report?: (line: string) => void): Promise<void> {
  let failure: unknown
  for (const hook of context.hooks.postHooks) {
    await runHook(context.api, context.namespace, hook, 'post-hook').then((at) => report?.(`post-hook in ${at.pod}: done`), (err: unknown) => (failure ??= err))
  }
  if (failure) throw failure
}
