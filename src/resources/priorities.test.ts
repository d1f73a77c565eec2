import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {orderForRestore, RESTORE_PRIORITIES, restoreRank} from './priorities.js'

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

test('restoreRank: one row per table row, each type where its reason puts it', () => {
  // [row, group, resources of the row, what must already be there]
  const rows: [number, string, string[], string][] = [
    [0, '', ['serviceaccounts'], 'nothing: accounts come first'],
    [1, '', ['secrets'], 'ServiceAccounts (token Secrets name theirs)'],
    [2, '', ['configmaps'], 'ServiceAccounts'],
    [3, '', ['limitranges', 'resourcequotas'], 'config, before any pod is admitted'],
    [4, '', ['persistentvolumeclaims'], 'quotas that count claims'],
    [5, '', ['services'], 'claims'],
    [6, 'rbac.authorization.k8s.io', ['roles', 'rolebindings'], 'ServiceAccounts they bind'],
    [7, 'networking.k8s.io', ['networkpolicies', 'ingresses'], 'Services they route to'],
    [8, 'policy', ['poddisruptionbudgets'], 'everything but workloads'],
    [9, 'sf.softwarefactory-project.io', ['softwarefactories'], 'the built-in objects custom resources refer to'],
    [10, 'apps', ['statefulsets', 'deployments', 'daemonsets', 'replicasets'], 'everything a pod template refers to'],
    [11, '', ['replicationcontrollers', 'pods'], 'everything a pod refers to'],
    [12, 'batch', ['cronjobs', 'jobs'], 'everything else: jobs run at once'],
    [13, 'autoscaling', ['horizontalpodautoscalers'], 'the workloads they target'],
  ]
  assert.is(rows.length, RESTORE_PRIORITIES.length, 'one row here per table row')
  for (const [rank, group, resources, after] of rows) {
    const row = RESTORE_PRIORITIES[rank]
    // The custom-resource row matches any group that is not built in.
    if (row.group !== '*custom*') assert.equal([row.group, row.resources], [group, resources], `row ${rank}`)
    for (const resource of resources) assert.is(restoreRank(group, resource), rank, `${resource}.${group} after ${after}`)
  }
})

test('every row says why it is where it is', () => {
  for (const row of RESTORE_PRIORITIES) assert.ok(row.why.length > 20, JSON.stringify(row))
})

test.run()
