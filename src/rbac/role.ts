/**
 * The namespace-scoped Role kubesnap documents: the one place its rules live.
 * `kubesnap rbac` prints it, `kubesnap check --for` asks the API server about
 * every need in it, and the test control plane binds its namespace-only user
 * to it (kubesnapRole: all commands, tar volumes).
 *
 * Each row is one need with its reason, the commands that have it, and the
 * volume strategies that have it. A mode's Role is its rows, minus what the
 * wildcard rows already grant: in RBAC `*` resources also match subresources
 * (`pods/exec`, `deployments/scale`), so restore's `create` on every type
 * already allows exec. Those rows are still checked by `kubesnap check`, and
 * `kubesnap rbac` prints their reasons as comments.
 */
import type {V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount} from '@kubernetes/client-node'
import {MANAGED_BY} from '../labels.js'

/** What the identity is for: one command, or both. */
export const ROLE_MODES = ['snapshot', 'restore', 'all'] as const
export type RoleMode = (typeof ROLE_MODES)[number]

/** How volume data is taken and put back (the `--volumes` flag of snapshot). */
export const ROLE_VOLUMES = ['tar', 'csi', 'none'] as const
export type RoleVolumes = (typeof ROLE_VOLUMES)[number]

/** Which concrete types `kubesnap check` asks about for a wildcard rule. */
export type WildcardSample = 'listable' | 'restorable'

/** A Role rule and why kubesnap needs it. */
export interface RoleRow {
  rule: V1PolicyRule
  why: string
  /** The commands that need it. */
  for: readonly ('snapshot' | 'restore')[]
  /** Only these volume strategies need it (default: every strategy). */
  volumes?: readonly RoleVolumes[]
  /** For a `*` rule: the concrete types check asks about (its needs, as discovery shows them). */
  sample?: WildcardSample
  /**
   * Only with `--restore-rbac`: a rule that lets the identity grant rights it
   * does not hold (escalate, bind). With it, the identity can give itself any
   * right in the namespace, a more permissive pod security policy included,
   * so the default Role leaves it out.
   */
  rbac?: true
}

export const ROLE_NAME = 'kubesnap'
const RBAC_GROUP = 'rbac.authorization.k8s.io'

/**
 * The rules, one row per need. CRD groups are not known in advance, hence the
 * `*` rows; everything else names its resources and verbs exactly. Nothing
 * uses `watch` or `update` (PUT): reads poll, writes are create and patch.
 */
export const ROLE_ROWS: readonly RoleRow[] = [
  {
    rule: {apiGroups: ['*'], resources: ['*'], verbs: ['list']},
    why: 'snapshot lists every namespaced type discovery shows (custom resources included), page by page',
    for: ['snapshot'], sample: 'listable',
  },
  {
    rule: {apiGroups: ['*'], resources: ['*'], verbs: ['get']},
    why: 'restore reads an object that exists already (to skip, compare or update it), claims, and workloads while they roll out',
    for: ['restore'], sample: 'restorable',
  },
  {
    rule: {apiGroups: ['*'], resources: ['*'], verbs: ['create', 'patch']},
    why: 'restore creates every kind it finds in the archive, server-side-applies it with --existing update, and patches workloads to restart them',
    for: ['restore'], sample: 'restorable',
  },
  {
    rule: {apiGroups: ['apps'], resources: ['statefulsets', 'deployments'], verbs: ['list']},
    why: 'restore finds the running StatefulSets and Deployments that use a restored Secret, ConfigMap or claim, to restart them',
    for: ['restore'],
  },
  {
    rule: {apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create']},
    why: 'volume data streams over exec (WebSocket exec is checked as get, servers from 1.35 also check create)',
    for: ['snapshot', 'restore'], volumes: ['tar'],
  },
  {
    rule: {apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'delete']},
    why: 'a helper pod mounts a claim when no running pod can serve it: found by listing pods, created, polled until Running, deleted',
    for: ['snapshot', 'restore'], volumes: ['tar'],
  },
  {
    rule: {apiGroups: ['apps'], resources: ['statefulsets/scale', 'deployments/scale'], verbs: ['get', 'patch']},
    why: "restore scales a claim's writer to 0 before reloading its data, then back",
    for: ['restore'], volumes: ['tar'],
  },
  {
    rule: {apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshots'], verbs: ['create', 'get', 'delete']},
    why: 'the csi strategy takes a VolumeSnapshot per claim, polls it until ready, and deletes the run\'s snapshots if one fails',
    for: ['snapshot'], volumes: ['csi'],
  },
  {
    rule: {apiGroups: [RBAC_GROUP], resources: ['roles'], verbs: ['escalate', 'bind']},
    why: "restore re-creates the namespace's Roles and their RoleBindings, which may grant rights kubesnap itself lacks (--restore-rbac: this lets the identity grant itself anything in the namespace)",
    for: ['restore'], rbac: true,
  },
  {
    rule: {apiGroups: [RBAC_GROUP], resources: ['clusterroles'], verbs: ['bind']},
    why: 'restore re-creates RoleBindings to ClusterRoles (view, edit…), allowed in this namespace only (--restore-rbac: this lets the identity bind any ClusterRole, a pod security policy\'s included)',
    for: ['restore'], rbac: true,
  },
]

/** What a Role is for beyond mode and volumes: `rbac` adds the rows that let restore re-create RBAC granting more than it holds. */
export interface RoleExtras {
  rbac?: boolean
}

/** The rows a mode needs with a volume strategy: what `kubesnap check --for` asks about. */
export function neededRows(mode: RoleMode, volumes: RoleVolumes = 'tar', extras: RoleExtras = {}): RoleRow[] {
  return ROLE_ROWS.filter((row) => (mode === 'all' || row.for.includes(mode)) && (!row.volumes || row.volumes.includes(volumes)) && (!row.rbac || extras.rbac === true))
}

/** A mode's Role: the rules to grant, and the needs the wildcard rules already grant. */
export interface MinimalRules {
  /** Rules to put in the Role, with their reasons; verbs already granted by a wildcard rule are left out. */
  rows: RoleRow[]
  /** Needs granted by the rules in `rows` (a wildcard also matches subresources): checked, not repeated. */
  covered: RoleRow[]
}

/**
 * The least rules that grant every need of a mode: the wildcard rows, then
 * each named row with only the verbs the wildcard rows do not already allow
 * on all of its resources (dropped when that leaves none).
 */
export function minimalRules(mode: RoleMode, volumes: RoleVolumes = 'tar', extras: RoleExtras = {}): MinimalRules {
  const needed = neededRows(mode, volumes, extras)
  const wildcards = needed.filter(isWildcard)
  const rows: RoleRow[] = [...wildcards]
  const covered: RoleRow[] = []
  for (const row of needed.filter((r) => !isWildcard(r))) {
    const verbs = row.rule.verbs.filter((verb) => !everyTarget(row.rule).every(({group, resource}) => wildcards.some((w) => allows(w.rule, verb, group, resource))))
    if (verbs.length === 0) covered.push(row)
    else rows.push({...row, rule: {...row.rule, verbs}})
  }
  return {rows, covered}
}

function isWildcard(row: RoleRow): boolean {
  return row.rule.apiGroups?.includes('*') === true || row.rule.resources?.includes('*') === true
}

/** Every group and resource a rule names. */
export function everyTarget(rule: V1PolicyRule): {group: string; resource: string}[] {
  return (rule.apiGroups ?? []).flatMap((group) => (rule.resources ?? []).map((resource) => ({group, resource})))
}

/**
 * Whether a rule allows a verb on a resource (`pods`, or `pods/exec` for a
 * subresource), as the RBAC authorizer matches: `*` matches any group, verb,
 * or resource including subresources; `pods/*` any subresource of pods.
 */
export function allows(rule: V1PolicyRule, verb: string, group: string, resource: string): boolean {
  const verbs = rule.verbs ?? []
  const groups = rule.apiGroups ?? []
  const resources = rule.resources ?? []
  if (!verbs.includes('*') && !verbs.includes(verb)) return false
  if (!groups.includes('*') && !groups.includes(group)) return false
  if (resources.includes('*') || resources.includes(resource)) return true
  const slash = resource.indexOf('/')
  return slash > 0 && resources.includes(`${resource.slice(0, slash)}/*`)
}

/** The Role's name for a mode: `kubesnap` for all, `kubesnap-snapshot`, `kubesnap-restore`. */
export function roleName(mode: RoleMode = 'all'): string {
  return mode === 'all' ? ROLE_NAME : `${ROLE_NAME}-${mode}`
}

/** The Role object for a namespace: by default for every command with tar volumes (what the test cluster binds). */
export function kubesnapRole(namespace: string, options: {mode?: RoleMode; volumes?: RoleVolumes} & RoleExtras = {}): V1Role {
  const mode = options.mode ?? 'all'
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'Role',
    metadata: {name: roleName(mode), namespace, labels: {...MANAGED_BY}},
    rules: minimalRules(mode, options.volumes ?? 'tar', options).rows.map((row) => copyRule(row.rule)),
  }
}

/** A RoleBinding of a Role to a user or to a ServiceAccount of the namespace. */
export function kubesnapRoleBinding(namespace: string, subject: {user: string} | {serviceAccount: string}, options: {mode?: RoleMode; name?: string} = {}): V1RoleBinding {
  const role = roleName(options.mode)
  const subjects = 'user' in subject
    ? [{apiGroup: RBAC_GROUP, kind: 'User', name: subject.user}]
    : [{kind: 'ServiceAccount', name: subject.serviceAccount, namespace}]
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'RoleBinding',
    metadata: {name: options.name ?? role, namespace, labels: {...MANAGED_BY}},
    roleRef: {apiGroup: RBAC_GROUP, kind: 'Role', name: role},
    subjects,
  }
}

/** The ServiceAccount a cron job or runbook runs kubesnap as. */
export function kubesnapServiceAccount(namespace: string, name: string = ROLE_NAME): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {name, namespace, labels: {...MANAGED_BY}},
  }
}

/** A rule in the field order kubectl prints (and a copy, so callers cannot change the table). */
export function copyRule(rule: V1PolicyRule): V1PolicyRule {
  return {apiGroups: [...(rule.apiGroups ?? [])], resources: [...(rule.resources ?? [])], verbs: [...rule.verbs]}
}
