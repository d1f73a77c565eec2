/**
 * A set-up failure of the project's own commands (`npm test`, `npm run
 * test:unit`, `demo`, `cluster`, `bench`): something the machine lacks or
 * refuses before any test or step runs. Its message is one sentence that says
 * what to do (a log's last lines may follow it); the entry points print it
 * without a stack trace and exit 2.
 */
export class SetupError extends Error {
  /** The exit code of a command that stops on it. */
  readonly exitCode = 2
}

/**
 * What an entry point prints when setting up failed: a SetupError's sentence
 * as it is, any other error's message (a component that exited, with its log's
 * last lines) after what was being done.
 */
export function setupFailureMessage(err: unknown): string {
  if (err instanceof SetupError) return err.message
  return `The test cluster did not start: ${err instanceof Error ? err.message : String(err)}`
}
