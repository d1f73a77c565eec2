/**
 * The per-directory lock: `DIR/.kubesnap.lock`, created with O_EXCL, holding
 * {pid, hostname, startedAt, bootId, processStart}. It makes snapshot numbering
 * race-free and lets the next run clean up after a killed one: a lock whose
 * process is gone (same host) is stale and taken over, so a SIGKILLed cron run
 * does not wedge the next one. A pid alone does not name a process (pids are
 * reused, and after a reboot or in a restarted container kubesnap may get the
 * very pid of the run that left the lock): the boot id and the process's start
 * time (/proc/PID/stat) do.
 */
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {open, readFile, readdir, rename, stat, unlink} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {EXIT, KubesnapError} from '../errors.js'
import {parsePartialName} from './naming.js'

/** Name of the lock file inside the output directory. */
export const LOCK_FILE = '.kubesnap.lock'
/**
 * How long an empty or unreadable lock file counts as "being written" by a live
 * run (between its O_EXCL create and its write) before it is treated as stale.
 */
const UNREADABLE_GRACE_MS = 10_000

/** Who holds a lock. */
export interface LockHolder {
  pid: number
  hostname: string
  startedAt: string
  /** /proc/sys/kernel/random/boot_id when the lock was taken (Linux; absent in locks of older versions). */
  bootId?: string
  /** The holder's start time, field 22 of /proc/PID/stat: clock ticks after boot (Linux; absent in locks of older versions). */
  processStart?: number
}

/** What this host says about a process now: whether it exists and, on Linux, when it started. */
export interface ProcessProbe {
  /** This host's boot id, when it has one. */
  bootId?: string
  isAlive(pid: number): boolean
  /** Field 22 of /proc/PID/stat, when readable. */
  processStart(pid: number): number | undefined
  /** When the machine booted, in ms since the epoch (/proc/stat btime), when readable. */
  bootTimeMs?: number
}

/** The lock is held by a live (or unverifiable) process: exit 5 wherever it surfaces. */
export class LockedError extends KubesnapError {
  override readonly name = 'LockedError'
  readonly lockPath: string
  /** Undefined when the lock file could not be read. */
  readonly holder?: LockHolder

  constructor(lockPath: string, holder?: LockHolder) {
    super(
      holder === undefined
        ? `Another kubesnap run is creating ${lockPath}; wait for it or remove the file if no kubesnap run is active.`
        : holder.hostname === hostname()
          ? `Another kubesnap run (pid ${holder.pid}) holds ${lockPath}; wait for it or remove the file if that process is gone.`
          : `Another kubesnap run (pid ${holder.pid} on host ${holder.hostname}) holds ${lockPath}; wait for it or remove the file if that process is gone.`,
      {exit: EXIT.locked, code: 'KUBESNAP_LOCKED'},
    )
    this.lockPath = lockPath
    this.holder = holder
  }
}

/** A held lock. */
export interface DirLock {
  path: string
  holder: LockHolder
  /** The stale holder this lock replaced, if any (worth a warning). */
  tookOverFrom?: LockHolder
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>
}

/** Options mainly for tests. */
export interface LockOptions {
  /** What this host says about processes; defaults to /proc and a signal-0 probe. */
  probe?: ProcessProbe
}

/**
 * Takes the lock of a directory, taking over a stale one. Throws LockedError
 * when a live process (or one on another host, which cannot be checked) holds it.
 */
export async function acquireLock(dir: string, options: LockOptions = {}): Promise<DirLock> {
  const probe = options.probe ?? hostProbe()
  const path = join(dir, LOCK_FILE)
  const holder = thisProcess(probe)
  let tookOverFrom: LockHolder | undefined
  // A few rounds: each lost race (the file vanished, or another run took it over) retries.
  for (let round = 0; round < 5; round++) {
    if (await createLockFile(path, holder)) return heldLock(path, holder, tookOverFrom)
    const current = await readHolder(path)
    if (current === 'gone') continue
    if (current === 'unreadable') {
      if (!(await olderThan(path, UNREADABLE_GRACE_MS))) throw new LockedError(path)
      await takeOver(path, 'unreadable')
      continue
    }
    // A pid on another host cannot be checked; only the same host's gone processes are stale.
    if (current.hostname !== hostname() || holderIsLive(current, probe)) throw new LockedError(path, current)
    await takeOver(path, current)
    tookOverFrom = current
  }
  throw new KubesnapError(`Could not take ${path}: other kubesnap runs keep changing it; wait for them and try again.`, {exit: EXIT.locked})
}

/** Process start times are in clock ticks; USER_HZ is 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100
/**
 * How much later than a lock's startedAt its holder may seem to have started:
 * start times have tick (10 ms) resolution and btime whole seconds.
 */
const START_TIME_SLACK_MS = 2_000

/**
 * Returns whether the process a lock names (on this host) still runs. The pid
 * must exist and be the same process: same boot, and the start time the lock
 * recorded. A lock of an older version records no start time: then a process
 * that started after the lock was taken cannot be its holder.
 */
export function holderIsLive(holder: LockHolder, probe: ProcessProbe): boolean {
  if (holder.bootId && probe.bootId && holder.bootId !== probe.bootId) return false
  if (!probe.isAlive(holder.pid)) return false
  const start = probe.processStart(holder.pid)
  if (start === undefined) return true
  if (holder.processStart !== undefined) return holder.processStart === start
  const takenAt = Date.parse(holder.startedAt)
  if (probe.bootTimeMs === undefined || Number.isNaN(takenAt)) return true
  return probe.bootTimeMs + (start * 1000) / CLOCK_TICKS_PER_SECOND <= takenAt + START_TIME_SLACK_MS
}

/** This process as a lock (or a helper pod's owner annotation) records it. */
export function thisProcess(probe: ProcessProbe = hostProbe()): LockHolder {
  const processStart = probe.processStart(process.pid)
  return {
    pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(),
    ...(probe.bootId ? {bootId: probe.bootId} : {}), ...(processStart !== undefined ? {processStart} : {}),
  }
}

/** Whether `holder` was a process of this host that is gone now (one of another host cannot be checked: false). */
export function isGoneOnThisHost(holder: LockHolder, probe: ProcessProbe = hostProbe()): boolean {
  return holder.hostname === hostname() && !holderIsLive(holder, probe)
}

/** This host's process probe: /proc where there is one (Linux), else only whether a pid exists. */
export function hostProbe(): ProcessProbe {
  const bootId = readOr('/proc/sys/kernel/random/boot_id')?.trim()
  const btime = /^btime (\d+)$/m.exec(readOr('/proc/stat') ?? '')?.[1]
  return {
    ...(bootId ? {bootId} : {}),
    ...(btime ? {bootTimeMs: Number(btime) * 1000} : {}),
    isAlive: isProcessAlive,
    processStart: (pid) => {
      const stat = readOr(`/proc/${pid}/stat`)
      // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
      const field = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
      return field && /^\d+$/.test(field) ? Number(field) : undefined
    },
  }
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** Returns whether a process with this pid exists on this host. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes `.partial` archives left in a directory by interrupted runs. Call only
 * while holding the directory's lock: then no live run can own them.
 * Returns the removed file names.
 */
export async function removeLeftoverPartials(dir: string): Promise<string[]> {
  const removed: string[] = []
  for (const file of await readdir(dir)) {
    if (!parsePartialName(file)) continue
    try {
      await unlink(join(dir, file))
      removed.push(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return removed
}

/** Creates the lock file with O_EXCL; returns false if it already exists. */
async function createLockFile(path: string, holder: LockHolder): Promise<boolean> {
  let fh
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    await fh.writeFile(JSON.stringify(holder) + '\n')
  } catch (err) {
    await fh.close().catch(() => {})
    await unlink(path).catch(() => {})
    throw err
  }
  await fh.close()
  return true
}

/** Reads the holder of a lock file. */
async function readHolder(path: string): Promise<LockHolder | 'gone' | 'unreadable'> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone'
    throw err
  }
  return parseHolder(text)
}

/** Reads a process record written by thisProcess (a lock file, an owner annotation); 'unreadable' when it is not one. */
export function parseHolder(text: string): LockHolder | 'unreadable' {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>
    if (Number.isSafeInteger(v.pid) && typeof v.hostname === 'string' && typeof v.startedAt === 'string') {
      // Fields of the wrong type are dropped, as if an older version wrote the lock.
      const h = v as LockHolder
      return {
        pid: h.pid, hostname: h.hostname, startedAt: h.startedAt,
        ...(typeof h.bootId === 'string' ? {bootId: h.bootId} : {}), ...(Number.isSafeInteger(h.processStart) ? {processStart: h.processStart} : {}),
      }
    }
  } catch {
    // fall through
  }
  return 'unreadable'
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms
  } catch {
    return false
  }
}

/**
 * Removes a stale lock without removing a fresh one another run may have just
 * created in its place: move it aside, check it is still the stale one, and
 * put it back otherwise.
 */
async function takeOver(path: string, stale: LockHolder | 'unreadable'): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await rename(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const moved = parseHolder(await readFile(aside, 'utf8').catch(() => ''))
  const same = stale === 'unreadable' ? moved === 'unreadable' : moved !== 'unreadable' && moved.pid === stale.pid && moved.startedAt === stale.startedAt
  if (!same && moved !== 'unreadable') {
    // Another run took it over between our read and our rename: restore its lock.
    await createLockFile(path, moved)
  }
  await unlink(aside).catch(() => {})
}

function heldLock(path: string, holder: LockHolder, tookOverFrom: LockHolder | undefined): DirLock {
  const ours = (text: string) => {
    const h = parseHolder(text)
    return h !== 'unreadable' && h.pid === holder.pid && h.startedAt === holder.startedAt && h.hostname === holder.hostname
  }
  let released = false
  return {
    path,
    holder,
    tookOverFrom,
    async release() {
      if (released) return
      released = true
      const text = await readFile(path, 'utf8').catch(() => '')
      if (ours(text)) await unlink(path).catch(() => {})
    },
  }
}
