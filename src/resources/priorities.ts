/**
 * The order restore creates objects in: a data table with the reason each row
 * comes where it does. Types not in the table go between RBAC and workloads.
 */
import type {ObjectEntry} from '../archive/manifest.js'

export interface PriorityRow {
  group: string
  resources: string[]
  why: string
}

/** Earlier rows first. Custom resources (any group not built in) take the CUSTOM slot. */
export const RESTORE_PRIORITIES: readonly PriorityRow[] = [
  {group: '', resources: ['serviceaccounts'], why: 'pods and token Secrets refer to their account; the token controller fills a token Secret only once its account exists'},
  {group: '', resources: ['secrets'], why: 'workloads mount and read them at start; a pod whose Secret is missing does not start'},
  {group: '', resources: ['configmaps'], why: 'same as Secrets: read when a pod starts'},
  {group: '', resources: ['limitranges', 'resourcequotas'], why: 'admission applies them only to pods created after them'},
  {group: '', resources: ['persistentvolumeclaims'], why: 'pods wait for their claims, and volume data is reloaded into a claim before its workload starts'},
  {group: '', resources: ['services'], why: 'a StatefulSet names its headless Service, and clients resolve Service names when they start'},
  {group: 'rbac.authorization.k8s.io', resources: ['roles', 'rolebindings'], why: 'service accounts need their rights from their first API call'},
  {group: 'networking.k8s.io', resources: ['networkpolicies', 'ingresses'], why: 'traffic rules in place before the pods they protect or expose run'},
  {group: 'policy', resources: ['poddisruptionbudgets'], why: 'disruption limits in place before the pods they guard'},
  {group: '*custom*', resources: [], why: 'custom resources after the built-in objects they may refer to; operators reconcile them into workloads'},
  {group: 'apps', resources: ['statefulsets', 'deployments', 'daemonsets', 'replicasets'], why: 'workloads last: everything they refer to exists, so they start once and right'},
  {group: '', resources: ['replicationcontrollers', 'pods'], why: 'bare Pods and ReplicationControllers are workloads too: they start once everything they refer to exists'},
  {group: 'batch', resources: ['cronjobs', 'jobs'], why: 'jobs run at once on creation: only when everything else is back'},
  {group: 'autoscaling', resources: ['horizontalpodautoscalers'], why: 'they target workloads, which must exist first'},
]

/** The rank of a type in the restore order (lower first). */
export function restoreRank(group: string, resource: string): number {
  const row = RESTORE_PRIORITIES.findIndex((r) => r.group === group && r.resources.includes(resource))
  if (row >= 0) return row
  // Custom resources, and built-in types the table does not name: after config, before workloads.
  return RESTORE_PRIORITIES.findIndex((r) => r.group === '*custom*')
}

/** Sorts entries into restore order; within a rank by type, then name (stable and readable). */
export function orderForRestore<T extends Pick<ObjectEntry, 'group' | 'resource' | 'name'>>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) =>
    restoreRank(a.group, a.resource) - restoreRank(b.group, b.resource)
    || a.group.localeCompare(b.group)
    || a.resource.localeCompare(b.resource)
    || a.name.localeCompare(b.name))
}
