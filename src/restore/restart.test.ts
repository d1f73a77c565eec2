import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {PodSpecLike, WorkloadKind, WorkloadObject} from '../volumes/workloads.js'
import {parseDuration, planRestarts, restoredChanges, rolloutStatus, type RestoredChanges} from './restart.js'

const sorted = (set: Set<string>) => [...set].sort()

const live = (kind: WorkloadKind, name: string, spec: PodSpecLike, replicas?: number) =>
  ({kind, name, object: {metadata: {name}, spec: {replicas, template: {spec}}} as WorkloadObject})
const changes = (c: Partial<Record<keyof RestoredChanges, string[]>>): RestoredChanges =>
  ({secrets: new Set(c.secrets), configMaps: new Set(c.configMaps), claims: new Set(c.claims)})

test('planRestarts: live workloads that read what the restore changed, with the reasons, minus those scaled and those at 0', () => {
  const web = live('Deployment', 'web', {containers: [{envFrom: [{secretRef: {name: 'db-password'}}, {configMapRef: {name: 'web-config'}}]}]})
  const db = live('StatefulSet', 'db', {volumes: [{name: 'd', persistentVolumeClaim: {claimName: 'db-data'}}, {name: 's', secret: {secretName: 'db-password'}}]})
  const idle = live('Deployment', 'idle', {containers: [{envFrom: [{secretRef: {name: 'db-password'}}]}]}, 0)
  const other = live('Deployment', 'other', {containers: [{envFrom: [{configMapRef: {name: 'other'}}]}]})
  const rows: [string, RestoredChanges, string[], string[]][] = [
    ['nothing changed', changes({}), [], []],
    ['a Secret two workloads read', changes({secrets: ['db-password']}), [], ['Deployment/web: Secret db-password', 'StatefulSet/db: Secret db-password']],
    ['a ConfigMap', changes({configMaps: ['web-config']}), [], ['Deployment/web: ConfigMap web-config']],
    ['a claim written live', changes({claims: ['db-data']}), [], ['StatefulSet/db: claim db-data']],
    ['every reason, in order', changes({secrets: ['db-password'], configMaps: ['web-config'], claims: ['db-data']}), [],
      ['Deployment/web: Secret db-password, ConfigMap web-config', 'StatefulSet/db: Secret db-password, claim db-data']],
    ['a workload scaled down and up is restarted already', changes({secrets: ['db-password']}), ['StatefulSet/db'], ['Deployment/web: Secret db-password']],
    ['a Secret of the same name on another kind of reference', changes({configMaps: ['db-password']}), [], []],
  ]
  for (const [name, restored, scaled, expected] of rows) {
    const plans = planRestarts([web, db, idle, other], restored, new Set(scaled))
    assert.equal(plans.map((p) => `${p.kind}/${p.name}: ${p.reasons.join(', ')}`), expected, name)
  }
})

test('restoredChanges: creates and real updates of Secrets and ConfigMaps, claims written live, workloads scaled', () => {
  const {changes: got, scaled} = restoredChanges([
    {resource: 'secrets', name: 'created', action: 'create'},
    {resource: 'secrets', name: 'updated', action: 'update', diff: ['data.password: changed (value hidden)']},
    {resource: 'secrets', name: 'same', action: 'update', diff: []},
    {resource: 'secrets', name: 'no-diff', action: 'update'},
    {resource: 'secrets', name: 'skipped', action: 'skip'},
    {resource: 'secrets', name: 'failed', action: 'failed'},
    {resource: 'configmaps', name: 'cm', action: 'create'},
    {resource: 'configmaps.example.com', name: 'lookalike', action: 'create'},
    {resource: 'services', name: 'svc', action: 'create'},
  ], [
    {claim: 'live-data', action: 'restored', target: 'live db-0/db'},
    {claim: 'helper-data', action: 'restored', target: 'helper', scaled: {kind: 'StatefulSet', name: 'db'}},
    {claim: 'failed-live', action: 'failed', target: 'live web-1/web', scaled: {kind: 'Deployment', name: 'web'}},
    {claim: 'planned-live', action: 'planned', target: 'live x-0/x'},
  ])
  assert.equal(sorted(got.secrets), ['created', 'updated'])
  assert.equal(sorted(got.configMaps), ['cm'])
  assert.equal(sorted(got.claims), ['live-data'])
  // A workload scaled down and back is restarted whatever became of the copy.
  assert.equal(sorted(scaled), ['Deployment/web', 'StatefulSet/db'])
})

test('rolloutStatus: kubectl rollout status\'s rules, one row each', () => {
  const deploy = (status: WorkloadObject['status'], replicas = 2, generation = 3): WorkloadObject => ({metadata: {generation}, spec: {replicas}, status: {observedGeneration: 3, ...status}})
  const sts = (status: WorkloadObject['status'], updateStrategy?: NonNullable<WorkloadObject['spec']>['updateStrategy'], replicas = 2): WorkloadObject =>
    ({metadata: {generation: 1}, spec: {replicas, updateStrategy}, status: {observedGeneration: 1, ...status}})
  const rows: [string, WorkloadKind, WorkloadObject, {done: boolean; waiting?: string}][] = [
    ['spec not seen yet', 'Deployment', deploy({observedGeneration: 2}), {done: false, waiting: 'the controller has not seen the latest spec yet'}],
    ['replicas not updated', 'Deployment', deploy({updatedReplicas: 1, replicas: 2}), {done: false, waiting: '1 of 2 replicas updated'}],
    ['old replicas terminating', 'Deployment', deploy({updatedReplicas: 2, replicas: 3}), {done: false, waiting: '1 old replicas pending termination'}],
    ['not available', 'Deployment', deploy({updatedReplicas: 2, replicas: 2, availableReplicas: 1, readyReplicas: 2}), {done: false, waiting: '1 of 2 replicas available'}],
    ['deployment done', 'Deployment', deploy({updatedReplicas: 2, replicas: 2, availableReplicas: 2, readyReplicas: 2}), {done: true}],
    ['replicas unset means 1', 'Deployment', {metadata: {generation: 1}, spec: {}, status: {observedGeneration: 1, updatedReplicas: 1, replicas: 1, availableReplicas: 1, readyReplicas: 1}}, {done: true}],
    ['pods not ready', 'StatefulSet', sts({readyReplicas: 1}), {done: false, waiting: '1 of 2 pods ready'}],
    ['pods not updated', 'StatefulSet', sts({readyReplicas: 2, updatedReplicas: 1}), {done: false, waiting: '1 of 2 pods updated'}],
    ['revision rolling out', 'StatefulSet', sts({readyReplicas: 2, updatedReplicas: 2, currentRevision: 'a', updateRevision: 'b'}), {done: false, waiting: 'revision b rolling out'}],
    ['statefulset done', 'StatefulSet', sts({readyReplicas: 2, updatedReplicas: 2, currentRevision: 'b', updateRevision: 'b'}), {done: true}],
    ['a partition leaves pods on the old revision', 'StatefulSet', sts({readyReplicas: 2, updatedReplicas: 1, currentRevision: 'a', updateRevision: 'b'}, {type: 'RollingUpdate', rollingUpdate: {partition: 1}}), {done: true}],
    ['OnDelete waits only for ready pods', 'StatefulSet', sts({readyReplicas: 2, updatedReplicas: 0}, {type: 'OnDelete'}), {done: true}],
    ['scaled to 0', 'StatefulSet', sts({}, undefined, 0), {done: true}],
  ]
  for (const [name, kind, workload, expected] of rows) assert.equal(rolloutStatus(kind, workload), expected, name)
})

test('parseDuration: kubectl-style durations and plain seconds', () => {
  const rows: [string, number | undefined][] = [
    ['90s', 90_000], ['5m', 300_000], ['1h', 3_600_000], ['1h30m', 5_400_000], ['2m5s', 125_000], ['30', 30_000], ['0', 0],
    ['', undefined], ['5d', undefined], ['1.5m', undefined], ['m', undefined], ['5s1m', undefined], ['-5s', undefined], [' 5s', undefined],
  ]
  for (const [text, ms] of rows) assert.is(parseDuration(text), ms, JSON.stringify(text))
})

test.run()
