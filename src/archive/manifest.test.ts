import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ArchiveError, type ArchiveProblem} from './errors.js'
import {validateManifest, type Manifest} from './manifest.js'

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

test('accepts a well-formed manifest as is', () => {
  assert.equal(validateManifest(structuredClone(valid), 'a.tar'), valid)
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
    ['entry without sha256', changed((m) => delete m.entries[0].sha256), 'corrupt manifest', /entries\[0\] has no sha256/],
    ['entry of unknown type', changed((m) => (m.entries[0].type = 'blob')), 'corrupt manifest', /entries\[0\] has unknown type "blob"/],
    ['stream without parts', changed((m) => (m.entries[1].parts = [])), 'corrupt manifest', /entries\[1\] has no parts/],
    ['stream with a bad part', changed((m) => (m.entries[1].parts[0].offset = 'x')), 'corrupt manifest', /entries\[1\] has a malformed part/],
    ['unknown compression', changed((m) => (m.entries[1].compression = 'zstd')), 'corrupt manifest', /entries\[1\] has an unknown compression/],
  ]
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
})

test.run()
