/**
 * Which resource types a snapshot lists: discovery's namespaced listable types,
 * narrowed by --include-kinds/--exclude-kinds, less what the cluster makes.
 */
import type {SkippedItem} from '../archive/manifest.js'
import {matchType, namespacedListable, qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {EXIT, KubesnapError} from '../errors.js'
import {ALIASED_TYPES, typeSkipReason} from './skip.js'

export interface Selection {
  includeKinds?: string[]
  excludeKinds?: string[]
}

export interface PlannedType {
  type: ResourceType
  /** Named in --include-kinds: failing to list it fails the snapshot. */
  askedByName: boolean
}

export interface TypePlan {
  types: PlannedType[]
  skipped: SkippedItem[]
}

/** Decides the types to list; unknown names in the selection are a usage error. */
export function planTypes(discovered: ResourceType[], selection: Selection = {}): TypePlan {
  const candidates = namespacedListable(discovered)
  const included = selection.includeKinds?.length ? resolve(candidates, selection.includeKinds, '--include-kinds') : undefined
  const excluded = resolve(candidates, selection.excludeKinds ?? [], '--exclude-kinds')
  const served = new Set(candidates.map(qualifiedName))
  const types: PlannedType[] = []
  const skipped: SkippedItem[] = []
  for (const type of candidates) {
    const name = qualifiedName(type)
    if (excluded.has(name)) {
      skipped.push({kind: type.kind, resource: name, reason: 'excluded with --exclude-kinds'})
      continue
    }
    if (included) {
      if (included.has(name)) types.push({type, askedByName: true})
      continue
    }
    const alias = ALIASED_TYPES.find((a) => a.group === type.group && a.resource === type.resource)
    if (alias && served.has(qualifiedName(alias.sameAs))) {
      skipped.push({kind: type.kind, resource: name, reason: `the same objects as ${qualifiedName(alias.sameAs)}, stored there`})
      continue
    }
    const reason = typeSkipReason(type)
    if (reason) {
      skipped.push({kind: type.kind, resource: name, reason})
      continue
    }
    types.push({type, askedByName: false})
  }
  return {types, skipped}
}

/** Turns user-given kind names into qualified type names; an unknown one is a usage error. */
function resolve(candidates: ResourceType[], names: string[], flag: string): Set<string> {
  const result = new Set<string>()
  for (const raw of names.flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean)) {
    const matches = matchType(candidates, raw)
    if (matches.length === 0) {
      throw new KubesnapError(`${flag}: no namespaced resource type named "${raw}" can be listed on this server; run \`kubesnap check\` to see the types.`, {exit: EXIT.usage})
    }
    // A bare name served by two groups (events) means both, as in kubectl it would be ambiguous.
    for (const m of matches) result.add(qualifiedName(m))
  }
  return result
}
