/**
 * How long work is shown: listr2's live renderer on a terminal, plain
 * timestamped lines when not a TTY (cron, CI, pipes), nothing with --json.
 */
import {Listr, PRESET_TIMESTAMP, type ListrTask} from 'listr2'

export interface ProgressOptions {
  json: boolean
  quiet?: boolean
  /** Whether stdout is a terminal; defaults to process.stdout.isTTY. */
  tty?: boolean
}

/**
 * A task list rendered the way the output calls for. listr2's own SIGINT
 * listener is off: it calls process.exit(127) at once, before the commands'
 * handlers can remove the partial archive or delete helper pods.
 */
export function taskList<C>(tasks: ListrTask<C>[], options: ProgressOptions): Listr<C> {
  const tty = options.tty ?? Boolean(process.stdout.isTTY)
  if (options.json || options.quiet) {
    return new Listr<C, 'silent'>(tasks, {renderer: 'silent', exitOnError: true, registerSignalListeners: false}) as unknown as Listr<C>
  }
  if (!tty) {
    return new Listr<C, 'verbose'>(tasks, {
      renderer: 'verbose',
      exitOnError: true,
      registerSignalListeners: false,
      rendererOptions: {timestamp: PRESET_TIMESTAMP, logTitleChange: false},
    }) as unknown as Listr<C>
  }
  return new Listr<C>(tasks, {renderer: 'default', exitOnError: true, registerSignalListeners: false, rendererOptions: {collapseSubtasks: false}})
}
