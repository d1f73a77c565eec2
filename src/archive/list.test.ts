import {readFile, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {listArchives} from './list.js'
import {chunked, removeDir, SAMPLE_OBJECTS, tempDir, writerOptions} from './sample.test.js'
import {createArchiveWriter} from './writer.js'

test('lists each archive from its trailer and manifest; a damaged one gets an error row', async () => {
  const dir = await tempDir()
  try {
    const paths: string[] = []
    for (const [i, namespace] of ['sf', 'sf', 'db', 'sf'].entries()) {
      const start = new Date(Date.UTC(2026, 10, 21, 16, 30, i))
      const writer = await createArchiveWriter(writerOptions(dir, {namespace, now: () => start}))
      for (const o of SAMPLE_OBJECTS) await writer.addObject(o.meta, o.json)
      if (namespace === 'sf') await writer.addStream({type: 'volume', name: 'data'}, chunked(Buffer.alloc(100_000, 1)), {compress: 'none'})
      paths.push((await writer.finish()).path)
    }
    // A half-written archive of a crashed run is not listed.
    await writeFile(join(dir, '.sf-000009-20261121T170000Z.kubesnap.tar.partial'), 'x')
    // Damage the trailer of db's archive.
    const db = paths[2]
    assert.is(db, join(dir, 'db-000001-20261121T163002Z.kubesnap.tar'))
    const bytes = await readFile(db)
    bytes[bytes.length - 1536 + 3] ^= 1
    await writeFile(db, bytes)

    const rows = await listArchives(dir)
    assert.equal(
      rows.map((r) => (r.ok ? [r.namespace, r.number, r.objects, r.crds, r.volumes, r.dumps, r.streamBytes, r.encrypted] : [r.namespace, r.number, r.problem])),
      [
        ['db', 1, 'corrupt trailer'],
        ['sf', 1, 4, 1, 1, 0, 100_000, false],
        ['sf', 2, 4, 1, 1, 0, 100_000, false],
        ['sf', 3, 4, 1, 1, 0, 100_000, false],
      ],
    )
    const first = rows[1]
    assert.is(first.file, 'sf-000001-20261121T163000Z.kubesnap.tar')
    assert.is(first.time.toISOString(), '2026-11-21T16:30:00.000Z')
    assert.ok(first.fileSize > 100_000)
    assert.equal((await listArchives(dir, {namespace: 'db'})).map((r) => r.number), [1])
    // A renamed archive is listed under its new name's number; numbering follows names, not manifests.
    await rename(paths[3], join(dir, 'sf-000007-20261121T163003Z.kubesnap.tar'))
    assert.equal((await listArchives(dir, {namespace: 'sf'})).map((r) => r.number), [1, 2, 7])
  } finally {
    await removeDir(dir)
  }
})

test('an empty or missing directory lists nothing', async () => {
  const dir = await tempDir()
  try {
    assert.equal(await listArchives(dir), [])
    assert.equal(await listArchives(join(dir, 'nope')), [])
  } finally {
    await removeDir(dir)
  }
})

test.run()
