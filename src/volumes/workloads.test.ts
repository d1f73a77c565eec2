import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {mountsClaim, templateUses, workloadPath, type PodSpecLike, type WorkloadKind, type WorkloadObject} from './workloads.js'

const sorted = (set: Set<string>) => [...set].sort()

test('templateUses: every place a pod spec names a Secret, ConfigMap or claim', () => {
  const rows: [string, PodSpecLike, {secrets?: string[]; configMaps?: string[]; claims?: string[]}][] = [
    ['nothing', {}, {}],
    ['volumes', {volumes: [{name: 'a', secret: {secretName: 's'}}, {name: 'b', configMap: {name: 'c'}}, {name: 'd', persistentVolumeClaim: {claimName: 'data'}}]},
      {secrets: ['s'], configMaps: ['c'], claims: ['data']}],
    ['projected volumes', {volumes: [{name: 'p', projected: {sources: [{secret: {name: 's2'}}, {configMap: {name: 'c2'}}]}}]}, {secrets: ['s2'], configMaps: ['c2']}],
    ['env valueFrom', {containers: [{env: [{valueFrom: {secretKeyRef: {name: 's3'}}}, {valueFrom: {configMapKeyRef: {name: 'c3'}}}]}]}, {secrets: ['s3'], configMaps: ['c3']}],
    ['envFrom', {containers: [{envFrom: [{secretRef: {name: 's4'}}, {configMapRef: {name: 'c4'}}]}]}, {secrets: ['s4'], configMaps: ['c4']}],
    ['init containers too', {initContainers: [{envFrom: [{secretRef: {name: 's5'}}]}]}, {secrets: ['s5']}],
    ['a name used twice counts once', {volumes: [{name: 'a', secret: {secretName: 's'}}], containers: [{envFrom: [{secretRef: {name: 's'}}]}]}, {secrets: ['s']}],
  ]
  for (const [name, spec, expected] of rows) {
    const uses = templateUses(spec)
    assert.equal({secrets: sorted(uses.secrets), configMaps: sorted(uses.configMaps), claims: sorted(uses.claims)},
      {secrets: expected.secrets ?? [], configMaps: expected.configMaps ?? [], claims: expected.claims ?? []}, name)
  }
})

test('mountsClaim: claims named in the template, and a StatefulSet\'s <template>-<name>-<ordinal> claims', () => {
  const sts: WorkloadObject = {metadata: {name: 'db'}, spec: {volumeClaimTemplates: [{metadata: {name: 'data'}}], template: {spec: {volumes: [{name: 'x', persistentVolumeClaim: {claimName: 'shared'}}]}}}}
  const rows: [WorkloadKind, string, boolean][] = [
    ['StatefulSet', 'shared', true],
    ['StatefulSet', 'data-db-0', true],
    ['StatefulSet', 'data-db-12', true],
    ['StatefulSet', 'data-db-x', false],
    ['StatefulSet', 'data-db-', false],
    ['StatefulSet', 'data-dbx-0', false],
    ['StatefulSet', 'logs-db-0', false],
    // Only a StatefulSet's controller makes claims from templates.
    ['Deployment', 'data-db-0', false],
    ['Deployment', 'shared', true],
  ]
  for (const [kind, claim, expected] of rows) assert.is(mountsClaim(kind, sts, claim), expected, `${kind} ${claim}`)
})

test('workloadPath: a workload and its collection', () => {
  assert.is(workloadPath('shop', {kind: 'StatefulSet', name: 'db'}), '/apis/apps/v1/namespaces/shop/statefulsets/db')
  assert.is(workloadPath('shop', {kind: 'Deployment'}), '/apis/apps/v1/namespaces/shop/deployments')
})

test.run()
