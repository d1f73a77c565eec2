/**
 * The per-directory lock: `DIR/.kubesnap.lock`, created with O_EXCL, holding
 * {pid, hostname, startedAt}. It makes snapshot numbering race-free and lets the
 * next run clean up after a killed one: a lock whose process is gone (same host)
 * is stale and taken over, so a SIGKILLed cron run does not wedge the next one.
 */
import {randomBytes} from 'node:crypto'
import {readFileSync, unlinkSync} from 'node:fs'
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
  /** Same as release, synchronously, for signal handlers. */
  releaseSync(): void
}

/** Options mainly for tests. */
export interface LockOptions {
  /** Whether a pid on this host is alive; defaults to a signal-0 probe. */
  isAlive?: (pid: number) => boolean
}

/**
 * Takes the lock of a directory, taking over a stale one. Throws LockedError
 * when a live process (or one on another host, which cannot be checked) holds it.
 */
export async function acquireLock(dir: string, options: LockOptions = {}): Promise<DirLock> {
  const isAlive = options.isAlive ?? isProcessAlive
  const path = join(dir, LOCK_FILE)
  const holder: LockHolder = {pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString()}
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
    // A pid on another host cannot be checked; only the same host's dead pids are stale.
    if (current.hostname !== hostname() || current.pid === process.pid || isAlive(current.pid)) throw new LockedError(path, current)
    await takeOver(path, current)
    tookOverFrom = current
  }
  throw new Error(`Could not take ${path}: other kubesnap runs keep changing it; try again.`)
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

function parseHolder(text: string): LockHolder | 'unreadable' {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>
    if (Number.isSafeInteger(v.pid) && typeof v.hostname === 'string' && typeof v.startedAt === 'string') return v as LockHolder
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
    releaseSync() {
      if (released) return
      released = true
      let text = ''
      try {
        text = readFileSync(path, 'utf8')
      } catch {
        return
      }
      if (ours(text)) {
        try {
          unlinkSync(path)
        } catch {
          // already gone
        }
      }
    },
  }
}
