import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {Manifest, StreamEntry} from '../archive/manifest.js'
import {ArchiveReader, openArchive} from '../archive/reader.js'
import {removeDir, tempDir, writeSample} from '../archive/sample.test.js'
import {scanVolumeTar, type TarScanResult} from '../volumes/tar-in.js'
import {checkVolumeArchives, claimsWithoutData, verifyWithVolumeScans} from './volumes.js'

/** A volume entry of claim `name` (only what claimsWithoutData reads matters). */
function volume(name: string): StreamEntry {
  const part = {path: `volumes/${name}/part-000000.tar.gz`, offset: 1024, size: 10, sha256: 'a'.repeat(64)}
  return {type: 'volume', name, compression: 'gzip', parts: [part], offset: 1024, size: 10, sha256: 'a'.repeat(64), rawSize: 20, rawSha256: 'b'.repeat(64)}
}

const claim = (name: string, reason: string, failed?: boolean) =>
  ({kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name, reason, ...(failed === undefined ? {} : {failed})})

const manifest: Pick<Manifest, 'entries' | 'skipped'> = {
  entries: [volume('data-db-0'), volume('web-uploads')],
  skipped: [
    claim('data-db-1', 'data not copied: 1 path could not be read by tar in pod db-1', true),
    claim('cache', 'data not copied: its volume strategy is none'),
    claim('pending', 'data not copied: the claim is not bound to a volume'),
    {resource: 'events', reason: 'made by the cluster'},
  ],
}

test('claimsWithoutData: every restored claim the archive holds no data for, with the snapshot\'s reason', () => {
  const cases: Array<[string, string[], Set<string>, Array<[string, boolean]>]> = [
    ['claims with data are not named', ['data-db-0', 'web-uploads'], new Set(), []],
    ['a claim whose copy failed', ['data-db-0', 'data-db-1'], new Set(), [['data-db-1', true]]],
    ['left out on purpose: named, not failed', ['cache', 'pending'], new Set(), [['cache', false], ['pending', false]]],
    ['a claim with a recorded VolumeSnapshot has its data elsewhere', ['cache'], new Set(['cache']), []],
    ['only the claims the restore puts back', [], new Set(), []],
    ['no skipped item: still named', ['other'], new Set(), [['other', false]]],
  ]
  for (const [what, claims, snapshots, expected] of cases) {
    assert.equal(claimsWithoutData(manifest, claims, snapshots).map((c) => [c.claim, c.failed]), expected, what)
  }
  assert.equal(claimsWithoutData(manifest, ['data-db-1', 'other']).map((c) => c.reason), [
    'data not copied: 1 path could not be read by tar in pod db-1',
    'the snapshot stored no data for it',
  ])
})


/** A GNU tar stream of a few files, 2 MiB in all: dozens of the sample's 64 KiB parts once compressed. */
async function volumeTar(dir: string, hostile = false): Promise<Buffer> {
  await mkdir(join(dir, 'sub'))
  await writeFile(join(dir, 'random.bin'), randomBytes(2 * 1024 * 1024))
  await writeFile(join(dir, 'sub', 'notes.txt'), 'plain text\n'.repeat(5000))
  await symlink('../random.bin', join(dir, 'sub', 'link'))
  // -P keeps the leading /: a member with an absolute path, then the rest of the volume.
  const args = hostile ? ['-P', '-cf', '-', join(dir, 'sub', 'notes.txt'), '-C', dir, '.'] : ['-cf', '-', '-C', dir, '.']
  return execFileSync('tar', args, {maxBuffer: 64 * 1024 * 1024})
}

test('verifyWithVolumeScans: each volume is scanned as verify reads it, as a separate read would scan it; damage stops both', async () => {
  const files = await tempDir()
  const s = await writeSample({volume: await volumeTar(files)})
  try {
    const reader = await openArchive(s.path)
    const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'volume')!
    assert.ok(entry.parts.length > 10, 'the volume spans many parts')
    const {verified, scans} = await verifyWithVolumeScans(reader, [entry])
    assert.ok(verified.ok, JSON.stringify(verified))
    const separate = await scanVolumeTar(reader.readStream(entry))
    assert.equal(scans.get('data'), separate)
    assert.ok(separate.canonical && !separate.unsafe, 'approved')
    assert.equal(await checkVolumeArchives(reader, [entry], new Map(), scans), await checkVolumeArchives(reader, [entry]))

    const original = await readFile(s.path)
    const part = (i: number) => entry.parts[i]
    const span = (i: number) => [part(i).offset - 512, part(i).offset + part(i).size + ((512 - (part(i).size % 512)) % 512)]
    const damages: Array<[string, Buffer, string]> = [
      ['a flipped byte in a part', Buffer.concat([original.subarray(0, part(5).offset + 9), Buffer.from([original[part(5).offset + 9] ^ 1]), original.subarray(part(5).offset + 10)]), part(5).path],
      ['cut inside a part', original.subarray(0, part(8).offset + 100), part(8).path],
      ['two parts swapped', Buffer.concat([original.subarray(0, span(3)[0]), original.subarray(span(4)[0], span(4)[1]), original.subarray(span(3)[0], span(3)[1]), original.subarray(span(4)[1])]), part(3).path],
    ]
    for (const [name, data, at] of damages) {
      const path = join(s.dir, 'damaged.kubesnap.tar')
      await writeFile(path, data)
      // Opened as the intact archive: the damage is in the volume, not in the manifest.
      const damaged = await verifyWithVolumeScans(new ArchiveReader(path, data.length, reader.trailer, reader.manifest, 0, {}), [entry])
      assert.equal(damaged.verified.ok ? damaged.verified : damaged.verified.entry, at, name)
    }
  } finally {
    await removeDir(s.dir)
    await removeDir(files)
  }
})

test('verifyWithVolumeScans: a refused member ends the scan early, and verify still reads to the end', async () => {
  const files = await tempDir()
  const s = await writeSample({volume: await volumeTar(files, true)})
  try {
    const reader = await openArchive(s.path)
    const entry = reader.manifest.entries.find((e): e is StreamEntry => e.type === 'volume')!
    const {verified, scans} = await verifyWithVolumeScans(reader, [entry])
    assert.ok(verified.ok, JSON.stringify(verified))
    const scan = scans.get('data') as TarScanResult
    assert.equal(scan.unsafe, {path: join(files, 'sub', 'notes.txt'), reason: 'it has an absolute path'})
    const check = await checkVolumeArchives(reader, [entry], new Map(), scans)
    assert.equal(check.approved.size, 0)
    assert.match(check.problems[0], /^Volume data: the member ".*notes\.txt" is refused \(it has an absolute path\)/)
  } finally {
    await removeDir(s.dir)
    await removeDir(files)
  }
})

test.run()
