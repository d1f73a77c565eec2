import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {collectionPath, matchType, namespacedListable, qualifiedName, type ResourceType} from './discovery.js'

function type(group: string, version: string, resource: string, kind: string, extra: Partial<ResourceType> = {}): ResourceType {
  return {group, version, apiVersion: group ? `${group}/${version}` : version, resource, kind, namespaced: true, verbs: ['get', 'list', 'create'], shortNames: [], ...extra}
}

const types = [
  type('', 'v1', 'configmaps', 'ConfigMap', {shortNames: ['cm']}),
  type('', 'v1', 'secrets', 'Secret'),
  type('', 'v1', 'namespaces', 'Namespace', {namespaced: false}),
  type('', 'v1', 'bindings', 'Binding', {verbs: ['create']}),
  type('apps', 'v1', 'statefulsets', 'StatefulSet', {shortNames: ['sts']}),
  type('sf.softwarefactory-project.io', 'v1', 'softwarefactories', 'SoftwareFactory', {shortNames: ['sf']}),
  type('events.k8s.io', 'v1', 'events', 'Event', {shortNames: ['ev']}),
  type('', 'v1', 'events', 'Event', {shortNames: ['ev']}),
]

const matches: [string, string[]][] = [
  ['Secret', ['secrets']],
  ['secrets', ['secrets']],
  ['cm', ['configmaps']],
  ['STS', ['statefulsets.apps']],
  ['statefulsets.apps', ['statefulsets.apps']],
  ['StatefulSet.apps', ['statefulsets.apps']],
  ['softwarefactories.sf.softwarefactory-project.io', ['softwarefactories.sf.softwarefactory-project.io']],
  ['sf', ['softwarefactories.sf.softwarefactory-project.io']],
  ['events', ['events', 'events.events.k8s.io']],
  ['events.events.k8s.io', ['events.events.k8s.io']],
  ['deployments', []],
  ['apps', []],
]

for (const [name, expected] of matches) {
  test(`matchType finds ${JSON.stringify(name)}`, () => {
    assert.equal(matchType(types, name).map(qualifiedName).sort(), expected.sort())
  })
}

test('namespacedListable drops cluster-scoped and unlistable types', () => {
  assert.equal(namespacedListable(types).map(qualifiedName), ['configmaps', 'secrets', 'statefulsets.apps', 'softwarefactories.sf.softwarefactory-project.io', 'events.events.k8s.io', 'events'])
})

const paths: [ResourceType, string | undefined, string][] = [
  [types[0], 'shop', '/api/v1/namespaces/shop/configmaps'],
  [types[4], 'shop', '/apis/apps/v1/namespaces/shop/statefulsets'],
  [types[2], undefined, '/api/v1/namespaces'],
  [types[5], 'a b', '/apis/sf.softwarefactory-project.io/v1/namespaces/a%20b/softwarefactories'],
]
for (const [t, ns, expected] of paths) {
  test(`collectionPath of ${qualifiedName(t)} in ${ns ?? 'the cluster'}`, () => {
    assert.is(collectionPath(t, ns), expected)
  })
}

test.run()
