import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {KubernetesObject} from '@kubernetes/client-node'
import type {ResourceType} from '../cluster/discovery.js'
import {objectSkipReason, typeSkipReason} from './skip.js'

const type = (group: string, resource: string, kind: string): ResourceType => ({
  group, version: 'v1', apiVersion: group ? `${group}/v1` : 'v1', resource, kind, namespaced: true, verbs: ['list'], shortNames: [],
})
const pods = type('', 'pods', 'Pod')
const controlled = (kind: string, name: string) => ({ownerReferences: [{apiVersion: 'apps/v1', kind, name, uid: 'u', controller: true}]})

test('objectSkipReason: one row per rule, and what is kept', () => {
  const rows: Array<[string, ResourceType, KubernetesObject, RegExp | undefined]> = [
    ['a Pod of a ReplicaSet', pods, {metadata: {name: 'web-1', ...controlled('ReplicaSet', 'web-5d')}}, /^Pod of ReplicaSet web-5d/],
    ['a bare Pod', pods, {metadata: {name: 'debug'}}, undefined],
    ["kubesnap's helper pod of a killed run", pods, {metadata: {name: 'kubesnap-data-1a2b3c', labels: {'app.kubernetes.io/managed-by': 'kubesnap', 'app.kubernetes.io/component': 'kubesnap-helper'}}}, /^kubesnap's own helper pod/],
    ['a Pod some other tool labels as a helper', pods, {metadata: {name: 'h', labels: {'app.kubernetes.io/component': 'kubesnap-helper'}}}, undefined],
    ['a ReplicaSet of a Deployment', type('apps', 'replicasets', 'ReplicaSet'), {metadata: {name: 'web-5d', ...controlled('Deployment', 'web')}}, /^ReplicaSet of Deployment web/],
    ['a Job of a CronJob', type('batch', 'jobs', 'Job'), {metadata: {name: 'b-1', ...controlled('CronJob', 'b')}}, /^Job of CronJob b/],
    ['a Job of nobody', type('batch', 'jobs', 'Job'), {metadata: {name: 'once'}}, undefined],
    ['kube-root-ca.crt', type('', 'configmaps', 'ConfigMap'), {metadata: {name: 'kube-root-ca.crt'}}, /root-ca-cert-publisher/],
    ['a ConfigMap', type('', 'configmaps', 'ConfigMap'), {metadata: {name: 'app'}}, undefined],
  ]
  for (const [what, t, obj, reason] of rows) {
    const got = objectSkipReason(t, obj)
    if (reason) assert.match(got ?? '', reason, what)
    else assert.is(got, undefined, what)
  }
})

test('typeSkipReason: what the cluster makes by itself', () => {
  assert.match(typeSkipReason({group: '', resource: 'events'}) ?? '', /log of what happened/)
  assert.is(typeSkipReason({group: '', resource: 'secrets'}), undefined)
})

test.run()
