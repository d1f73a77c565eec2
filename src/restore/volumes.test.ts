import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {Manifest, StreamEntry} from '../archive/manifest.js'
import {claimsWithoutData} from './volumes.js'

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

test.run()
