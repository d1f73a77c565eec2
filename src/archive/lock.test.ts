import {spawn, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {readdir, readFile, stat, symlink, utimes, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {acquireLock, LOCK_FILE, LockedError, removeLeftoverPartials} from './lock.js'
import {removeDir, tempDir, writerOptions} from './sample.test.js'
import {createArchiveWriter} from './writer.js'

/** A pid that existed on this host and is gone now. */
function deadPid(): number {
  const child = spawnSync('true')
  return child.pid
}

const holderJson = (pid: number, host = hostname()) => JSON.stringify({pid, hostname: host, startedAt: '2026-11-21T16:00:00.000Z'})

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot. */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()

/** A lock as this version writes it: the holder's boot id and process start time beside its pid. */
const holderWithStart = (pid: number, processStart: number, boot = bootId()) =>
  JSON.stringify({pid, hostname: hostname(), startedAt: new Date().toISOString(), bootId: boot, processStart})

test('takes a free lock, writes its holder, and releases it', async () => {
  const dir = await tempDir()
  try {
    const lock = await acquireLock(dir)
    const holder = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))
    assert.is(holder.pid, process.pid)
    assert.is(holder.hostname, hostname())
    assert.is((await stat(join(dir, LOCK_FILE))).mode & 0o777, 0o600)
    await lock.release()
    assert.equal(await readdir(dir), [])
  } finally {
    await removeDir(dir)
  }
})

test('who holds the lock decides: live or other host refused, dead or garbled-and-old taken over', async () => {
  const sleeper = spawn('sleep', ['30'])
  try {
    const cases: {name: string; content: string; ageMs?: number; taken: boolean; message?: RegExp}[] = [
      {name: 'live pid on this host', content: holderWithStart(sleeper.pid!, startTicks(sleeper.pid!)), taken: false, message: new RegExp(`^Another kubesnap run \\(pid ${sleeper.pid}\\) holds .*\\.kubesnap\\.lock; wait for it or remove the file if that process is gone\\.$`)},
      {name: 'live pid, lock of an older version written after it started', content: JSON.stringify({pid: sleeper.pid, hostname: hostname(), startedAt: new Date(Date.now() + 1000).toISOString()}), taken: false},
      {name: 'this very process', content: holderWithStart(process.pid, startTicks(process.pid)), taken: false},
      {name: 'pid reused: a live process that started at another time', content: holderWithStart(sleeper.pid!, startTicks(sleeper.pid!) - 1), taken: true},
      {name: 'pid reused, lock of an older version: the live process started after the lock was taken', content: holderJson(sleeper.pid!), taken: true},
      {name: 'our own pid from an earlier run (kubesnap as PID 1 in a restarted container)', content: holderWithStart(process.pid, startTicks(process.pid) - 100), taken: true},
      {name: 'our own pid, lock of an older version from before we started', content: holderJson(process.pid), taken: true},
      {name: 'a live pid, but the lock is from before the last reboot', content: holderWithStart(sleeper.pid!, startTicks(sleeper.pid!), '00000000-0000-0000-0000-000000000000'), taken: true},
      {name: 'dead pid on this host', content: holderJson(deadPid()), taken: true},
      {name: 'pid on another host', content: holderJson(deadPid(), 'some-other-host'), taken: false, message: /on host some-other-host/},
      {name: 'garbled, just written', content: '', taken: false, message: /is creating/},
      {name: 'garbled, a minute old', content: '{"pid":', ageMs: 60_000, taken: true},
    ]
    for (const c of cases) {
      const dir = await tempDir()
      try {
        const path = join(dir, LOCK_FILE)
        await writeFile(path, c.content)
        if (c.ageMs) await utimes(path, new Date(Date.now() - c.ageMs), new Date(Date.now() - c.ageMs))
        if (c.taken) {
          const lock = await acquireLock(dir)
          assert.is(JSON.parse(await readFile(path, 'utf8')).pid, process.pid, c.name)
          await lock.release()
        } else {
          try {
            await acquireLock(dir)
            assert.unreachable(c.name)
          } catch (err) {
            assert.instance(err, LockedError, c.name)
            if (c.message) assert.match((err as Error).message, c.message, c.name)
            assert.is(await readFile(path, 'utf8'), c.content, `${c.name}: the holder's file is untouched`)
          }
        }
        assert.equal((await readdir(dir)).filter((f) => f !== LOCK_FILE), [], `${c.name}: no stray files`)
      } finally {
        await removeDir(dir)
      }
    }
  } finally {
    sleeper.kill()
  }
})

test('the stale holder is reported so the writer can warn', async () => {
  const dir = await tempDir()
  try {
    const pid = deadPid()
    await writeFile(join(dir, LOCK_FILE), holderJson(pid))
    const lock = await acquireLock(dir)
    assert.is(lock.tookOverFrom?.pid, pid)
    await lock.release()
  } finally {
    await removeDir(dir)
  }
})

test('release leaves a lock that is no longer ours alone', async () => {
  const dir = await tempDir()
  try {
    const lock = await acquireLock(dir)
    await writeFile(join(dir, LOCK_FILE), holderJson(12345))
    await lock.release()
    assert.is(await readFile(join(dir, LOCK_FILE), 'utf8'), holderJson(12345))
  } finally {
    await removeDir(dir)
  }
})

test('a second writer in the same directory is refused while the first runs', async () => {
  const dir = await tempDir()
  try {
    const first = await createArchiveWriter(writerOptions(dir))
    try {
      await createArchiveWriter(writerOptions(dir, {namespace: 'other'}))
      assert.unreachable()
    } catch (err) {
      assert.instance(err, LockedError)
      assert.match((err as Error).message, `pid ${process.pid}`)
    }
    await first.finish()
    const second = await createArchiveWriter(writerOptions(dir))
    assert.is(second.number, 2)
    await second.abort()
  } finally {
    await removeDir(dir)
  }
})

test('a writer after a killed run takes over its lock and removes its .partial', async () => {
  const dir = await tempDir()
  try {
    const leftover = '.sf-000001-20261121T160000Z.kubesnap.tar.partial'
    await writeFile(join(dir, leftover), 'half an archive')
    await writeFile(join(dir, LOCK_FILE), holderJson(deadPid()))
    const writer = await createArchiveWriter(writerOptions(dir))
    const {manifest, path} = await writer.finish()
    assert.is(manifest.number, 1, 'the partial did not take a number')
    assert.ok(manifest.warnings.some((w) => w.includes(leftover)), 'removal is recorded')
    assert.ok(manifest.warnings.some((w) => w.includes('Took over the lock')), 'takeover is recorded')
    assert.equal((await readdir(dir)).sort(), [path.slice(dir.length + 1)])
  } finally {
    await removeDir(dir)
  }
})

test('a lock that keeps changing under every attempt is exit 5, as a held lock is', async () => {
  // A dangling symlink: creating the file always finds it there (EEXIST), reading it always finds nothing (ENOENT).
  const dir = await tempDir()
  try {
    await symlink(join(dir, 'nowhere'), join(dir, LOCK_FILE))
    const err = await acquireLock(dir).then(() => undefined, (e: unknown) => e)
    assert.instance(err, KubesnapError)
    assert.is((err as KubesnapError).exitCode, 5)
    assert.match((err as Error).message, /other kubesnap runs keep changing it; wait for them and try again\.$/)
  } finally {
    await removeDir(dir)
  }
})

test('removeLeftoverPartials removes partial archives only', async () => {
  const dir = await tempDir()
  try {
    for (const f of ['.sf-000001-20261121T160000Z.kubesnap.tar.partial', 'sf-000002-20261121T160000Z.kubesnap.tar', '.other.partial', 'x.partial']) await writeFile(join(dir, f), '')
    assert.equal(await removeLeftoverPartials(dir), ['.sf-000001-20261121T160000Z.kubesnap.tar.partial'])
    assert.equal((await readdir(dir)).sort(), ['.other.partial', 'sf-000002-20261121T160000Z.kubesnap.tar', 'x.partial'])
  } finally {
    await removeDir(dir)
  }
})

test.run()
