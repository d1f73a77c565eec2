import {copyFile} from 'node:fs/promises'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {listArchives} from './list.js'
import {removeDir, writeSample} from './sample.test.js'
import {selectArchive} from './select.js'

test('--latest and --number go by the manifest: an archive named as another namespace or number is refused, and listed as such', async () => {
  // A snapshot of sf, copied in under jenkins's name with a higher number (issue 16's case).
  const s = await writeSample()
  try {
    const forged = 'jenkins-000099-20261121T163000Z.kubesnap.tar'
    await copyFile(s.path, join(s.dir, forged))
    await copyFile(s.path, join(s.dir, 'sf-000007-20261121T163000Z.kubesnap.tar'))
    const selections = [
      {latest: true, namespace: 'jenkins'},
      {number: 99, namespace: 'jenkins'},
      {number: 7, namespace: 'sf'},
    ]
    for (const selection of selections) {
      try {
        await selectArchive(undefined, {output: s.dir, ...selection})
        assert.unreachable(JSON.stringify(selection))
      } catch (err) {
        assert.instance(err, KubesnapError, JSON.stringify(selection))
        assert.match((err as Error).message, /is named as snapshot (99 of jenkins|7 of sf), but its manifest says snapshot 1 of sf; .* rename it to sf-000001-\d{8}T\d{6}Z\.kubesnap\.tar or move it out of /, JSON.stringify(selection))
      }
    }
    assert.is(await selectArchive(undefined, {output: s.dir, number: 1, namespace: 'sf'}), s.path, 'the archive whose name is true is still chosen')
    const rows = await listArchives(s.dir)
    assert.equal(rows.map((r) => [r.file, r.ok ? 'ok' : r.problem]), [
      [forged, 'name mismatch'],
      [s.path.slice(s.dir.length + 1), 'ok'],
      ['sf-000007-20261121T163000Z.kubesnap.tar', 'name mismatch'],
    ])
  } finally {
    await removeDir(s.dir)
  }
})

test.run()
