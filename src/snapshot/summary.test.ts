import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {snapshotStatus, type Manifest, type SkippedItem} from '../archive/manifest.js'
import {snapshotReport, summarizeSnapshot, unverifiedNamespaceError, type SnapshotFindings} from './summary.js'

const clean: SnapshotFindings = {skipped: [], unlisted: [], crdsReadable: true, volumes: {skipped: [], warnings: []}}
const eventsLeftOut: SkippedItem = {resource: 'events', reason: 'made by the cluster'}
const claimFailed: SkippedItem = {kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: 'db', reason: 'data not copied: stream cut', failed: true}

test('snapshotReport: types before volumes; an unlisted type is a failure (partial), a plan\'s skip is not', () => {
  const cases: Array<[string, SnapshotFindings, {skipped: SkippedItem[]; warnings: string[]}, 'complete' | 'partial']> = [
    ['nothing to say', clean, {skipped: [], warnings: []}, 'complete'],
    ['left out on purpose', {...clean, skipped: [eventsLeftOut]}, {skipped: [eventsLeftOut], warnings: []}, 'complete'],
    ['a type could not be listed', {...clean, unlisted: [{resource: 'secrets', reason: 'forbidden: no'}]},
      {skipped: [{resource: 'secrets', reason: 'could not be listed: forbidden: no', failed: true}], warnings: ['Could not list secrets (forbidden: no).']}, 'partial'],
    ['CRDs unreadable: a warning, still complete', {...clean, crdsReadable: false},
      {skipped: [], warnings: ['CustomResourceDefinitions are not readable with these credentials and are not in the archive; restore needs them installed already.']}, 'complete'],
    ['a claim not copied, after the types', {skipped: [eventsLeftOut], unlisted: [{resource: 'widgets.x', reason: '404: gone'}], crdsReadable: false, volumes: {skipped: [claimFailed], warnings: ['Could not copy db.']}},
      {
        skipped: [eventsLeftOut, {resource: 'widgets.x', reason: 'could not be listed: 404: gone', failed: true}, claimFailed],
        warnings: ['Could not list widgets.x (404: gone).', 'Could not copy db.', 'CustomResourceDefinitions are not readable with these credentials and are not in the archive; restore needs them installed already.'],
      }, 'partial'],
  ]
  for (const [name, findings, want, status] of cases) {
    const got = snapshotReport(findings)
    assert.equal(got, want, name)
    assert.is(snapshotStatus(got), status, name)
  }
})

test('summarizeSnapshot: counts entries by type, sums stored bytes, status from the skipped list', () => {
  const manifest = {
    namespace: 'shop', number: 7, startedAt: '2026-12-07T06:00:00.000Z', finishedAt: '2026-12-07T06:01:00.000Z',
    entries: [
      {type: 'object', size: 10}, {type: 'object', size: 20}, {type: 'crd', size: 5},
      {type: 'volume', size: 1000}, {type: 'dump', size: 300},
    ],
    skipped: [claimFailed], warnings: ['w'],
  } as unknown as Manifest
  assert.equal(summarizeSnapshot(manifest, {path: '/b/shop-000007.kubesnap.tar', apiRequests: 42, volumeSnapshots: 0}), {
    status: 'partial', path: '/b/shop-000007.kubesnap.tar', namespace: 'shop', number: 7,
    startedAt: '2026-12-07T06:00:00.000Z', finishedAt: '2026-12-07T06:01:00.000Z',
    objects: 2, volumes: 1, volumeSnapshots: 0, dumps: 1, bytes: 1335, apiRequests: 42, skipped: [claimFailed], warnings: ['w'],
  })
  assert.is(summarizeSnapshot({...manifest, skipped: []}, {path: 'p', apiRequests: 1, volumeSnapshots: 2}).status, 'complete')
})

test('unverifiedNamespaceError: only an empty run by an identity that cannot tell whether the namespace exists', () => {
  const cases: Array<[string, {exists: boolean | undefined; objects: number; narrowed: boolean}, RegExp | undefined]> = [
    ['the namespace exists and is empty', {exists: true, objects: 0, narrowed: false}, undefined],
    ['objects were stored', {exists: undefined, objects: 3, narrowed: false}, undefined],
    ['nothing stored, cannot tell', {exists: undefined, objects: 0, narrowed: false}, /^No object of namespace shop could be stored, .*check the name given with -n \(no archive was written\)\.$/],
    ['nothing stored under -l', {exists: undefined, objects: 0, narrowed: true}, /check the name given with -n and what -l\/--include-kinds select \(no archive/],
  ]
  for (const [name, run, want] of cases) {
    const got = unverifiedNamespaceError({namespace: 'shop', ...run})
    if (want) assert.match(got ?? '', want, name)
    else assert.is(got, undefined, name)
  }
})

test.run()
