import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {basename, join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {ArchiveError, ArchiveProblem} from './errors.js'
import {forgeArchive, objectJson, type ForgedObject} from './forge.test.js'
import {encodeMemberHeader, paddingFor} from './layout.js'
import {isStreamEntry, MANIFEST_MEMBER, TRAILER_MEMBER, type ObjectEntry, type StreamEntry, type StreamPart} from './manifest.js'
import {openArchive} from './reader.js'
import {removeDir, tempDir, writeSample, type Sample} from './sample.test.js'
import {verifyArchive} from './verify.js'

/** The bytes one member occupies: its header block (short paths only), content and padding. */
function span(member: StreamPart): [number, number] {
  return [member.offset - 512, member.offset + member.size + paddingFor(member.size)]
}

function flip(data: Buffer, offset: number): Buffer {
  const copy = Buffer.from(data)
  copy[offset] ^= 0x01
  return copy
}

/** A damaged copy of the sample, and what verify must say about it. */
interface Case {
  name: string
  damage: (original: Buffer, s: Sample) => Buffer
  entry: (s: Sample) => string
  problem: ArchiveProblem
}

const objects = (s: Sample) => s.manifest.entries.filter((e) => !isStreamEntry(e)) as ObjectEntry[]
const volume = (s: Sample) => s.manifest.entries.find((e) => e.type === 'volume') as StreamEntry
const manifestOffset = (data: Buffer) => JSON.parse(data.subarray(data.length - 1536, data.length - 1024).toString()).manifestOffset as number

const cases: Case[] = [
  {name: 'a flipped byte in an object', damage: (d, s) => flip(d, objects(s)[2].offset + 5), entry: (s) => objects(s)[2].path, problem: 'sha256 mismatch'},
  {name: 'a flipped byte in a volume part', damage: (d, s) => flip(d, volume(s).parts[7].offset + 1000), entry: (s) => volume(s).parts[7].path, problem: 'sha256 mismatch'},
  {name: 'a flipped byte in the last volume part', damage: (d, s) => flip(d, volume(s).parts.at(-1)!.offset), entry: (s) => volume(s).parts.at(-1)!.path, problem: 'sha256 mismatch'},
  {name: 'a flipped byte in the manifest', damage: (d) => flip(d, manifestOffset(d) + 200), entry: () => MANIFEST_MEMBER, problem: 'sha256 mismatch'},
  {name: 'a flipped byte in the trailer', damage: (d) => flip(d, d.length - 1536 + 5), entry: () => TRAILER_MEMBER, problem: 'corrupt trailer'},
  {name: 'a flipped byte in an object header', damage: (d, s) => flip(d, objects(s)[1].offset - 512 + 3), entry: (s) => objects(s)[1].path, problem: 'bad header checksum'},
  {name: 'a flipped byte in a part header', damage: (d, s) => flip(d, volume(s).parts[3].offset - 512 + 124), entry: (s) => volume(s).parts[3].path, problem: 'bad header checksum'},
  {name: 'a flipped byte in padding', damage: (d, s) => flip(d, objects(s)[0].offset + objects(s)[0].size + 1), entry: (s) => objects(s)[0].path, problem: 'bad padding'},
  {name: 'a flipped byte in the first end block', damage: (d) => flip(d, d.length - 1000), entry: () => '(end of archive)', problem: 'bad header checksum'},
  {name: 'a flipped byte in the last end block', damage: (d) => flip(d, d.length - 1), entry: () => '(end of archive)', problem: 'missing end-of-archive blocks'},
  {name: 'a flipped byte in format.json', damage: (d) => flip(d, 512 + 20), entry: () => 'kubesnap/format.json', problem: 'corrupt format.json'},
  {name: 'cut inside a volume part', damage: (d, s) => d.subarray(0, volume(s).parts[10].offset + 999), entry: (s) => volume(s).parts[10].path, problem: 'truncated'},
  {name: 'cut inside an object header', damage: (d, s) => d.subarray(0, objects(s)[3].offset - 100), entry: (s) => objects(s)[3].path, problem: 'truncated'},
  {name: 'cut before the trailer', damage: (d) => d.subarray(0, d.length - 2048), entry: () => TRAILER_MEMBER, problem: 'truncated'},
  {name: 'cut inside the end blocks', damage: (d) => d.subarray(0, d.length - 100), entry: () => '(end of archive)', problem: 'missing end-of-archive blocks'},
  {
    name: 'two objects swapped',
    damage: (d, s) => {
      const [a, b] = [span(objects(s)[0]), span(objects(s)[1])]
      return Buffer.concat([d.subarray(0, a[0]), d.subarray(b[0], b[1]), d.subarray(a[0], a[1]), d.subarray(b[1])])
    },
    entry: (s) => objects(s)[0].path,
    problem: 'out of order',
  },
  {
    name: 'two volume parts swapped',
    damage: (d, s) => {
      const [a, b] = [span(volume(s).parts[4]), span(volume(s).parts[5])]
      return Buffer.concat([d.subarray(0, a[0]), d.subarray(b[0], b[1]), d.subarray(a[0], a[1]), d.subarray(b[1])])
    },
    entry: (s) => volume(s).parts[4].path,
    problem: 'out of order',
  },
  {
    name: 'an object missing',
    damage: (d, s) => {
      const [start, end] = span(objects(s)[1])
      return Buffer.concat([d.subarray(0, start), d.subarray(end)])
    },
    entry: (s) => objects(s)[1].path,
    problem: 'missing',
  },
  {
    name: 'a volume part missing',
    damage: (d, s) => {
      const [start, end] = span(volume(s).parts[3])
      return Buffer.concat([d.subarray(0, start), d.subarray(end)])
    },
    entry: (s) => volume(s).parts[3].path,
    problem: 'missing',
  },
  {
    name: 'a member slipped in',
    damage: (d, s) => {
      const at = span(objects(s)[2])[0]
      const content = Buffer.from('{"kind":"Secret"}')
      const extra = Buffer.concat([encodeMemberHeader('objects/core/v1/secrets/evil.json', content.length, new Date()), content, Buffer.alloc(paddingFor(content.length))])
      return Buffer.concat([d.subarray(0, at), extra, d.subarray(at)])
    },
    entry: () => 'objects/core/v1/secrets/evil.json',
    problem: 'unexpected member',
  },
  {name: 'bytes after the end', damage: (d) => Buffer.concat([d, Buffer.from('x')]), entry: () => '(end of archive)', problem: 'trailing data'},
]

test('an intact archive verifies', async () => {
  const s = await writeSample()
  try {
    const seen: number[] = []
    const result = await verifyArchive(s.path, {onProgress: (bytes, total) => seen.push(bytes / total)})
    assert.ok(result.ok, JSON.stringify(result))
    assert.is(seen.at(-1), 1, 'progress reaches the whole file')
  } finally {
    await removeDir(s.dir)
  }
})

test('verify names the first bad member and what is wrong with it', async () => {
  const s = await writeSample()
  try {
    const original = await readFile(s.path)
    for (const c of cases) {
      const path = join(s.dir, 'damaged.kubesnap.tar')
      await writeFile(path, c.damage(original, s))
      const result = await verifyArchive(path)
      assert.equal(result.ok ? result : {ok: result.ok, entry: result.entry, problem: result.problem}, {ok: false, entry: c.entry(s), problem: c.problem}, c.name)
      assert.ok(!result.ok && result.detail.length > 0, `${c.name}: has a detail`)
    }
  } finally {
    await removeDir(s.dir)
  }
})

test('other files are not kubesnap archives', async () => {
  const s = await writeSample()
  try {
    const plain = join(s.dir, 'plain.tar')
    execFileSync('tar', ['cf', plain, '-C', s.dir, basename(s.path)])
    const random = join(s.dir, 'random.bin')
    await writeFile(random, randomBytes(5000))
    for (const path of [plain, random]) {
      const result = await verifyArchive(path)
      assert.equal(result.ok ? result : {entry: result.entry, problem: result.problem}, {entry: 'kubesnap/format.json', problem: 'not a kubesnap archive'}, path)
    }
  } finally {
    await removeDir(s.dir)
  }
})

test('the intact sample still opens after the damaged copies (they were copies)', async () => {
  const s = await writeSample()
  try {
    assert.is((await openArchive(s.path)).manifest.entries.length, s.manifest.entries.length)
  } finally {
    await removeDir(s.dir)
  }
})

test('verify and open refuse a member recorded twice, and a member filed under another object\'s name', async () => {
  const dir = await tempDir()
  try {
    const secret = {kind: 'Secret', group: '', version: 'v1', resource: 'secrets', name: 'db'}
    const cases: [string, ForgedObject[], ArchiveProblem][] = [
      ['the same path twice', [{entry: secret, content: objectJson('Secret', 'v1', 'db', 'sf')}, {entry: secret, content: objectJson('Secret', 'v1', 'db', 'sf', {data: {}})}], 'duplicate member'],
      ['a path that is not its record\'s', [{entry: {...secret, name: 'harmless-new', path: 'objects/core/v1/secrets/db.json'}, content: objectJson('Secret', 'v1', 'db', 'sf')}], 'identity mismatch'],
    ]
    for (const [name, objects, problem] of cases) {
      const path = join(dir, `${problem}.kubesnap.tar`)
      await forgeArchive(path, {namespace: 'sf', objects})
      const result = await verifyArchive(path)
      assert.equal(result.ok ? result : {entry: result.entry, problem: result.problem}, {entry: MANIFEST_MEMBER, problem}, name)
      try {
        await openArchive(path)
        assert.unreachable(name)
      } catch (err) {
        assert.is((err as ArchiveError).problem, problem, name)
      }
    }
  } finally {
    await removeDir(dir)
  }
})

test.run()
