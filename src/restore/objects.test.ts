import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {KubernetesObject} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {forgeArchive, objectJson, type ForgedObject} from '../archive/forge.test.js'
import type {ObjectEntry} from '../archive/manifest.js'
import {openArchive, type ArchiveReader} from '../archive/reader.js'
import type {ResourceType} from '../cluster/discovery.js'
import {qualifiedName} from '../cluster/discovery.js'
import {parseLabelSelector} from '../resources/label-selector.js'
import {parseResourceModifiers} from './modifiers.js'
import {checkObjects} from './object-checks.js'
import {prepareObject} from './objects.js'
import {preflightReads} from './preflight.js'

const type = (group: string, version: string, resource: string, kind: string): ResourceType =>
  ({group, version, apiVersion: group ? `${group}/${version}` : version, resource, kind, namespaced: true, verbs: ['create'], shortNames: []})
const TYPES = [type('apps', 'v1', 'deployments', 'Deployment'), type('', 'v1', 'configmaps', 'ConfigMap'), type('', 'v1', 'secrets', 'Secret'), type('', 'v1', 'services', 'Service')]
const targets = new Map(TYPES.map((t) => [qualifiedName(t), t]))

const forged = (t: ResourceType, name: string, extra: Record<string, unknown> = {}): ForgedObject => ({
  entry: {kind: t.kind, group: t.group, version: t.version, resource: t.resource, name},
  content: objectJson(t.kind, t.apiVersion, name, 'shop', extra),
})

let dir: string
let reader: ArchiveReader
let entries: ObjectEntry[]
let altered: ArchiveReader

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-objects-'))
  const objects = [
    forged(TYPES[0], 'web', {metadata: {name: 'web', namespace: 'shop', uid: 'u', labels: {app: 'web'}}, spec: {template: {spec: {containers: [{name: 'web', image: 'busybox:1.36'}]}}}}),
    forged(TYPES[1], 'web-config', {data: {DATABASE_HOST: 'db'}}),
    forged(TYPES[2], 'db-credentials', {data: {password: 'cGFzcw=='}}),
  ]
  await forgeArchive(join(dir, 'shop-000001.kubesnap.tar'), {namespace: 'shop', objects})
  reader = await openArchive(join(dir, 'shop-000001.kubesnap.tar'))
  entries = reader.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')
  // An entry secrets/harmless holding Secret jenkins-admin, and a Service after it.
  await forgeArchive(join(dir, 'shop-000002.kubesnap.tar'), {namespace: 'shop', number: 2, objects: [
    ...objects,
    {entry: {kind: 'Secret', group: '', version: 'v1', resource: 'secrets', name: 'harmless'}, content: objectJson('Secret', 'v1', 'jenkins-admin', 'shop')},
    forged(TYPES[3], 'gateway', {metadata: {name: 'gateway', namespace: 'shop', uid: 'u'}, spec: {clusterIP: '10.0.0.7', ports: [{port: 80, nodePort: 30080}]}}),
  ]})
  altered = await openArchive(join(dir, 'shop-000002.kubesnap.tar'))
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

/** checkObjects with the preflight's choice of objects; returns what onObject saw too. */
async function check(on: ArchiveReader, opts: ReturnType<typeof options>) {
  const seen: Array<{entry: string; object: KubernetesObject}> = []
  const objectEntries = on.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')
  const checked = await checkObjects(on, {...opts, entries: objectEntries, wants: preflightReads, onObject: (entry, object) => seen.push({entry: entry.name, object})})
  return {...checked, seen}
}

test('checkObjects: every object a rule cannot be applied to or would rename, and every rule that changes nothing', async () => {
  const checked = await checkObjects(reader, {...options(`version: v1
resourceModifierRules:
- conditions: {groupResource: secrets}
  patches: [{operation: replace, path: /metadata/name, value: jenkins-admin}]
- conditions: {groupResource: configmaps}
  patches: [{operation: remove, path: /data/NO_SUCH_KEY}]
- conditions: {groupResource: deployments.apps}
  mergePatches: [{patchData: "metadata: {namespace: elsewhere}"}]
- conditions: {groupResource: deployments.apps}
  patches: [{operation: test, path: /spec/replicas, value: "3"}, {operation: add, path: /spec/paused, value: "true"}]
- conditions: {groupResource: services}
  patches: [{operation: add, path: /metadata/labels/x, value: y}]
`), entries, wants: preflightReads, onObject: () => {}})
  assert.equal(checked.problems, [
    'Deployment web: resourceModifierRules[2] changes which object this is (the patched object is in namespace elsewhere, not shop-dr); a modifier may change an object\'s content, not its kind, apiVersion, name or namespace (--to-namespace moves the whole namespace) (mods.yaml).',
    'ConfigMap web-config: resourceModifierRules[1] patches[0] (remove /data/NO_SUCH_KEY) cannot be applied: the path does not exist in this object; add a test operation or a matches condition so the rule only applies where the path exists (mods.yaml).',
    'Secret db-credentials: resourceModifierRules[0] changes which object this is (the patched object is Secret jenkins-admin); a modifier may change an object\'s content, not its kind, apiVersion, name or namespace (--to-namespace moves the whole namespace) (mods.yaml).',
  ])
  assert.equal(checked.warnings, ['resourceModifierRules[3], resourceModifierRules[4] in mods.yaml change none of the objects to restore; check the conditions (groupResource is spelt resource.group as in deployments.apps, namespaces are the archive\'s: shop).'])
  assert.equal(checked.altered, [])
})

test('checkObjects: without modifiers, only the preflight\'s objects are prepared, cleaned and in entry order', async () => {
  const checked = await check(reader, options())
  assert.equal({altered: checked.altered, problems: checked.problems, warnings: checked.warnings}, {altered: [], problems: [], warnings: []})
  assert.equal(checked.seen, [{entry: 'web', object: {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop-dr', labels: {app: 'web'}},
    spec: {template: {spec: {containers: [{name: 'web', image: 'busybox:1.36'}]}}},
  }}], 'the Deployment only: ConfigMaps and Secrets are read for their identity, never prepared')
  assert.equal((await check(reader, options(undefined, 'app=db'))).seen, [], 'the selector leaves the Deployment out')
})

test('checkObjects: an entry whose object is another is the archive\'s problem, whatever the selector; the others are still looked at', async () => {
  for (const selector of ['', 'app=none']) {
    const checked = await check(altered, options(undefined, selector))
    assert.equal(checked.altered, ['Secret harmless: the archived object is Secret jenkins-admin (member objects/core/v1/secrets/harmless.json); the archive was altered, use another one.'])
    assert.equal(checked.seen.map((s) => s.entry), selector ? [] : ['web', 'gateway'])
  }
  const gateway = (await check(altered, options())).seen[1].object as {spec: {clusterIP?: string; ports: unknown[]}}
  assert.is(gateway.spec.clusterIP, undefined, 'the Service as restore will create it: its allocated IP cleaned')
})

test('checkObjects: one at a time or many, the same findings in the same order', async () => {
  const mods = `version: v1
resourceModifierRules:
- conditions: {groupResource: secrets}
  patches: [{operation: replace, path: /metadata/name, value: other}]
`
  const one = await checkObjects(altered, {...options(mods), entries: altered.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object'), wants: preflightReads, onObject: () => {}, concurrency: 1})
  const many = await checkObjects(altered, {...options(mods), entries: altered.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object'), wants: preflightReads, onObject: () => {}, concurrency: 16})
  assert.equal(many, one)
  assert.is(one.altered.length, 1)
  assert.is(one.problems.length, 1, 'db-credentials renamed; harmless is reported as altered, not twice')
})

test.run()
