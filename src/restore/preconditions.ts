/**
 * What must hold before restore writes anything: the target namespace exists
 * (or may be created), every type in the plan is served, and the identity may
 * create (and, for --existing update, patch) each of them. All problems are
 * gathered and reported at once.
 */
import type {ObjectEntry} from '../archive/manifest.js'
import type {KubeApi} from '../cluster/api.js'
import {canIAll} from '../cluster/access.js'
import {qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {namespaceExists} from '../cluster/namespace.js'
import type {ExistingPolicy} from '../resources/apply.js'

export interface Preconditions {
  /** true: exists; false: missing (to create); undefined: the identity may not tell. */
  namespaceExists: boolean | undefined
  /** Where each archived type is created, by qualifiedName: its archived version, or the served one when that is gone. */
  targets: Map<string, ResourceType>
  problems: string[]
  warnings: string[]
}

/** Checks everything restore needs; never writes. */
export async function checkPreconditions(api: KubeApi, options: {
  entries: ObjectEntry[]
  served: ResourceType[]
  namespace: string
  createNamespace: boolean
  existing: ExistingPolicy
  crdPaths: Map<string, string>
}): Promise<Preconditions> {
  const problems: string[] = []
  const warnings: string[] = []
  const exists = await namespaceExists(api, options.namespace)
  if (exists === false && !options.createNamespace) {
    problems.push(`The namespace ${options.namespace} does not exist: create it, or pass --create-namespace.`)
  }

  const targets = new Map<string, ResourceType>()
  const wanted = new Map<string, ObjectEntry>()
  for (const entry of options.entries) wanted.set(qualifiedName(entry), entry)
  for (const [key, entry] of wanted) {
    const served = options.served.filter((t) => t.group === entry.group && t.resource === entry.resource)
    const candidates = served.filter((t) => t.namespaced)
    const exact = candidates.find((t) => t.version === entry.version)
    if (served.length > 0 && candidates.length === 0) {
      // Restore writes into one namespace; an archive that holds anything else was not made by a snapshot of one.
      problems.push(`${qualifiedName(entry)} is cluster-scoped: kubesnap restores only namespaced objects, and the archive's ${entry.kind} ${entry.name} is refused (use another archive).`)
    } else if (exact) {
      targets.set(key, exact)
    } else if (candidates.length > 0) {
      targets.set(key, candidates[0])
      warnings.push(`${qualifiedName(entry)} ${entry.version} is not served here; restoring at ${candidates[0].version}.`)
    } else {
      const crd = options.crdPaths.get(key)
      problems.push(`${qualifiedName(entry)}/${entry.version} is not served by this cluster: install its CustomResourceDefinition first${crd ? ` (the archive has it: ${crd})` : ''}.`)
    }
  }

  // Each record's kind must be its type's: the plan and the restarts go by kind, the write by resource.
  for (const entry of options.entries) {
    const kind = targets.get(qualifiedName(entry))?.kind
    if (kind && kind !== entry.kind) {
      problems.push(`The archive records ${qualifiedName(entry)}/${entry.name} as a ${entry.kind}, but ${qualifiedName(entry)} are ${kind}s: the archive was altered, use another one.`)
    }
  }

  const verbs = options.existing === 'update' ? ['create', 'patch'] : ['create']
  const questions = [...targets.values()].flatMap((t) => verbs.map((verb) => ({verb, group: t.group, resource: t.resource, namespace: options.namespace})))
  if (exists === false) questions.push({verb: 'create', group: '', resource: 'namespaces', namespace: ''})
  for (const answer of await canIAll(api, questions)) {
    if (!answer.allowed) {
      problems.push(`The identity may not ${answer.verb} ${qualifiedName(answer)}${answer.namespace ? ` in ${answer.namespace}` : ''}: add that verb to its Role (see kubesnap rbac).`)
    }
  }
  return {namespaceExists: exists, targets, problems, warnings}
}
