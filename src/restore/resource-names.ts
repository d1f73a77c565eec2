/**
 * `restore --resource KIND/NAME` (repeatable): exactly these objects out of an
 * archive — the runbook's "give me back that one Secret". KIND is what kubectl
 * accepts: a kind, a plural, a short name, or `resource.group`.
 */
import type {ObjectEntry} from '../archive/manifest.js'
import {matchType, qualifiedName, type ResourceType} from '../cluster/discovery.js'
import {EXIT, KubesnapError} from '../errors.js'

/**
 * Keeps the entries each `KIND/NAME` names; returns all entries when `specs`
 * is empty. KIND is resolved against the cluster's types (short names) and the
 * archive's own records (a custom type whose CRD is not installed yet). A
 * malformed value, a kind the archive and cluster do not know, or an object
 * the archive does not hold is a usage error (exit 2) naming it.
 */
export function selectResources(entries: ObjectEntry[], specs: readonly string[], served: ResourceType[]): ObjectEntry[] {
  if (specs.length === 0) return entries
  const wanted = new Set<string>()
  for (const spec of specs.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const slash = spec.indexOf('/')
    const kind = slash > 0 ? spec.slice(0, slash) : ''
    const name = slash > 0 ? spec.slice(slash + 1) : ''
    if (!kind || !name || name.includes('/')) {
      throw new KubesnapError(`--resource ${JSON.stringify(spec)} is not KIND/NAME; write e.g. --resource secret/db or --resource persistentvolumeclaim/data-db-0.`, {exit: EXIT.usage})
    }
    const types = new Set(matchType(served, kind).map(qualifiedName))
    const lower = kind.toLowerCase()
    for (const e of entries) {
      // The archive's own names, for types this cluster does not serve.
      if ([e.kind, e.resource].some((n) => n.toLowerCase() === lower) || qualifiedName(e).toLowerCase() === lower || `${e.kind}.${e.group}`.toLowerCase() === lower) types.add(qualifiedName(e))
    }
    if (types.size === 0) {
      throw new KubesnapError(`--resource ${spec}: no resource type named "${kind}" is in the archive or served by this cluster; use a kind, plural or short name as kubectl does (e.g. secret, cm, statefulsets.apps).`, {exit: EXIT.usage})
    }
    const found = entries.filter((e) => types.has(qualifiedName(e)) && e.name === name)
    if (found.length === 0) {
      const same = entries.filter((e) => types.has(qualifiedName(e))).map((e) => e.name)
      const has = same.length === 0 ? 'none of that type' : same.length <= 8 ? same.join(', ') : `${same.slice(0, 8).join(', ')} and ${same.length - 8} more`
      throw new KubesnapError(`--resource ${spec}: the archive holds no ${[...types].join(' or ')} named ${name} (it has ${has}); check the name with kubesnap inspect.`, {exit: EXIT.usage})
    }
    for (const e of found) wanted.add(e.path)
  }
  return entries.filter((e) => wanted.has(e.path))
}
