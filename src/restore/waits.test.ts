import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {StreamEntry} from '../archive/manifest.js'
import type {ObjectOutcome} from './objects.js'
import type {VolumeOutcome} from './volumes.js'
import {workloadsBeforeDumps, workloadsToWait, type TouchedWorkloads} from './waits.js'

const created = (resource: string, name: string, action: ObjectOutcome['action'] = 'create'): ObjectOutcome => ({kind: 'X', resource, name, action})
const volume = (claim: string, action: VolumeOutcome['action'], scaled?: string): VolumeOutcome =>
  ({claim, bytes: 1, action, target: 'helper', ...(scaled ? {scaled: {kind: 'StatefulSet', name: scaled, replicas: 1, scaledBack: true}} : {})})
const none: TouchedWorkloads = {restarted: [], volumes: [], outcomes: []}
const keys = (refs: Array<{kind: string; name: string}>) => refs.map((r) => `${r.kind}/${r.name}`)

test('workloadsToWait: restarted, scaled back after a restored copy, created; once each, in that order', () => {
  const rows: Array<[string, TouchedWorkloads, string[]]> = [
    ['nothing touched', none, []],
    ['a restart', {...none, restarted: [{kind: 'Deployment', name: 'web', reasons: ['Secret db']}]}, ['Deployment/web']],
    ['a scaled workload whose copy was restored', {...none, volumes: [volume('data-db-0', 'restored', 'db')]}, ['StatefulSet/db']],
    ['a scaled workload whose copy failed is not waited for', {...none, volumes: [volume('data-db-0', 'failed', 'db')]}, []],
    ['created StatefulSets and Deployments only', {...none, outcomes: [created('statefulsets.apps', 'db'), created('deployments.apps', 'web'), created('daemonsets.apps', 'agent'), created('secrets', 'db')]}, ['StatefulSet/db', 'Deployment/web']],
    ['skipped or updated workloads are not waited for', {...none, outcomes: [created('deployments.apps', 'web', 'skip'), created('deployments.apps', 'api', 'update')]}, []],
    ['one workload touched three ways is waited for once', {
      restarted: [{kind: 'StatefulSet', name: 'db', reasons: ['Secret db']}], volumes: [volume('data-db-0', 'restored', 'db'), volume('data-db-1', 'restored', 'db')], outcomes: [created('statefulsets.apps', 'db')],
    }, ['StatefulSet/db']],
  ]
  for (const [name, run, expected] of rows) assert.equal(keys(workloadsToWait(run)), expected, name)
})

const dump = (name: string, workload: string): StreamEntry =>
  ({type: 'dump', name, extra: {workload, load: 'mysql'}, parts: [], rawSize: 1, rawSha256: '', compression: 'gzip'} as unknown as StreamEntry)

test('workloadsBeforeDumps: the touched workloads a dump loads into, in the dumps\' order, once each', () => {
  const dumps = [dump('users', 'statefulset/db'), dump('orders', 'deployment/web'), dump('more-users', 'statefulset/db'), dump('broken', 'no such thing')]
  const rows: Array<[string, TouchedWorkloads, string[]]> = [
    ['nothing touched: no wait before the loads', none, []],
    ['created', {...none, outcomes: [created('deployments.apps', 'web'), created('statefulsets.apps', 'db')]}, ['StatefulSet/db', 'Deployment/web']],
    ['scaled for a copy, even one that failed', {...none, volumes: [volume('data-db-0', 'failed', 'db')]}, ['StatefulSet/db']],
    ['restarted', {...none, restarted: [{kind: 'Deployment', name: 'web', reasons: ['ConfigMap web']}]}, ['Deployment/web']],
    ['touched but loaded into by no dump', {...none, outcomes: [created('deployments.apps', 'api')]}, []],
  ]
  for (const [name, run, expected] of rows) assert.equal(keys(workloadsBeforeDumps(dumps, run)), expected, name)
})

test.run()
