/**
 * `kubesnap check`: can we reach the cluster, who are we, does the namespace
 * exist, which namespaced types can we list there, and (with --for) which of
 * the rights a kubesnap command needs the identity lacks, as Role rules to add.
 */
import type {V1PolicyRule} from '@kubernetes/client-node'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {BUILTIN_TYPES, canIAll, discoverResourceTypes, listObjects, namespaceExists, namespacedListable, qualifiedName, serverVersion, whoAmI, type ResourceType} from '../cluster/index.js'
import type {Identity} from '../cluster/identity.js'
import {KubesnapError, messageOf} from '../errors.js'
import {missingRules, needsOf} from './needs.js'
import {neededRows, type RoleExtras, type RoleMode, type RoleVolumes} from './role.js'
import {HelperPods, type HelperAdmission} from '../volumes/helper.js'
import {identityOfClaim} from '../volumes/identity.js'
import {listPods} from '../volumes/index.js'
import {listWorkloads} from '../volumes/workloads.js'

export interface TypeAccess {
  /** `resource.group` as kubectl spells it. */
  name: string
  apiVersion: string
  kind: string
  canList: boolean
}

export interface CheckResult {
  server: string
  serverVersion: string
  context: string
  identity: Identity
  namespace: string
  /** true, or undefined when the identity may not read the Namespace object. */
  namespaceExists: true | undefined
  types: TypeAccess[]
  discoveryFailures: {groupVersion: string; error: string}[]
}

/** A need the authorizer refused. */
export interface DeniedAccess {
  verb: string
  /** `resource.group` or `resource/subresource` as kubectl spells it. */
  name: string
  /** Why the command needs it. */
  why: string
}

/** What check --for adds: the needs asked about and the rules that would grant the refused ones. */
export interface PermissionsResult {
  for: RoleMode
  volumes: RoleVolumes
  /** Checked with --restore-rbac (escalate and bind). */
  rbac?: boolean
  /** How many verb × resource questions were asked. */
  checked: number
  denied: DeniedAccess[]
  /** The Role rules to add; empty when the identity has every right the mode needs. */
  missing: V1PolicyRule[]
  /** The reason of each rule in `missing`, same order. */
  missingWhy: string[]
  /** With --volumes tar: whether each claim's helper pod would be admitted (a server-side dry run), and as whom. */
  helpers?: HelperAdmission[]
  /** Why the helper dry run was left out, when it was. */
  helpersUnchecked?: string
}

export type CheckPermissionsResult = CheckResult & PermissionsResult

/** Runs every check; throws a KubesnapError sentence on the fatal ones. */
export async function checkNamespace(api: KubeApi, namespace: string): Promise<CheckResult> {
  return (await checkNamespaceTypes(api, namespace)).result
}

/** checkNamespace, then every right a mode needs with a volume strategy. */
export async function checkNamespaceFor(api: KubeApi, namespace: string, mode: RoleMode, volumes: RoleVolumes, helper: {image?: string; asRoot?: boolean} = {}, extras: RoleExtras = {}): Promise<CheckPermissionsResult> {
  const {result, types} = await checkNamespaceTypes(api, namespace)
  const permissions = await checkPermissions(api, namespace, types, mode, volumes, extras)
  // Only with the rights the dry run needs (a missing one is already reported as a rule to add).
  const needed = new Set(['create pods', 'list pods', 'list persistentvolumeclaims', 'list statefulsets.apps', 'list deployments.apps'])
  const lacking = permissions.denied.some((d) => needed.has(`${d.verb} ${d.name}`))
  if (volumes === 'tar' && !lacking) {
    try {
      permissions.helpers = await checkHelperAdmission(api, namespace, helper)
    } catch (err) {
      // A Role for restore only may not list claims or pods: the dry run is then left out, and said so.
      if (!isStatus(err, 403)) throw err
      permissions.helpersUnchecked = `the identity may not read what the check needs (${messageOf(err)})`
    }
  }
  return {...result, ...permissions}
}

/**
 * Whether the namespace's pod security policy would admit a helper for each
 * bound claim, running as the application that mounts it: a server-side dry
 * run of each create, so a hardened namespace's refusal shows before a
 * restore writes anything.
 */
export async function checkHelperAdmission(api: KubeApi, namespace: string, options: {image?: string; asRoot?: boolean} = {}): Promise<HelperAdmission[]> {
  const claims = await listObjects<{metadata?: {name?: string}; status?: {phase?: string}}>(api, BUILTIN_TYPES.persistentVolumeClaims, {namespace})
  const bound = claims.filter((c) => c.status?.phase === 'Bound').map((c) => c.metadata?.name ?? '').sort()
  if (bound.length === 0) return []
  const pods = await listPods(api, namespace)
  const workloads = (await listWorkloads(api, namespace)).map((w) => ({...w.object, kind: w.kind}))
  const helpers = new HelperPods(api, namespace, options)
  const admissions: HelperAdmission[] = []
  for (const claim of bound) admissions.push(await helpers.admission(claim, identityOfClaim(claim, {pods, workloads})))
  return admissions
}

/**
 * Asks SelfSubjectAccessReview about every verb × resource a mode needs
 * (wildcard rules through the concrete types discovery shows) and returns the
 * refused ones with the Role rules that would grant them.
 */
export async function checkPermissions(api: KubeApi, namespace: string, types: readonly ResourceType[], mode: RoleMode, volumes: RoleVolumes, extras: RoleExtras = {}): Promise<PermissionsResult> {
  const rows = neededRows(mode, volumes, extras)
  const needs = needsOf(rows, types, namespace)
  const answers = await canIAll(api, needs)
  const answered = needs.map((need, i) => ({...need, allowed: answers[i].allowed}))
  const missing = missingRules(rows, answered)
  return {
    for: mode,
    volumes,
    ...(extras.rbac ? {rbac: true} : {}),
    checked: needs.length,
    denied: answered.filter((a) => !a.allowed).map((a) => ({
      verb: a.verb,
      name: a.subresource ? `${qualifiedName(a)}/${a.subresource}` : qualifiedName(a),
      why: rows[a.row].why,
    })),
    missing: missing.map((m) => m.rule),
    missingWhy: missing.map((m) => m.why),
  }
}

async function checkNamespaceTypes(api: KubeApi, namespace: string): Promise<{result: CheckResult; types: ResourceType[]}> {
  const version = await serverVersion(api)
  const namespaceExists = await namespaceStatus(api, namespace)
  const identity = await whoAmI(api)
  const discovery = await discoverResourceTypes(api)
  const candidates = namespacedListable(discovery.types)
  const answers = await canIAll(api, candidates.map((t) => ({verb: 'list', group: t.group, resource: t.resource, namespace})))
  const result: CheckResult = {
    server: api.config.server,
    serverVersion: version.gitVersion,
    context: api.config.context,
    identity,
    namespace,
    namespaceExists,
    types: candidates.map((t, i) => ({name: qualifiedName(t), apiVersion: t.apiVersion, kind: t.kind, canList: answers[i].allowed})),
    discoveryFailures: discovery.failed,
  }
  return {result, types: discovery.types}
}

/** Confirms the namespace exists; undefined when the identity may not tell. */
async function namespaceStatus(api: KubeApi, namespace: string): Promise<true | undefined> {
  const exists = await namespaceExists(api, namespace)
  if (exists === false) throw new KubesnapError(`The namespace "${namespace}" does not exist on ${api.config.server}; create it or pick another with -n.`)
  return exists
}
