import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {orderForRestore, RESTORE_PRIORITIES} from './priorities.js'

const e = (group: string, resource: string, name = 'x') => ({group, resource, name})

test('restore order: accounts, secrets, config, claims, services, RBAC, custom resources, workloads', () => {
  const shuffled = [
    e('apps', 'statefulsets', 'mariadb'), e('sf.softwarefactory-project.io', 'softwarefactories'), e('', 'services'),
    e('batch', 'cronjobs'), e('', 'persistentvolumeclaims'), e('rbac.authorization.k8s.io', 'rolebindings'), e('', 'secrets', 'b'),
    e('', 'configmaps'), e('', 'serviceaccounts'), e('', 'secrets', 'a'), e('rbac.authorization.k8s.io', 'roles'),
    e('apps', 'deployments'), e('autoscaling', 'horizontalpodautoscalers'), e('policy', 'poddisruptionbudgets'),
  ]
  assert.equal(orderForRestore(shuffled).map((x) => `${x.resource}/${x.name}`), [
    'serviceaccounts/x', 'secrets/a', 'secrets/b', 'configmaps/x', 'persistentvolumeclaims/x', 'services/x',
    'rolebindings/x', 'roles/x', 'poddisruptionbudgets/x', 'softwarefactories/x',
    'deployments/x', 'statefulsets/mariadb', 'cronjobs/x', 'horizontalpodautoscalers/x',
  ])
})

test('types the table does not name go with custom resources, before workloads', () => {
  const ordered = orderForRestore([e('apps', 'deployments'), e('scheduling.k8s.io', 'whatever'), e('', 'secrets')])
  assert.equal(ordered.map((x) => x.resource), ['secrets', 'whatever', 'deployments'])
})

test('every row says why it is where it is', () => {
  for (const row of RESTORE_PRIORITIES) assert.ok(row.why.length > 20, JSON.stringify(row))
})

test.run()
