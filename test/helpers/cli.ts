/**
 * Runs the built kubesnap CLI as a user would (`bin/run.js`, a child process,
 * no TTY) and returns what it printed and its exit code.
 */
import {join} from 'node:path'
import {execa} from 'execa'

const root = join(import.meta.dirname, '..', '..')
export const KUBESNAP_BIN = join(root, 'bin', 'run.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON when --json was passed. */
  json?: any
  /** Wall time in ms. */
  ms: number
}

/** Runs `kubesnap ...args`; never throws on a non-zero exit. */
export async function kubesnap(args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string} = {}): Promise<CliResult> {
  const started = Date.now()
  // As a user's shell would run it: no colour (the runner's FORCE_COLOR would
  // make Node warn about NO_COLOR on stderr, which tests read).
  const env: NodeJS.ProcessEnv = {...process.env, ...options.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR
  const result = await execa(process.execPath, [KUBESNAP_BIN, ...args], {
    reject: false,
    extendEnv: false,
    env,
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
    cwd: options.cwd ?? root,
    stripFinalNewline: false,
  })
  const out: CliResult = {code: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started}
  if (args.includes('--json') && result.stdout.trim()) {
    try {
      out.json = JSON.parse(result.stdout)
    } catch {
      // Left undefined: the test's assertion on json will say so.
    }
  }
  return out
}
