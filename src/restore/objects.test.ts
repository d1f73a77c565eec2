import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {forgeArchive, objectJson, type ForgedObject} from '../archive/forge.test.js'
import type {ObjectEntry} from '../archive/manifest.js'
import {openArchive, type ArchiveReader} from '../archive/reader.js'
import type {ResourceType} from '../cluster/discovery.js'
import {qualifiedName} from '../cluster/discovery.js'
import {parseLabelSelector} from '../resources/label-selector.js'
import {parseResourceModifiers} from './modifiers.js'
import {prepareObject} from './objects.js'

const type = (group: string, version: string, resource: string, kind: string): ResourceType =>
  ({group, version, apiVersion: group ? `${group}/${version}` : version, resource, kind, namespaced: true, verbs: ['create'], shortNames: []})
const TYPES = [type('apps', 'v1', 'deployments', 'Deployment'), type('', 'v1', 'configmaps', 'ConfigMap'), type('', 'v1', 'secrets', 'Secret')]
const targets = new Map(TYPES.map((t) => [qualifiedName(t), t]))

const forged = (t: ResourceType, name: string, extra: Record<string, unknown> = {}): ForgedObject => ({
  entry: {kind: t.kind, group: t.group, version: t.version, resource: t.resource, name},
  content: objectJson(t.kind, t.apiVersion, name, 'shop', extra),
})

let dir: string
let reader: ArchiveReader
let entries: ObjectEntry[]

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-objects-'))
  const path = join(dir, 'shop-000001.kubesnap.tar')
  await forgeArchive(path, {namespace: 'shop', objects: [
    forged(TYPES[0], 'web', {metadata: {name: 'web', namespace: 'shop', uid: 'u', labels: {app: 'web'}}, spec: {template: {spec: {containers: [{name: 'web', image: 'busybox:1.36'}]}}}}),
    forged(TYPES[1], 'web-config', {data: {DATABASE_HOST: 'db'}}),
    forged(TYPES[2], 'db-credentials', {data: {password: 'cGFzcw=='}}),
  ]})
  reader = await openArchive(path)
  entries = reader.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')
})

test.after(() => rm(dir, {recursive: true, force: true}))

const options = (modifiers?: string, selector = '') => ({
  targets, sourceNamespace: 'shop', targetNamespace: 'shop-dr', selector: parseLabelSelector(selector),
  modifiers: modifiers === undefined ? undefined : parseResourceModifiers(modifiers, 'mods.yaml'),
})

test('prepareObject: cleaned, in the target namespace, then modified; rules match the archive\'s namespace', async () => {
  const prepared = await prepareObject(reader, entries[0], options(`version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps, namespaces: [shop]}
  patches: [{operation: replace, path: /spec/template/spec/containers/0/image, value: registry.dr/busybox:1.36}]
- conditions: {groupResource: deployments.apps, namespaces: [shop-dr]}
  patches: [{operation: add, path: /metadata/labels/never, value: x}]
`))
  assert.ok(prepared && 'object' in prepared)
  assert.equal(prepared.object, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop-dr', labels: {app: 'web'}},
    spec: {template: {spec: {containers: [{name: 'web', image: 'registry.dr/busybox:1.36'}]}}},
  })
  assert.equal(prepared.modifiedBy, [0])
  const plain = await prepareObject(reader, entries[0], options())
  assert.ok(plain && 'object' in plain)
  assert.is((plain.object as any).spec.template.spec.containers[0].image, 'busybox:1.36')
  assert.equal(plain.modifiedBy, [])
  assert.is(await prepareObject(reader, entries[0], options(undefined, 'app=db')), undefined, 'the selector leaves it out')
})

test.run()
