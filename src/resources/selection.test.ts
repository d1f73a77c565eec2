import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {ResourceType} from '../cluster/discovery.js'
import {KubesnapError} from '../errors.js'
import {planTypes, type Selection} from './selection.js'
import {SKIPPED_TYPES} from './skip.js'

const type = (group: string, resource: string, kind: string, options: {namespaced?: boolean; verbs?: string[]; shortNames?: string[]} = {}): ResourceType => ({
  group, version: 'v1', apiVersion: group ? `${group}/v1` : 'v1', resource, kind,
  namespaced: options.namespaced ?? true, verbs: options.verbs ?? ['get', 'list', 'create'], shortNames: options.shortNames ?? [],
})

/** A 1.20-like discovery: what a snapshot sees, left-out types, aliases, and types it cannot list. */
const served = [
  type('', 'secrets', 'Secret'),
  type('', 'configmaps', 'ConfigMap', {shortNames: ['cm']}),
  type('', 'events', 'Event', {shortNames: ['ev']}),
  type('events.k8s.io', 'events', 'Event', {shortNames: ['ev']}),
  type('', 'endpoints', 'Endpoints', {shortNames: ['ep']}),
  type('discovery.k8s.io', 'endpointslices', 'EndpointSlice'),
  type('apps', 'controllerrevisions', 'ControllerRevision'),
  type('coordination.k8s.io', 'leases', 'Lease'),
  type('metrics.k8s.io', 'pods', 'PodMetrics'),
  type('apps', 'deployments', 'Deployment', {shortNames: ['deploy']}),
  type('extensions', 'deployments', 'Deployment', {shortNames: ['deploy']}),
  type('networking.k8s.io', 'ingresses', 'Ingress', {shortNames: ['ing']}),
  type('extensions', 'ingresses', 'Ingress', {shortNames: ['ing']}),
  type('', 'namespaces', 'Namespace', {namespaced: false, shortNames: ['ns']}),
  type('', 'bindings', 'Binding', {verbs: ['create']}),
]

/** A plan as lines: `list NAME` (with `*` when asked for by name) or `skip NAME: reason`. */
function plan(selection: Selection, types = served): string[] {
  const result = planTypes(types, selection)
  return [
    ...result.types.map((p) => `list ${p.type.group ? `${p.type.resource}.${p.type.group}` : p.type.resource}${p.askedByName ? ' *' : ''}`),
    ...result.skipped.map((s) => `skip ${s.resource}: ${s.reason}`),
  ]
}

test('planTypes: everything namespaced and listable, less what the cluster makes and types served twice', () => {
  assert.equal(plan({}), [
    'list secrets',
    'list configmaps',
    'list deployments.apps',
    'list ingresses.networking.k8s.io',
    "skip events: the cluster's log of what happened; controllers write new ones",
    "skip events.events.k8s.io: the cluster's log of what happened; controllers write new ones",
    'skip endpoints: made by the endpoints controller from Services and ready Pods',
    'skip endpointslices.discovery.k8s.io: made by the EndpointSlice controller from Services and ready Pods',
    'skip controllerrevisions.apps: revision history that StatefulSet and DaemonSet controllers keep for themselves',
    'skip leases.coordination.k8s.io: leader-election state renewed by running processes',
    'skip pods.metrics.k8s.io: live usage figures, not stored objects',
    'skip deployments.extensions: the same objects as deployments.apps, stored there',
    'skip ingresses.extensions: the same objects as ingresses.networking.k8s.io, stored there',
  ])
})

test('planTypes: every SKIPPED_TYPES row is left out with its reason', () => {
  const skipped = planTypes(served).skipped
  for (const row of SKIPPED_TYPES) {
    const name = row.group ? `${row.resource}.${row.group}` : row.resource
    assert.equal(skipped.filter((s) => s.resource === name).map((s) => s.reason), [row.reason], name)
  }
})

test('planTypes: the selection rules, one row each', () => {
  const rows: [string, Selection, ResourceType[], string[]][] = [
    ['an old group alone is listed (nothing else stores its objects)', {}, [type('extensions', 'ingresses', 'Ingress')], ['list ingresses.extensions']],
    ['--include-kinds lists only what it names, by kind, plural or short name', {includeKinds: ['Secret', 'cm']}, served, ['list secrets *', 'list configmaps *']],
    ['--include-kinds takes comma lists and repeats', {includeKinds: ['secrets, cm', 'deploy']}, served,
      ['list secrets *', 'list configmaps *', 'list deployments.apps *', 'list deployments.extensions *']],
    ['--include-kinds brings a left-out type back', {includeKinds: ['events']}, served, ['list events *', 'list events.events.k8s.io *']],
    ['resource.group names one group', {includeKinds: ['events.events.k8s.io']}, served, ['list events.events.k8s.io *']],
    ['--exclude-kinds leaves a type out, saying so', {excludeKinds: ['secrets']}, [type('', 'secrets', 'Secret'), type('', 'configmaps', 'ConfigMap')],
      ['list configmaps', 'skip secrets: excluded with --exclude-kinds']],
    ['--exclude-kinds wins over --include-kinds', {includeKinds: ['secrets', 'cm'], excludeKinds: ['cm']}, served,
      ['list secrets *', 'skip configmaps: excluded with --exclude-kinds']],
    ['cluster-scoped and unlistable types are never planned', {}, [type('', 'namespaces', 'Namespace', {namespaced: false}), type('', 'bindings', 'Binding', {verbs: ['create']})], []],
  ]
  for (const [name, selection, types, expected] of rows) assert.equal(plan(selection, types), expected, name)
})

test('planTypes: a name no listable namespaced type has is a usage error (exit 2)', () => {
  const rows: [Selection, RegExp][] = [
    [{includeKinds: ['secret', 'nope']}, /^--include-kinds: no namespaced resource type named "nope" can be listed on this server; run `kubesnap check` to see the types\.$/],
    [{excludeKinds: ['ns']}, /^--exclude-kinds: no namespaced resource type named "ns"/],
    [{includeKinds: ['bindings']}, /^--include-kinds: no namespaced resource type named "bindings"/],
  ]
  for (const [selection, message] of rows) {
    try {
      planTypes(served, selection)
      assert.unreachable(JSON.stringify(selection))
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.is((err as KubesnapError).exitCode, 2)
      assert.match((err as Error).message, message)
    }
  }
})

test.run()
