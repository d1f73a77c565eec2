/**
 * kubesnap's error type and its exit codes, documented in the README.
 * Every error a user sees is one sentence of cause and what to do.
 */
import {readFile} from 'node:fs/promises'
import {Errors} from '@oclif/core'

/** Exit codes, one meaning each. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  partial: 3,
  missingPermissions: 4,
  locked: 5,
  /** The snapshot was written, but copying it to the plan's second place (copyTo) failed. */
  copyFailed: 6,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/**
 * An error meant for the user: a one-sentence message and an exit code.
 * It carries the code both where oclif's handler reads it (`oclif.exit`) and
 * where its `--json` path reads it (`exitCode`).
 */
export class KubesnapError extends Errors.CLIError {
  readonly exitCode: ExitCode

  constructor(message: string, options: {exit?: ExitCode; cause?: unknown; code?: string} = {}) {
    const exit = options.exit ?? EXIT.failed
    super(message, {exit, code: options.code})
    this.exitCode = exit
    // Kept for debugging but not enumerable: oclif would print it as "Caused by",
    // and the sentence already says what happened.
    Object.defineProperty(this, 'origin', {value: options.cause, enumerable: false})
  }
}

/** The message of anything thrown, for folding into a sentence. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/**
 * Reads a text file the user named (a plan, a modifiers file): one that is
 * missing or unreadable is a usage error (exit 2), in the sentence
 * `sentence(why)` makes of "does not exist", "is not readable by this user"
 * or the system's own words.
 */
export async function readUserFile(path: string, sentence: (why: string) => string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : (err as Error).message
    throw new KubesnapError(sentence(why), {exit: EXIT.usage, cause: err})
  }
}
