/**
 * How long work is shown: listr2's live renderer on a terminal, plain
 * timestamped lines when not a TTY (cron, CI, pipes), nothing with --json or
 * --quiet. Progress is written to stderr, so stdout carries only the result:
 * `restore --dry-run > plan.txt` holds the plan and nothing else.
 */
import {Flags} from '@oclif/core'
import {Listr, ListrLogger, ListrLogLevels, PRESET_TIMESTAMP, ProcessOutput, type ListrTask} from 'listr2'

export interface ProgressOptions {
  json: boolean
  quiet?: boolean
  /** Whether progress is shown on a terminal; defaults to {@link progressOnTerminal}. */
  tty?: boolean
}

/** The `--quiet` flag of every command that shows progress. */
export const quietFlag = Flags.boolean({char: 'q', summary: 'Print only warnings and errors (for cron): no progress, and no summary line when all went well.'})

/** Tells whether progress goes to a terminal (stderr is a TTY): then it is redrawn live, otherwise written as plain lines. */
export function progressOnTerminal(): boolean {
  return Boolean(process.stderr.isTTY)
}

/**
 * A task list rendered the way the output calls for. listr2's own SIGINT
 * listener is off: it calls process.exit(127) at once, before the commands'
 * handlers can remove the partial archive or delete helper pods.
 */
export function taskList<C>(tasks: ListrTask<C>[], options: ProgressOptions): Listr<C> {
  const tty = options.tty ?? progressOnTerminal()
  if (options.json || options.quiet) {
    return new Listr<C, 'silent'>(tasks, {renderer: 'silent', exitOnError: true, registerSignalListeners: false}) as unknown as Listr<C>
  }
  // Both of listr2's streams are stderr: its renderers write to "stdout" by default.
  const toStderr = (useIcons: boolean) => new ListrLogger({useIcons, processOutput: new ProcessOutput(process.stderr, process.stderr)})
  // Plain lines are for logs: no colours, whatever a terminal on stdout would allow (listr2 asks stdout).
  const uncoloured = (message?: string) => message ?? ''
  const plain = {
    timestamp: {...PRESET_TIMESTAMP, format: () => uncoloured},
    color: Object.fromEntries(Object.values(ListrLogLevels).map((level) => [level, uncoloured])),
    logTitleChange: false,
    logger: toStderr(false),
  }
  if (!tty) {
    return new Listr<C, 'verbose'>(tasks, {renderer: 'verbose', exitOnError: true, registerSignalListeners: false, rendererOptions: plain}) as unknown as Listr<C>
  }
  // listr2 draws live only when stdout is a TTY too; with stdout redirected the lines stay plain (still on stderr).
  return new Listr<C, 'default', 'verbose'>(tasks, {
    renderer: 'default',
    fallbackRenderer: 'verbose',
    exitOnError: true,
    registerSignalListeners: false,
    rendererOptions: {collapseSubtasks: false, logger: toStderr(true)},
    fallbackRendererOptions: plain,
  }) as unknown as Listr<C>
}

/** One phase as a task: its title and its latest output line, both settable while it runs. */
export interface PhaseTask {
  title: string
  output: string
}

/**
 * Shows phases that a pipeline runs itself (takeSnapshot) as tasks, each
 * rendered as taskList renders a list: the same lines on a terminal, in logs
 * and (none) with --json or --quiet. A phase's failure is thrown on.
 */
export function phaseRunner(options: ProgressOptions): {phase<T>(title: string, run: (task: PhaseTask) => Promise<T>): Promise<T>} {
  return {
    async phase<T>(title: string, run: (task: PhaseTask) => Promise<T>): Promise<T> {
      let result: T | undefined
      await taskList([{title, task: async (_ctx, task) => {
        result = await run(task)
      }}], options).run()
      return result as T
    },
  }
}
