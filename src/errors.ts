/**
 * kubesnap's error type and its exit codes, documented in the README.
 * Every error a user sees is one sentence of cause and what to do.
 */
import {readFile, stat} from 'node:fs/promises'
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
 * Reads a text file the user named (a plan, a modifiers file, a key file):
 * one that is missing, unreadable, not a file, or larger than `maxBytes` (a
 * mistyped path) is a usage error (exit 2), in the sentence `sentence(why)`
 * makes of why it cannot be used (see whyUnreadable).
 */
export async function readUserFile(path: string, sentence: (why: string) => string, options: {maxBytes?: number} = {}): Promise<string> {
  let why: string
  try {
    const info = await stat(path)
    if (info.isDirectory()) why = 'is a directory, not a file'
    else if (!info.isFile()) why = 'is not a file'
    else if (options.maxBytes !== undefined && info.size > options.maxBytes) why = `is ${info.size} bytes, too large to be one`
    else return await readFile(path, 'utf8')
  } catch (err) {
    throw new KubesnapError(sentence(whyUnreadable(err)), {exit: EXIT.usage, cause: err})
  }
  throw new KubesnapError(sentence(why), {exit: EXIT.usage})
}

/** Why a file could not be read, as the end of "The FILE …": its error code in words, else the system's own words. */
export function whyUnreadable(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist'
  if (code === 'EACCES' || code === 'EPERM') return 'is not readable by this user'
  if (code === 'EISDIR') return 'is a directory, not a file'
  return `cannot be read (${messageOf(err)})`
}
