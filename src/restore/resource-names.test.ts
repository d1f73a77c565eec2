import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ResourceType} from '../cluster/discovery.js'
import {selectResources} from './resource-names.js'

const type = (group: string, version: string, resource: string, kind: string, shortNames: string[] = []): ResourceType =>
  ({group, version, apiVersion: group ? `${group}/${version}` : version, resource, kind, namespaced: true, verbs: ['list'], shortNames})
const SERVED = [
  type('', 'v1', 'secrets', 'Secret'),
  type('', 'v1', 'configmaps', 'ConfigMap', ['cm']),
  type('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', ['pvc']),
  type('apps', 'v1', 'statefulsets', 'StatefulSet', ['sts']),
]
const entry = (group: string, resource: string, kind: string, name: string): ObjectEntry =>
  ({type: 'object', kind, group, version: 'v1', resource, name, path: `objects/${group || 'core'}/v1/${resource}/${name}.json`, offset: 0, size: 1, sha256: ''}) as ObjectEntry
const ENTRIES = [
  entry('', 'secrets', 'Secret', 'db'),
  entry('', 'secrets', 'Secret', 'admin'),
  entry('', 'configmaps', 'ConfigMap', 'db'),
  entry('', 'persistentvolumeclaims', 'PersistentVolumeClaim', 'data-db-0'),
  entry('apps', 'statefulsets', 'StatefulSet', 'db'),
  // A custom type the target does not serve (its CRD is not installed yet).
  entry('sf.example.io', 'softwarefactories', 'SoftwareFactory', 'sf'),
]
const names = (entries: ObjectEntry[]) => entries.map((e) => `${e.kind}/${e.name}`)

test('selectResources: every spelling kubectl accepts picks exactly the named objects', () => {
  const cases: Array<[string[], string[]]> = [
    [[], names(ENTRIES)],
    [['secret/db'], ['Secret/db']],
    [['Secret/db'], ['Secret/db']],
    [['secrets/db'], ['Secret/db']],
    [['cm/db'], ['ConfigMap/db']],
    [['pvc/data-db-0'], ['PersistentVolumeClaim/data-db-0']],
    [['statefulsets.apps/db'], ['StatefulSet/db']],
    [['sts/db', 'secret/admin'], ['Secret/admin', 'StatefulSet/db']],
    [['secret/db,secret/admin'], ['Secret/db', 'Secret/admin']],
    [['softwarefactory/sf'], ['SoftwareFactory/sf']],
    [['softwarefactories.sf.example.io/sf'], ['SoftwareFactory/sf']],
    [['secret/db', 'secret/db'], ['Secret/db']],
  ]
  for (const [specs, expected] of cases) assert.equal(names(selectResources(ENTRIES, specs, SERVED)), expected, specs.join(' '))
})

test('selectResources: malformed, unknown kinds and names the archive lacks are usage errors naming them', () => {
  const cases: Array<[string, RegExp]> = [
    ['db', /^--resource "db" is not KIND\/NAME; write e\.g\. --resource secret\/db/],
    ['secret/', /is not KIND\/NAME/],
    ['/db', /is not KIND\/NAME/],
    ['secret/a/b', /is not KIND\/NAME/],
    ['widget/db', /^--resource widget\/db: no resource type named "widget" is in the archive or served by this cluster/],
    ['secret/gone', /^--resource secret\/gone: the archive holds no secrets named gone \(it has db, admin\); check the name with kubesnap inspect\.$/],
    ['deploy/web', /no resource type named "deploy"/],
  ]
  for (const [spec, message] of cases) {
    try {
      selectResources(ENTRIES, [spec], SERVED)
      assert.unreachable(spec)
    } catch (err: any) {
      assert.match(err.message, message, spec)
      assert.is(err.exitCode, 2, spec)
    }
  }
})

test.run()
