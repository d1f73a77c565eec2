/**
 * A mode's needs as SelfSubjectAccessReview questions, and the answers turned
 * back into the Role rules to add. Pure: `kubesnap check --for` asks.
 *
 * A wildcard rule cannot be asked about as such: the authorizer answers for one
 * verb on one resource. So its needs are the concrete types discovery shows:
 * every namespaced listable type for snapshot's list, and for restore's get,
 * create and patch the built-in kinds restore creates plus the custom types
 * present (restore may meet any of them in an archive).
 */
import type {V1PolicyRule} from '@kubernetes/client-node'
import type {AccessQuestion} from '../cluster/access.js'
import {isBuiltinGroup, type ResourceType} from '../cluster/discovery.js'
import {RESTORE_PRIORITIES} from '../resources/priorities.js'
import {allows, copyRule, everyTarget, type RoleRow, type WildcardSample} from './role.js'

/** One question and the row that needs it. */
export interface Need extends AccessQuestion {
  /** Index of the row in the rows asked about. */
  row: number
}

/** A need with the authorizer's answer. */
export interface AnsweredNeed extends Need {
  allowed: boolean
}


/** The concrete types a wildcard row stands for on this server, for one verb. */
export function sampleTypes(sample: WildcardSample, verb: string, types: readonly ResourceType[]): ResourceType[] {
  const namespaced = types.filter((t) => t.namespaced && t.verbs.includes(verb))
  if (sample === 'listable') return namespaced
  const restoredBuiltins = new Set(RESTORE_PRIORITIES.flatMap((row) => row.resources.map((r) => `${r}.${row.group}`)))
  return namespaced.filter((t) => !isBuiltinGroup(t.group) || restoredBuiltins.has(`${t.resource}.${t.group}`))
}

/** Every question the rows raise in a namespace, each asked once (the first row that needs it owns it). */
export function needsOf(rows: readonly RoleRow[], types: readonly ResourceType[], namespace: string): Need[] {
  const needs = new Map<string, Need>()
  rows.forEach((row, index) => {
    for (const verb of row.rule.verbs) {
      const targets = row.sample
        ? sampleTypes(row.sample, verb, types).map((t) => ({group: t.group, resource: t.resource}))
        : everyTarget(row.rule)
      for (const {group, resource} of targets) {
        const [base, subresource] = resource.split('/')
        const key = `${verb} ${group} ${resource}`
        if (!needs.has(key)) needs.set(key, {verb, group, resource: base, ...(subresource ? {subresource} : {}), namespace, row: index})
      }
    }
  })
  return [...needs.values()]
}

/**
 * The Role rules that would grant every denied need: for a wildcard row the
 * row's rule with the denied verbs; for a named row its denied verbs on the
 * resources that lack them (one rule per set of verbs), minus what the
 * wildcard rules to add would grant already.
 */
export function missingRules(rows: readonly RoleRow[], answers: readonly AnsweredNeed[]): {rule: V1PolicyRule; why: string}[] {
  const denied = answers.filter((a) => !a.allowed)
  const out: {rule: V1PolicyRule; why: string}[] = []
  rows.forEach((row, index) => {
    if (!row.sample) return
    const verbs = row.rule.verbs.filter((v) => denied.some((d) => d.row === index && d.verb === v))
    if (verbs.length > 0) out.push({rule: {...copyRule(row.rule), verbs}, why: row.why})
  })
  const wildcards = out.map((o) => o.rule)
  rows.forEach((row, index) => {
    if (row.sample) return
    // resource (with subresource) → its denied verbs not granted by a wildcard rule to add.
    const byResource = new Map<string, {group: string; verbs: string[]}>()
    for (const d of denied.filter((x) => x.row === index)) {
      const resource = d.subresource ? `${d.resource}/${d.subresource}` : d.resource
      if (wildcards.some((w) => allows(w, d.verb, d.group, resource))) continue
      const key = `${d.group}\0${resource}`
      const entry = byResource.get(key) ?? {group: d.group, verbs: []}
      entry.verbs.push(d.verb)
      byResource.set(key, entry)
    }
    // Resources of one group that lack the same verbs share a rule.
    const rules = new Map<string, V1PolicyRule>()
    for (const [key, {group, verbs}] of byResource) {
      const resource = key.split('\0')[1]
      const ordered = row.rule.verbs.filter((v) => verbs.includes(v))
      const id = `${group}\0${ordered.join(',')}`
      const rule = rules.get(id) ?? {apiGroups: [group], resources: [], verbs: ordered}
      rule.resources!.push(resource)
      rules.set(id, rule)
    }
    for (const rule of rules.values()) out.push({rule, why: row.why})
  })
  return out
}
