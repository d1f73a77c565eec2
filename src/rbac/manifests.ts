/**
 * What `kubesnap rbac` prints: the ServiceAccount, Role and RoleBinding of a
 * mode, as objects (`--json`) or as multi-document YAML for `kubectl apply -f -`
 * with each rule's reason in a comment above it.
 */
import type {V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount} from '@kubernetes/client-node'
import yaml from 'js-yaml'
import {kubesnapRole, kubesnapRoleBinding, kubesnapServiceAccount, minimalRules, roleName, type RoleMode, type RoleRow, type RoleVolumes} from './role.js'

export interface RbacOptions {
  mode: RoleMode
  volumes: RoleVolumes
  /** The ServiceAccount to create and bind (default: the Role's name). */
  serviceAccount?: string
  /** Add escalate and bind, so restore can re-create RBAC that grants more than the identity holds. */
  rbac?: boolean
}

export interface RbacManifests {
  serviceAccount: V1ServiceAccount
  role: V1Role
  roleBinding: V1RoleBinding
}

/** The three objects for a namespace. */
export function rbacManifests(namespace: string, options: RbacOptions): RbacManifests {
  const account = options.serviceAccount ?? roleName(options.mode)
  return {
    serviceAccount: kubesnapServiceAccount(namespace, account),
    role: kubesnapRole(namespace, {mode: options.mode, volumes: options.volumes, rbac: options.rbac}),
    roleBinding: kubesnapRoleBinding(namespace, {serviceAccount: account}, {mode: options.mode}),
  }
}

/** The objects as YAML documents separated by `---`, each Role rule under a comment with its reason. */
export function rbacYaml(namespace: string, options: RbacOptions): string {
  const {serviceAccount, role, roleBinding} = rbacManifests(namespace, options)
  const {rows, covered} = minimalRules(options.mode, options.volumes, options)
  const header = [
    `# kubesnap ${options.mode === 'all' ? 'snapshot and restore' : options.mode} of namespace ${namespace}, volumes: ${options.volumes}.`,
    `# Apply with: kubesnap rbac -n ${namespace} --for ${options.mode} --volumes ${options.volumes}${options.rbac ? ' --restore-rbac' : ''} | kubectl apply -f -`,
    ...(options.rbac ? ['# --restore-rbac: this identity may grant any right in the namespace, to itself too (a more permissive pod security policy included).'] : []),
  ]
  return [
    [...header, dump(serviceAccount)].join('\n'),
    roleYaml(role, rows, covered),
    dump(roleBinding),
  ].join('---\n')
}

/** A Role as YAML with its rules written one by one, each under its reason. */
export function roleYaml(role: V1Role, rows: readonly RoleRow[], covered: readonly RoleRow[] = []): string {
  const {rules: _rules, ...rest} = role
  const lines = [dump(rest).trimEnd(), 'rules:']
  if (covered.length > 0) {
    lines.push('# Also needed, and granted by the wildcard rules below (in RBAC `*` matches subresources too):')
    for (const row of covered) lines.push(`#   ${describeRule(row.rule)}: ${row.why}`)
  }
  for (const row of rows) {
    lines.push(`# ${row.why}`)
    lines.push(rulesYaml([row.rule]).trimEnd())
  }
  return lines.join('\n') + '\n'
}

/** Rules as a YAML list, at the indentation a Role's `rules:` key takes. */
export function rulesYaml(rules: readonly V1PolicyRule[]): string {
  // One line per field (`verbs: [get, list]`), as people write Roles.
  return dump(rules.map((r) => ({apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs})), 2)
}

/** `get, create pods/exec` or `delete pods, statefulsets.apps/scale`, as kubectl names resources. */
export function describeRule(rule: V1PolicyRule): string {
  const groups = rule.apiGroups ?? []
  const names = (rule.resources ?? []).flatMap((resource) => groups.map((g) => {
    const [base, sub] = resource.split('/')
    return `${g === '' || g === '*' && base === '*' ? base : `${base}.${g}`}${sub ? `/${sub}` : ''}`
  }))
  return `${rule.verbs.join(', ')} ${names.join(', ')}`
}

function dump(value: unknown, flowLevel = -1): string {
  // No line folding: a reason or a name must stay on one line for grep.
  return yaml.dump(value, {lineWidth: -1, noRefs: true, flowLevel})
}
