import {execFileSync, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable, Transform} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ArchiveError} from './errors.js'
import {entryMembers, FORMAT_MEMBER, isStreamEntry, MANIFEST_MEMBER, TRAILER_MEMBER, type ObjectEntry, type StreamEntry} from './manifest.js'
import {openArchive} from './reader.js'
import {chunked, recipeArchive, removeDir, SAMPLE_OBJECTS, SMALL_PART, tempDir, writeSample, writerOptions} from './sample.test.js'
import {verifyArchive} from './verify.js'
import {createArchiveWriter, type EntryCipher} from './writer.js'

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const objectEntries = (entries: readonly unknown[]) => entries.filter((e) => !isStreamEntry(e as StreamEntry)) as ObjectEntry[]
const streamEntry = (entries: readonly unknown[], name: string) => (entries as StreamEntry[]).find((e) => isStreamEntry(e) && e.name === name)!

test('round trip: objects and streams read back identical, parts split at partSize', async () => {
  const s = await writeSample()
  try {
    assert.match(s.path, /\/sf-000001-\d{8}T\d{6}Z\.kubesnap\.tar$/)
    assert.is((await stat(s.path)).mode & 0o777, 0o600)
    assert.equal(await readdir(s.dir), [s.path.slice(s.dir.length + 1)], 'no lock, no partial left behind')

    const archive = await openArchive(s.path)
    const m = archive.manifest
    assert.equal(
      {format: m.format, formatVersion: m.formatVersion, namespace: m.namespace, number: m.number, kubesnapVersion: m.kubesnapVersion, cluster: m.cluster, encrypted: m.encrypted},
      {format: 'kubesnap-archive', formatVersion: 1, namespace: 'sf', number: 1, kubesnapVersion: '0.1.0-test', cluster: {server: 'https://127.0.0.1:6443', context: 'test'}, encrypted: false},
    )
    assert.ok(m.startedAt <= m.finishedAt)
    assert.equal(m.skipped, [{resource: 'events', reason: 'made by the cluster'}])
    assert.equal(m.warnings, ['sample warning'])

    const objects = objectEntries(m.entries)
    assert.equal(objects.map((e) => [e.type, e.path]), SAMPLE_OBJECTS.map((o) => [o.meta.type ?? 'object', o.meta.type === 'crd' ? `crds/${o.meta.name}.json` : undefined] as const).map(([t, p], i) => [t, p ?? objects[i].path]))
    for (const [i, o] of SAMPLE_OBJECTS.entries()) {
      const content = await archive.readObject(objects[i])
      assert.is(content.toString('utf8'), o.json, objects[i].path)
      assert.is(objects[i].sha256, sha256(Buffer.from(o.json)))
      assert.is(objects[i].kind, o.meta.kind)
    }
    assert.is(objects[0].path, 'objects/core/v1/secrets/db.json')
    assert.is(objects[0].group, '')

    const volume = streamEntry(m.entries, 'data')
    assert.is(volume.compression, 'gzip')
    assert.is(volume.rawSize, s.volume.length)
    assert.is(volume.rawSha256, sha256(s.volume), 'rawSha256 is what sha256sum in the pod would print')
    assert.ok(volume.parts.length > 40, `${volume.parts.length} parts`)
    assert.ok(volume.parts.slice(0, -1).every((p) => p.size === SMALL_PART))
    assert.ok(volume.parts.at(-1)!.size > 0 && volume.parts.at(-1)!.size <= SMALL_PART)
    assert.is(volume.parts.reduce((n, p) => n + p.size, 0), volume.size)
    assert.is(volume.offset, volume.parts[0].offset)
    assert.equal(volume.extra, {mountPath: '/var/lib/data'})
    assert.is(volume.kind, 'PersistentVolumeClaim')
    const stored = Buffer.concat(await Promise.all(volume.parts.map((p) => buffer(archive.readEntry(p)))))
    assert.is(sha256(stored), volume.sha256)
    assert.ok((await buffer(archive.readStream(volume))).equals(s.volume), 'volume reads back identical')

    const dump = streamEntry(m.entries, 'mysql')
    assert.is(dump.compression, 'none')
    assert.equal(dump.parts.map((p) => p.path), ['dumps/mysql/part-000000.dump'])
    assert.ok((await buffer(archive.readStream(dump))).equals(s.dump))
    assert.equal(await verifyArchive(s.path), {ok: true, members: 3 + objects.length + volume.parts.length + 1, bytes: archive.fileSize})
  } finally {
    await removeDir(s.dir)
  }
})

test('system tar lists and extracts every member; cat parts | gzip -dc gives the volume back', async () => {
  const s = await writeSample()
  try {
    const listed = execFileSync('tar', ['tf', s.path], {encoding: 'utf8'}).trim().split('\n')
    assert.equal(listed, [FORMAT_MEMBER, ...s.manifest.entries.flatMap(entryMembers).map((p) => p.path), MANIFEST_MEMBER, TRAILER_MEMBER])
    const out = join(s.dir, 'out')
    await mkdir(out)
    const result = spawnResult('tar', ['xf', s.path, '-C', out])
    assert.equal(await result, {code: 0, stderr: ''}, 'tar extracts without a warning')
    for (const o of objectEntries(s.manifest.entries)) {
      assert.is(await readFile(join(out, o.path), 'utf8'), SAMPLE_OBJECTS.find((x) => x.meta.name === o.name)!.json, o.path)
      assert.is((await stat(join(out, o.path))).mode & 0o777, 0o600, 'extracted Secrets are private')
    }
    const volume = execFileSync('sh', ['-c', 'cat volumes/data/part-* | gzip -dc'], {cwd: out, maxBuffer: 64 * 1024 * 1024})
    assert.ok(volume.equals(s.volume))
    assert.ok(execFileSync('sh', ['-c', 'cat dumps/mysql/part-*'], {cwd: out}).equals(s.dump))
    const manifest = JSON.parse(await readFile(join(out, MANIFEST_MEMBER), 'utf8'))
    assert.equal(manifest, s.manifest)
  } finally {
    await removeDir(s.dir)
  }
})

test('a volume tar streamed in comes back out with the README recipe', async () => {
  const dir = await tempDir()
  try {
    const {src, path, out, dest} = await recipeArchive(dir)
    execFileSync('tar', ['xf', path, '-C', out])
    execFileSync('sh', ['-c', `cat volumes/data/part-* | gzip -dc | tar xpf - -C '${dest}'`], {cwd: out})
    execFileSync('diff', ['-r', src, dest]) // throws on any difference
  } finally {
    await removeDir(dir)
  }
})

test('250-character object and volume names survive (pax headers), for us and for tar', async () => {
  const dir = await tempDir()
  try {
    const name = 'n'.repeat(245) + '.long'
    const pvc = 'p'.repeat(200)
    const writer = await createArchiveWriter(writerOptions(dir))
    const entry = await writer.addObject({kind: 'ConfigMap', group: '', version: 'v1', resource: 'configmaps', name}, '{"long":true}')
    await writer.addStream({type: 'volume', name: pvc}, chunked(randomBytes(200_000)))
    const {path, manifest} = await writer.finish()
    assert.is(entry.path, `objects/core/v1/configmaps/${name}.json`)
    assert.ok(entry.path.length > 250)
    const archive = await openArchive(path)
    assert.is((await archive.readObject(entry)).toString(), '{"long":true}')
    assert.equal(await verifyArchive(path), {ok: true, members: 4 + streamEntry(manifest.entries, pvc).parts.length, bytes: archive.fileSize})
    const listed = execFileSync('tar', ['tf', path], {encoding: 'utf8'}).split('\n')
    assert.ok(listed.includes(entry.path))
    assert.ok(listed.includes(`volumes/${pvc}/part-000000.tar.gz`))
    const out = join(dir, 'out')
    await mkdir(out)
    execFileSync('tar', ['xf', path, '-C', out])
    assert.is(await readFile(join(out, entry.path), 'utf8'), '{"long":true}')
  } finally {
    await removeDir(dir)
  }
})

test('an empty stream still gets one part', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    const plain = await writer.addStream({type: 'dump', name: 'empty'}, Readable.from([]), {compress: 'none'})
    const gz = await writer.addStream({type: 'volume', name: 'empty'}, Readable.from([]))
    const {path} = await writer.finish()
    assert.equal(plain.parts.map((p) => p.size), [0])
    assert.is(plain.rawSha256, sha256(Buffer.alloc(0)))
    assert.is(plain.sha256, sha256(Buffer.alloc(0)))
    assert.is(gz.parts.length, 1)
    assert.is(gz.sha256, gz.parts[0].sha256, 'one part: its hash is the stream\'s')
    const archive = await openArchive(path)
    assert.is((await buffer(archive.readStream(plain))).length, 0)
    assert.is((await buffer(archive.readStream(gz))).length, 0)
    assert.is((await verifyArchive(path)).ok, true)
  } finally {
    await removeDir(dir)
  }
})

test('a stream that fails leaves no trace: the writer goes on and the archive verifies', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    const kept = await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    // Where the last good entry ends (content padded to 512): the file must end there again.
    const endOfKept = kept.offset + Math.ceil(kept.size / 512) * 512
    const broken = Readable.from(
      (async function* () {
        yield randomBytes(500_000)
        throw new Error('exec stream cut')
      })(),
    )
    try {
      await writer.addStream({type: 'volume', name: 'data'}, broken)
      assert.unreachable()
    } catch (err) {
      assert.match((err as Error).message, /volume data .*exec stream cut/)
    }
    assert.is((await stat(writer.partialPath)).size, endOfKept, 'the partial entry is cut off the file')
    assert.is(writer.entries.length, 1)
    const retry = await writer.addStream({type: 'volume', name: 'data'}, chunked(randomBytes(100_000)))
    const {path, manifest} = await writer.finish({warnings: ['first attempt at volume data failed']})
    assert.equal(manifest.entries.map((e) => e.name), ['db', 'data'])
    assert.is(retry.parts[0].path, 'volumes/data/part-000000.tar.gz')
    assert.is((await verifyArchive(path)).ok, true)
  } finally {
    await removeDir(dir)
  }
})

test('confirm can discard a stream that ended cleanly; a lazy input opens only when its turn comes', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    const opened: string[] = []
    const first = writer.addStream({type: 'volume', name: 'data'}, chunked(randomBytes(300_000)), {
      confirm: (entry) => {
        opened.push('confirm data')
        // What the volume layer does with the pod's `sha256sum` output.
        if (entry.rawSha256 !== 'what the pod printed') throw new Error('the pod counted other bytes')
      },
    })
    const second = writer.addStream({type: 'dump', name: 'db'}, () => {
      opened.push('open db')
      return chunked(Buffer.from('dump'))
    })
    await first.then(
      () => assert.unreachable(),
      (err: Error) => assert.match(err.message, /volume data .*the pod counted other bytes/),
    )
    await second
    assert.equal(opened, ['confirm data', 'open db'])
    const {path, manifest} = await writer.finish()
    assert.equal(manifest.entries.map((e) => e.name), ['db'])
    assert.is((await verifyArchive(path)).ok, true)
  } finally {
    await removeDir(dir)
  }
})

test('one stream per name, whatever its compression', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    await writer.addStream({type: 'volume', name: 'data'}, chunked(Buffer.from('a')))
    await writer.addStream({type: 'volume', name: 'data'}, chunked(Buffer.from('b')), {compress: 'none'}).then(
      () => assert.unreachable(),
      (err: Error) => assert.match(err.message, /already has volumes\/data\//),
    )
    await writer.addStream({type: 'dump', name: 'data'}, chunked(Buffer.from('c')))
    await writer.abort()
  } finally {
    await removeDir(dir)
  }
})

test('backpressure: the input is read only as fast as the file is written', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir, {partSize: 1024 * 1024}))
    const chunk = Buffer.alloc(64 * 1024, 7)
    let pulled = 0
    let maxAhead = 0
    const source = Readable.from(
      (async function* () {
        for (let i = 0; i < 1024; i++) {
          if (i % 32 === 0) maxAhead = Math.max(maxAhead, pulled - (await stat(writer.partialPath)).size)
          pulled += chunk.length
          yield chunk
        }
      })(),
    )
    const entry = await writer.addStream({type: 'dump', name: 'zeros'}, source, {compress: 'none'})
    await writer.finish()
    assert.is(entry.rawSize, 64 * 1024 * 1024)
    assert.is(entry.parts.length, 64)
    assert.ok(maxAhead < 8 * 1024 * 1024, `input ran ${maxAhead} bytes ahead of the file`)
  } finally {
    await removeDir(dir)
  }
})

test('calls are serialized: an object added during a stream lands after it', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    const stream = writer.addStream({type: 'volume', name: 'data'}, chunked(randomBytes(300_000)))
    const object = writer.addObject(SAMPLE_OBJECTS[1].meta, SAMPLE_OBJECTS[1].json)
    await Promise.all([stream, object])
    const {path, manifest} = await writer.finish()
    assert.equal(manifest.entries.map((e) => e.type), ['volume', 'object'])
    assert.is((await verifyArchive(path)).ok, true)
  } finally {
    await removeDir(dir)
  }
})

test('refuses a member twice, and a number that exists', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    try {
      await writer.addObject(SAMPLE_OBJECTS[0].meta, '{}')
      assert.unreachable()
    } catch (err) {
      assert.match((err as Error).message, /already has objects\/core\/v1\/secrets\/db\.json/)
    }
    await writer.finish()
    try {
      await createArchiveWriter(writerOptions(dir, {number: 1}))
      assert.unreachable()
    } catch (err) {
      assert.match((err as Error).message, /Snapshot 1 of namespace sf already exists/)
    }
    const next = await createArchiveWriter(writerOptions(dir, {number: 5}))
    assert.is(next.number, 5)
    await next.abort()
  } finally {
    await removeDir(dir)
  }
})

test('abort removes the partial file and the lock; the writer is closed after', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir))
    await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    assert.equal((await readdir(dir)).sort(), ['.kubesnap.lock', writer.partialPath.slice(dir.length + 1)].sort())
    assert.is((await stat(writer.partialPath)).mode & 0o777, 0o600)
    await writer.abort()
    assert.equal(await readdir(dir), [])
    try {
      await writer.addObject(SAMPLE_OBJECTS[1].meta, '{}')
      assert.unreachable()
    } catch (err) {
      assert.match((err as Error).message, /already aborted/)
    }
    // Two aborts at once (a signal's and the failing run's): each settles only once the lock is gone.
    const twice = await createArchiveWriter(writerOptions(dir))
    void twice.abort()
    await twice.abort()
    assert.equal(await readdir(dir), [], 'the second abort waited for the first')
  } finally {
    await removeDir(dir)
  }
})

/** A stand-in cipher (XOR with a constant) proving the encryption seam; age replaces it later. */
const xorCipher = (): Transform =>
  new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, Buffer.from(chunk.map((b) => b ^ 0x5a)))
    },
  })

test('the cipher seam: contents pass through it after compression; verify needs no key', async () => {
  const dir = await tempDir()
  try {
    // The manifest does not record the suffix: an encrypted archive's members end in .age, whatever encrypts them.
    const cipher: EntryCipher = {suffix: '.age', encrypt: xorCipher}
    const writer = await createArchiveWriter(writerOptions(dir, {cipher}))
    const object = await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    const data = randomBytes(200_000)
    const volume = await writer.addStream({type: 'volume', name: 'data'}, chunked(data))
    const {path, manifest} = await writer.finish()
    assert.is(manifest.encrypted, true)
    assert.is(object.path, 'objects/core/v1/secrets/db.json.age')
    assert.is(volume.parts[0].path, 'volumes/data/part-000000.tar.gz.age')
    assert.is(volume.rawSha256, sha256(data))
    assert.is((await verifyArchive(path)).ok, true)

    const locked = await openArchive(path)
    assert.is.not((await buffer(locked.readEntry(object))).toString(), SAMPLE_OBJECTS[0].json)
    try {
      await locked.readObject(object)
      assert.unreachable()
    } catch (err) {
      assert.instance(err, ArchiveError)
      assert.is((err as ArchiveError).problem, 'encrypted')
    }
    const archive = await openArchive(path, {decrypt: xorCipher})
    assert.is((await archive.readObject(object)).toString(), SAMPLE_OBJECTS[0].json)
    assert.ok((await buffer(archive.readStream(volume))).equals(data))
  } finally {
    await removeDir(dir)
  }
})

/** Runs a command to its end; resolves with its exit code and stderr. */
function spawnResult(command: string, args: string[]): Promise<{code: number | null; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stderr}))
  })
}

test.run()
