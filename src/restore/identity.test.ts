import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {ObjectEntry} from '../archive/manifest.js'
import {identityProblem} from './identity.js'

const entry = (e: Partial<ObjectEntry> = {}): ObjectEntry => ({
  type: 'object', kind: 'Deployment', group: 'apps', version: 'v1', resource: 'deployments', name: 'web',
  path: 'objects/apps/v1/deployments/web.json', offset: 0, size: 0, sha256: '', ...e,
})
const object = (o: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) =>
  ({apiVersion: 'apps/v1', kind: 'Deployment', ...o, metadata: {name: 'web', namespace: 'shop', ...metadata}})

test('identityProblem: the stored object must be the one its record names', () => {
  const cases: [string, unknown, ObjectEntry, RegExp | undefined][] = [
    ['the same object', object(), entry(), undefined],
    ['a core object', {apiVersion: 'v1', kind: 'Secret', metadata: {name: 'db', namespace: 'shop'}}, entry({kind: 'Secret', group: '', resource: 'secrets', name: 'db'}), undefined],
    ['another name', object({}, {name: 'jenkins-admin'}), entry(), /^the archived object is Deployment jenkins-admin$/],
    ['another kind', object({kind: 'StatefulSet'}), entry(), /is StatefulSet web/],
    ['another group', object({apiVersion: 'extensions/v1beta1'}), entry(), /is extensions\/v1beta1, not apps\/v1/],
    ['another version', object({apiVersion: 'apps/v1beta2'}), entry(), /not apps\/v1/],
    ['another namespace', object({}, {namespace: 'kube-system'}), entry(), /in namespace kube-system, not shop/],
    ['no namespace (cluster-scoped)', object({}, {namespace: undefined}), entry(), /has no namespace/],
    ['not an object', [object()], entry(), /not a Kubernetes object/],
    ['null', null, entry(), /not a Kubernetes object/],
  ]
  for (const [name, stored, e, expected] of cases) {
    const problem = identityProblem(stored, e, 'shop')
    if (expected === undefined) assert.is(problem, undefined, name)
    else assert.match(problem ?? '', expected, name)
  }
})

test.run()
