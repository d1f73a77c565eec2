/**
 * The namespace-scoped Role kubesnap documents: the one place its rules live.
 * `kubesnap rbac` prints it, `kubesnap check` compares the identity against it,
 * and the test control plane binds its namespace-only user to it.
 */
import type {V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount} from '@kubernetes/client-node'

/** A Role rule and why kubesnap needs it. */
export interface RoleRow {
  rule: V1PolicyRule
  why: string
}

export const ROLE_NAME = 'kubesnap'

const READ = ['get', 'list', 'watch']
const WRITE = ['create', 'update', 'patch']

/**
 * The rules, one row per need. Snapshot needs the read rows and exec; restore
 * also needs the write rows. CRD groups are not known in advance, hence `*`.
 */
export const ROLE_ROWS: readonly RoleRow[] = [
  {rule: {apiGroups: ['*'], resources: ['*'], verbs: READ}, why: 'snapshot lists every namespaced type discovery shows, custom resources included'},
  {rule: {apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create']}, why: 'volume data and dumps stream over exec (WebSocket exec is checked as get, newer servers also check create)'},
  {rule: {apiGroups: [''], resources: ['pods/log'], verbs: ['get']}, why: 'helper pod failures are reported with their logs'},
  {rule: {apiGroups: [''], resources: ['pods'], verbs: ['create', 'delete']}, why: 'helper pods mount a claim when no running pod does'},
  {rule: {apiGroups: ['*'], resources: ['*'], verbs: WRITE}, why: 'restore creates or server-side-applies every kind it finds in the archive'},
  {rule: {apiGroups: ['apps'], resources: ['statefulsets/scale', 'deployments/scale'], verbs: ['get', 'update', 'patch']}, why: 'restore scales writers to 0 before reloading their volumes, then back'},
  {rule: {apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshots'], verbs: ['create', 'delete']}, why: 'the csi volume strategy takes VolumeSnapshots'},
  {rule: {apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['escalate', 'bind']}, why: "restore re-creates the namespace's Roles, which may grant rights kubesnap itself lacks"},
]

/** The Role object for a namespace. */
export function kubesnapRole(namespace: string): V1Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: {name: ROLE_NAME, namespace, labels: {'app.kubernetes.io/managed-by': 'kubesnap'}},
    rules: ROLE_ROWS.map((row) => ({...row.rule})),
  }
}

/** A RoleBinding of the Role to a user or to a ServiceAccount of the namespace. */
export function kubesnapRoleBinding(namespace: string, subject: {user: string} | {serviceAccount: string}): V1RoleBinding {
  const subjects = 'user' in subject
    ? [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: subject.user}]
    : [{kind: 'ServiceAccount', name: subject.serviceAccount, namespace}]
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {name: ROLE_NAME, namespace, labels: {'app.kubernetes.io/managed-by': 'kubesnap'}},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ROLE_NAME},
    subjects,
  }
}

/** The ServiceAccount a cron job or runbook runs kubesnap as. */
export function kubesnapServiceAccount(namespace: string): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {name: ROLE_NAME, namespace, labels: {'app.kubernetes.io/managed-by': 'kubesnap'}},
  }
}
