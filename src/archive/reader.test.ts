import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {basename, join} from 'node:path'
import {buffer} from 'node:stream/consumers'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ArchiveError, type ArchiveProblem} from './errors.js'
import {isStreamEntry, MANIFEST_MEMBER, TRAILER_MEMBER, type ObjectEntry, type StreamEntry} from './manifest.js'
import {openArchive} from './reader.js'
import {chunked, flipByte, removeDir, SAMPLE_OBJECTS, tempDir, writeSample, writerOptions} from './sample.test.js'
import {createArchiveWriter} from './writer.js'

test('openArchive reads the trailer and manifest only, however large the entries', async () => {
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir, {partSize: 8 * 1024 * 1024}))
    await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    await writer.addStream({type: 'volume', name: 'data'}, chunked(randomBytes(48 * 1024 * 1024)), {compress: 'none'})
    const {path} = await writer.finish()
    const archive = await openArchive(path)
    const manifestBytes = archive.trailer.manifestSize
    assert.ok(archive.fileSize > 48 * 1024 * 1024)
    assert.is(archive.bytesRead, 2048 + manifestBytes, 'the last 2048 bytes, then the manifest')
    assert.ok(archive.bytesRead < 8 * 1024, `${archive.bytesRead} bytes read`)
  } finally {
    await removeDir(dir)
  }
})

/** Opens a path and returns the ArchiveError's problem and entry (or fails the test). */
async function openProblem(path: string): Promise<{problem: ArchiveProblem; entry?: string; message: string}> {
  try {
    await openArchive(path)
  } catch (err) {
    if (!(err instanceof ArchiveError)) throw err
    return {problem: err.problem, entry: err.entry, message: err.message}
  }
  throw new Error(`${path} opened`)
}

test('clear errors: not an archive, truncated, unsupported version, damaged manifest or trailer', async () => {
  const s = await writeSample()
  try {
    const original = await readFile(s.path)
    const variant = async (name: string, data: Buffer) => {
      const p = join(s.dir, name)
      await writeFile(p, data)
      return p
    }
    const manifestAt = (await openArchive(s.path)).trailer.manifestOffset
    const plainTar = join(s.dir, 'plain.tar')
    execFileSync('tar', ['cf', plainTar, '-C', s.dir, basename(s.path)])
    const cases: [string, string, ArchiveProblem, string | undefined, RegExp][] = [
      ['an empty file', await variant('empty', Buffer.alloc(0)), 'not a kubesnap archive', undefined, /is not a kubesnap archive/],
      ['random bytes', await variant('random', randomBytes(10_000)), 'not a kubesnap archive', undefined, /is not a kubesnap archive/],
      ['a plain tar', plainTar, 'not a kubesnap archive', undefined, /does not start with kubesnap\/format\.json/],
      ['cut in the middle', await variant('cut', original.subarray(0, 1_000_000)), 'truncated', TRAILER_MEMBER, /is truncated .* use another archive/],
      ['cut one byte short', await variant('short', original.subarray(0, original.length - 1)), 'truncated', TRAILER_MEMBER, /is truncated/],
      ['version 2', await variant('v2', Buffer.from(original.toString('latin1').replace('"formatVersion":1,"manifestOffset"', '"formatVersion":2,"manifestOffset"'), 'latin1')), 'unsupported format version', undefined, /format version 2, but this kubesnap reads only version 1/],
      ['a flipped manifest byte', await variant('manifest', flipped(original, manifestAt + 100)), 'sha256 mismatch', MANIFEST_MEMBER, /does not match the sha256 in its trailer/],
      ['a flipped trailer byte', await variant('trailer', flipped(original, original.length - 1536 + 2)), 'corrupt trailer', TRAILER_MEMBER, /damaged trailer/],
    ]
    for (const [name, path, problem, entry, message] of cases) {
      const got = await openProblem(path)
      assert.is(got.problem, problem, name)
      assert.is(got.entry, entry, name)
      assert.match(got.message, message, name)
    }
  } finally {
    await removeDir(s.dir)
  }
})

test('readEntry and readStream fail at the end when stored bytes do not match', async () => {
  const s = await writeSample()
  try {
    const object = s.manifest.entries.find((e) => !isStreamEntry(e)) as ObjectEntry
    const volume = s.manifest.entries.find((e) => isStreamEntry(e) && e.type === 'volume') as StreamEntry
    await flipByte(s.path, object.offset + 3)
    await flipByte(s.path, volume.parts[5].offset + 10)
    const archive = await openArchive(s.path)
    for (const [what, read] of [
      ['object', () => archive.readObject(object)],
      ['volume', () => buffer(archive.readStream(volume))],
    ] as const) {
      try {
        await read()
        assert.unreachable(what)
      } catch (err) {
        assert.instance(err, ArchiveError, what)
        assert.is((err as ArchiveError).problem, 'sha256 mismatch', what)
      }
    }
  } finally {
    await removeDir(s.dir)
  }
})

function flipped(data: Buffer, offset: number): Buffer {
  const copy = Buffer.from(data)
  copy[offset] ^= 0x01
  return copy
}

test('a missing file is an ordinary ENOENT', async () => {
  try {
    await openArchive('/nonexistent/x.kubesnap.tar')
    assert.unreachable()
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ENOENT')
  }
})

test.run()
