/**
 * The test cluster's child processes: started so that none can outlive us,
 * logged to files, stopped politely, and waited on until healthy.
 *
 * Three layers make sure nothing is left running:
 * - each child is wrapped in `setpriv --pdeathsig KILL`, so the kernel kills it
 *   when we die, even by SIGKILL;
 * - each child leads its own process group, so stopping it reaches whatever it forked;
 * - a registry kills every live group synchronously when this process exits,
 *   dies of an uncaught exception, or gets SIGINT/SIGTERM that nobody else handles.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

/** A child process we started. */
export interface ManagedProcess {
  name: string
  pid: number
  /** Its log, `<logDir>/<name>.log` (not written when its output went to our stderr). */
  logFile: string
  /** Settles when the child has exited, with its exit code (null when killed by a signal). */
  exited: Promise<number | null>
  /** Whether the child is still running. */
  running(): boolean
  /** SIGTERM to its process group, SIGKILL after the grace period; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

/** How to start one child. */
export interface StartProcessOptions {
  /** Short name for logs and errors, e.g. `etcd`. */
  name: string
  command: string
  args: string[]
  /** Directory of the log file `<name>.log`. */
  logDir: string
  env?: NodeJS.ProcessEnv
  cwd?: string
  /**
   * What the kernel sends the child when we die. KILL (default): it dies with
   * us and the registry kills it at exit too. TERM: a child that cleans up after
   * itself (a whole cluster in its own process) gets to stop gracefully, so
   * the registry leaves it to the kernel.
   */
  parentDeathSignal?: 'KILL' | 'TERM'
  /** Where its output goes: `<logDir>/<name>.log` (default), or our own stderr. */
  output?: 'log' | 'stderr'
}

const live = new Map<number, ManagedProcess>()
const exitCleanups = new Set<() => void>()
let registryInstalled = false

/** Starts a child with its output appended to `<logDir>/<name>.log`, in its own process group, signalled if we die. */
export function startProcess(options: StartProcessOptions): ManagedProcess {
  installRegistry()
  const deathSignal = options.parentDeathSignal ?? 'KILL'
  const logFile = path.join(options.logDir, `${options.name}.log`)
  const fd = options.output === 'stderr' ? 2 : openSync(logFile, 'a')
  let child: ChildProcess
  try {
    // setpriv execs the command in place, so the pid we get is the component's own.
    child = spawn('setpriv', ['--pdeathsig', deathSignal, '--', options.command, ...options.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    })
  } finally {
    if (fd !== 2) closeSync(fd)
  }
  const pid = child.pid
  if (pid === undefined) throw new Error(`${options.name} did not start: could not spawn setpriv ${options.command}`)
  // A detached child would otherwise keep our event loop alive.
  child.unref()

  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      exitCode = code
      // Forget it at once: a reaped pid may be reused by someone else's process.
      live.delete(pid)
      resolve(code)
    })
  })

  const managed: ManagedProcess = {
    name: options.name,
    pid,
    logFile,
    exited,
    running: () => exitCode === undefined,
    async stop(graceMs = 5000) {
      if (exitCode === undefined) {
        killGroup(pid, 'SIGTERM')
        const grace = new AbortController()
        const timeout = sleep(graceMs, 'timeout' as const, {signal: grace.signal}).catch(() => 'exited' as const)
        const first = await Promise.race([exited.then(() => 'exited' as const), timeout])
        // A pending grace timer would keep the process alive for nothing once the child is gone.
        grace.abort()
        if (first === 'timeout') killGroup(pid, 'SIGKILL')
        await held(exited)
        // Anything the leader forked and left in its group goes too; only right after
        // the leader's exit, while the group id cannot have been reused.
        killGroup(pid, 'SIGKILL')
      }
    },
  }
  if (deathSignal === 'KILL') live.set(pid, managed)
  return managed
}

/** The children of this process that are still running (those the registry kills at exit). */
export function liveProcesses(): ManagedProcess[] {
  return [...live.values()]
}

/** Kills every live child group with SIGKILL, synchronously; safe to call from an exit handler. */
export function killAllProcesses(): void {
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL')
}

/**
 * Registers a synchronous clean-up (removing a temp dir) to run after the
 * children are killed when this process ends without stopping them. Returns
 * the function that unregisters it, for when the owner cleaned up itself.
 */
export function onAbandon(cleanup: () => void): () => void {
  installRegistry()
  exitCleanups.add(cleanup)
  return () => exitCleanups.delete(cleanup)
}

function abandonAll(): void {
  killAllProcesses()
  for (const cleanup of exitCleanups) {
    exitCleanups.delete(cleanup)
    try {
      cleanup()
    } catch {
      // Best effort: the process is ending and has nobody left to tell.
    }
  }
}

/**
 * Awaits `promise` while keeping the event loop alive. Children are unreferenced
 * (a process that forgets to stop its cluster still ends, and its exit handler
 * kills them), so without this, awaiting a child's exit could let Node end mid-await.
 */
export async function held<T>(promise: Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 60_000)
  try {
    return await promise
  } finally {
    clearInterval(keepAlive)
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

function installRegistry(): void {
  if (registryInstalled) return
  registryInstalled = true
  process.on('exit', abandonAll)
  // The monitor observes without changing Node's default of crashing; if someone
  // handles uncaught exceptions, the process lives on and so must its cluster.
  process.on('uncaughtExceptionMonitor', () => {
    if (process.listenerCount('uncaughtException') === 0) abandonAll()
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      // Someone else handles this signal (the cluster CLI stops gracefully): leave it to them.
      if (process.listenerCount(signal) > 1) return
      abandonAll()
      // Die of the signal as we would have without a handler, so the exit status stays honest.
      process.off(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

/** How to reach a health endpoint. */
export interface HealthCheck {
  url: string
  /** PEM CA that signed the endpoint's serving cert; omitted = do not verify (self-signed health ports). */
  ca?: string
  /** Bearer token, for endpoints that need an authenticated caller. */
  token?: string
  timeoutMs?: number
}

/**
 * Polls `check.url` until it answers 200 `ok`. Fails early when the process
 * exits, and on timeout; either error carries the last 20 lines of its log.
 */
export async function waitForHealthy(proc: ManagedProcess, check: HealthCheck): Promise<void> {
  const deadline = Date.now() + (check.timeoutMs ?? 60_000)
  let last = 'no answer yet'
  while (Date.now() < deadline) {
    if (!proc.running()) {
      throw new Error(`${proc.name} exited with code ${await proc.exited} before ${check.url} was healthy; last lines of ${proc.logFile}:\n${await tailLog(proc.logFile)}`)
    }
    try {
      const {status, body} = await getOnce(check)
      if (status === 200) return
      last = `HTTP ${status}: ${body.slice(0, 300).trim()}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(200)
  }
  throw new Error(`${proc.name} was not healthy at ${check.url} within ${check.timeoutMs ?? 60_000} ms (last: ${last}); last lines of ${proc.logFile}:\n${await tailLog(proc.logFile)}`)
}

/** The last `lines` lines of a log file, or a note that it cannot be read. */
export async function tailLog(file: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(file, 'utf8')
    return text.trimEnd().split('\n').slice(-lines).join('\n')
  } catch (err) {
    return `(log unreadable: ${(err as Error).message})`
  }
}

function getOnce(check: HealthCheck): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const url = new URL(check.url)
    const headers: Record<string, string> = check.token ? {authorization: `Bearer ${check.token}`} : {}
    const onResponse = (res: http.IncomingMessage): void => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
      res.on('error', reject)
    }
    const req = url.protocol === 'https:'
      ? https.get(url, {headers, ca: check.ca, rejectUnauthorized: check.ca !== undefined, agent: false}, onResponse)
      : http.get(url, {headers, agent: false}, onResponse)
    req.setTimeout(2000, () => req.destroy(new Error('request timed out after 2 s')))
    req.on('error', reject)
  })
}
