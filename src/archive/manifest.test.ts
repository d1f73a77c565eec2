import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ArchiveError, type ArchiveProblem} from './errors.js'
import {snapshotStatus, validateManifest, type Manifest} from './manifest.js'

const valid: Manifest = {
  format: 'kubesnap-archive',
  formatVersion: 1,
  kubesnapVersion: '0.1.0',
  cluster: {server: 'https://k:6443', context: 'prod'},
  namespace: 'sf',
  number: 3,
  startedAt: '2026-11-21T16:30:00.000Z',
  finishedAt: '2026-11-21T16:31:00.000Z',
  encrypted: false,
  entries: [
    {type: 'object', kind: 'Secret', group: '', version: 'v1', resource: 'secrets', name: 'db', path: 'objects/core/v1/secrets/db.json', offset: 1024, size: 10, sha256: 'a'.repeat(64)},
    {
      type: 'volume',
      name: 'data',
      compression: 'gzip',
      parts: [{path: 'volumes/data/part-000000.tar.gz', offset: 2048, size: 5, sha256: 'b'.repeat(64)}],
      offset: 2048,
      size: 5,
      sha256: 'b'.repeat(64),
      rawSize: 0,
      rawSha256: 'c'.repeat(64),
    },
  ],
  skipped: [{resource: 'events', reason: 'made by the cluster'}],
  warnings: [],
}

/** A copy of the valid manifest with one change. */
function changed(edit: (m: Record<string, any>) => void): unknown {
  const m = structuredClone(valid) as Record<string, any>
  edit(m)
  return m
}

/** Each case's manifest is refused by validateManifest with its problem and a message matching its pattern. */
function assertRefused(cases: Array<[string, unknown, ArchiveProblem, RegExp]>): void {
  for (const [name, value, problem, message] of cases) {
    try {
      validateManifest(value, 'a.tar')
      assert.unreachable(name)
    } catch (err) {
      assert.instance(err, ArchiveError, name)
      assert.is((err as ArchiveError).problem, problem, name)
      assert.match((err as Error).message, message, name)
    }
  }
}

test('accepts a well-formed manifest as is', () => {
  assert.equal(validateManifest(structuredClone(valid), 'a.tar'), valid)
})

test('snapshotStatus: partial exactly when something meant to be stored is missing', () => {
  const cases: [string, Manifest['skipped'], 'complete' | 'partial'][] = [
    ['nothing skipped', [], 'complete'],
    ['left out on purpose', [{resource: 'events', reason: 'made by the cluster'}, {kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: 'cache', reason: 'data not copied: its volume strategy is none'}], 'complete'],
    ['a claim whose copy failed', [{kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: 'data', reason: 'data not copied: stream cut', failed: true}], 'partial'],
    ['a type that could not be listed', [{resource: 'secrets', reason: 'could not be listed: forbidden', failed: true}], 'partial'],
    ['an older archive: unlisted type without the flag', [{resource: 'secrets', reason: 'could not be listed: forbidden'}], 'partial'],
    ['failed: false', [{resource: 'x', reason: 'y', failed: false}], 'complete'],
  ]
  for (const [what, skipped, expected] of cases) assert.is(snapshotStatus({skipped}), expected, what)
})

test('refuses malformed manifests, naming the field', () => {
  const cases: [string, unknown, ArchiveProblem, RegExp][] = [
    ['not an object', [], 'corrupt manifest', /not a JSON object/],
    ['another format', changed((m) => (m.format = 'velero')), 'corrupt manifest', /format is "velero"/],
    ['version 2', changed((m) => (m.formatVersion = 2)), 'unsupported format version', /format version 2, but this kubesnap reads only version 1/],
    ['no namespace', changed((m) => delete m.namespace), 'corrupt manifest', /namespace is not a string/],
    ['negative number', changed((m) => (m.number = -1)), 'corrupt manifest', /number/],
    ['no cluster', changed((m) => delete m.cluster), 'corrupt manifest', /cluster/],
    ['warnings not strings', changed((m) => (m.warnings = [1])), 'corrupt manifest', /warnings/],
    ['skipped without reason', changed((m) => (m.skipped = [{resource: 'x'}])), 'corrupt manifest', /skipped\[0\]/],
    ['skipped failed not a boolean', changed((m) => (m.skipped = [{resource: 'x', reason: 'y', failed: 'yes'}])), 'corrupt manifest', /skipped\[0\]\.failed is not a boolean/],
    ['entry without sha256', changed((m) => delete m.entries[0].sha256), 'corrupt manifest', /entries\[0\] has no sha256/],
    ['entry of unknown type', changed((m) => (m.entries[0].type = 'blob')), 'corrupt manifest', /entries\[0\] has unknown type "blob"/],
    ['stream without parts', changed((m) => (m.entries[1].parts = [])), 'corrupt manifest', /entries\[1\] has no parts/],
    ['stream with a bad part', changed((m) => (m.entries[1].parts[0].offset = 'x')), 'corrupt manifest', /entries\[1\] has a malformed part/],
    ['unknown compression', changed((m) => (m.entries[1].compression = 'zstd')), 'corrupt manifest', /entries\[1\] has an unknown compression/],
  ]
  assertRefused(cases)
})

test('refuses entries whose path disagrees with their record, and anything recorded twice', () => {
  const secret = () => structuredClone(valid.entries[0]) as Record<string, any>
  const cases: [string, unknown, ArchiveProblem, RegExp][] = [
    ['an object filed under another name', changed((m) => (m.entries[0].name = 'harmless-new')), 'identity mismatch', /entries\[0\] \(secrets\/harmless-new\) is filed at objects\/core\/v1\/secrets\/db\.json, not objects\/core\/v1\/secrets\/harmless-new\.json/],
    ['an object filed under another version', changed((m) => (m.entries[0].version = 'v2')), 'identity mismatch', /entries\[0\]/],
    ['an object filed under another group', changed((m) => (m.entries[0].group = 'apps')), 'identity mismatch', /entries\[0\]/],
    ['an encrypted archive\'s member without .age', changed((m) => (m.encrypted = true)), 'identity mismatch', /not objects\/core\/v1\/secrets\/db\.json\.age/],
    ['a CRD filed elsewhere', changed((m) => Object.assign(m.entries[0], {type: 'crd'})), 'identity mismatch', /not crds\/db\.json/],
    ['a name that is not one path segment', changed((m) => (m.entries[0].name = '../db')), 'identity mismatch', /entries\[0\]/],
    ['a volume part under another claim', changed((m) => (m.entries[1].parts[0].path = 'volumes/other/part-000000.tar.gz')), 'identity mismatch', /not volumes\/data\/part-000000\.tar\.gz/],
    ['volume parts out of order', changed((m) => (m.entries[1].parts[0].path = 'volumes/data/part-000001.tar.gz')), 'identity mismatch', /entries\[1\]/],
    ['a stored volume named as compressed', changed((m) => (m.entries[1].compression = 'none')), 'identity mismatch', /not volumes\/data\/part-000000\.tar/],
    ['a volume that belongs to something other than a claim', changed((m) => Object.assign(m.entries[1], {kind: 'Secret', group: '', version: 'v1', resource: 'secrets'})), 'identity mismatch', /entries\[1\] .*PersistentVolumeClaim/],
    ['the same member twice', changed((m) => m.entries.push(secret())), 'duplicate member', /objects\/core\/v1\/secrets\/db\.json is in the manifest twice/],
    ['the same object at two versions', changed((m) => m.entries.push({...secret(), version: 'v1beta1', path: 'objects/core/v1beta1/secrets/db.json'})), 'duplicate member', /secrets\/db is in the manifest twice/],
    ['the same volume twice', changed((m) => m.entries.push(structuredClone(m.entries[1]))), 'duplicate member', /volumes\/data\/part-000000\.tar\.gz is in the manifest twice/],
  ]
  assertRefused(cases)
  // The same name in two types, and a dump named as a volume, are different things.
  const fine = changed((m) => {
    m.entries.push({...secret(), kind: 'ConfigMap', resource: 'configmaps', path: 'objects/core/v1/configmaps/db.json'})
    m.entries.push({...structuredClone(m.entries[1]), type: 'dump', parts: [{...m.entries[1].parts[0], path: 'dumps/data/part-000000.dump.gz'}]})
  })
  assert.is(validateManifest(fine, 'a.tar').entries.length, 4)
})

test.run()
