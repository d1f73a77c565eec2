/**
 * Discovery of the resource types a server serves: the core group and every
 * API group at its preferred version, as `kubectl api-resources` shows them.
 */
import pLimit from 'p-limit'
import type {V1APIGroupList, V1APIResourceList} from '@kubernetes/client-node'
import {messageOf} from '../errors.js'
import type {KubeApi} from './api.js'

/** One resource type, e.g. apps/v1 statefulsets. */
export interface ResourceType {
  /** '' for the core group. */
  group: string
  version: string
  /** `v1` or `group/version`. */
  apiVersion: string
  /** The plural resource name used in URLs. */
  resource: string
  kind: string
  namespaced: boolean
  verbs: string[]
  shortNames: string[]
}

export interface DiscoveryResult {
  types: ResourceType[]
  /** Group versions whose discovery failed (an aggregated API that is down). */
  failed: {groupVersion: string; error: string}[]
}

/**
 * Lists every resource type of the server, subresources excluded. Like
 * kubectl's preferred resources, a group's types come from its preferred
 * version, and a type only an older version serves (CronJob in batch/v1beta1
 * on 1.20) comes from the first version that has it.
 */
export async function discoverResourceTypes(api: KubeApi, options: {concurrency?: number} = {}): Promise<DiscoveryResult> {
  const groups = await api.get<V1APIGroupList>('/apis')
  const groupVersions = [
    {group: '', version: 'v1', path: '/api/v1', rank: 0},
    ...groups.groups.flatMap((g) => {
      const preferred = g.preferredVersion?.version ?? g.versions[0].version
      const ordered = [preferred, ...g.versions.map((v) => v.version).filter((v) => v !== preferred)]
      return ordered.map((version, rank) => ({group: g.name, version, path: `/apis/${g.name}/${version}`, rank}))
    }),
  ]
  const limit = pLimit(options.concurrency ?? 8)
  const failed: DiscoveryResult['failed'] = []
  const lists = await Promise.all(groupVersions.map((gv) => limit(async () => {
    try {
      return {gv, list: await api.get<V1APIResourceList>(gv.path)}
    } catch (err) {
      failed.push({groupVersion: gv.group ? `${gv.group}/${gv.version}` : gv.version, error: messageOf(err)})
      return undefined
    }
  })))
  const byName = new Map<string, ResourceType & {rank: number}>()
  for (const entry of lists) {
    if (!entry) continue
    const {gv, list} = entry
    for (const r of list.resources) {
      if (r.name.includes('/')) continue
      const key = `${r.name}.${gv.group}`
      const known = byName.get(key)
      if (known && known.rank <= gv.rank) continue
      byName.set(key, {
        group: gv.group,
        version: gv.version,
        apiVersion: gv.group ? `${gv.group}/${gv.version}` : gv.version,
        resource: r.name,
        kind: r.kind,
        namespaced: r.namespaced,
        verbs: r.verbs,
        shortNames: r.shortNames ?? [],
        rank: gv.rank,
      })
    }
  }
  const types = [...byName.values()].map(({rank: _rank, ...type}) => type)
  return {types: sortTypes(types), failed: failed.sort((a, b) => a.groupVersion.localeCompare(b.groupVersion))}
}

/** Whether a group is Kubernetes' own (core, `apps`, `*.k8s.io`) rather than a CRD's. */
export function isBuiltinGroup(group: string): boolean {
  return !group.includes('.') || group.endsWith('.k8s.io')
}

/** Namespaced types that can be listed: the candidates for a snapshot. */
export function namespacedListable(types: ResourceType[]): ResourceType[] {
  return types.filter((t) => t.namespaced && t.verbs.includes('list'))
}

/** `resource.group`, or just `resource` for the core group (kubectl's spelling). */
export function qualifiedName(type: Pick<ResourceType, 'group' | 'resource'>): string {
  return type.group ? `${type.resource}.${type.group}` : type.resource
}

/** The URL path of a type's collection, in a namespace when given. */
export function collectionPath(type: Pick<ResourceType, 'group' | 'version' | 'resource'>, namespace?: string): string {
  const prefix = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`
  return namespace ? `${prefix}/namespaces/${encodeURIComponent(namespace)}/${type.resource}` : `${prefix}/${type.resource}`
}

/**
 * Finds the type a user means by a kind, plural, short name or `resource.group`
 * (`Secret`, `secrets`, `cm`, `softwarefactories.sf.example.io`), case-insensitive.
 */
export function matchType(types: ResourceType[], name: string): ResourceType[] {
  const wanted = name.toLowerCase()
  return types.filter((t) => {
    const names = [t.kind, t.resource, ...t.shortNames].map((n) => n.toLowerCase())
    if (names.includes(wanted)) return true
    const qualified = [t.kind, t.resource, ...t.shortNames].map((n) => `${n}.${t.group}`.toLowerCase())
    return t.group !== '' && qualified.includes(wanted)
  })
}

/** Stable order: core first, then by group, then by resource name. */
function sortTypes(types: ResourceType[]): ResourceType[] {
  return [...types].sort((a, b) =>
    (a.group === '' ? -1 : 0) - (b.group === '' ? -1 : 0)
    || a.group.localeCompare(b.group)
    || a.resource.localeCompare(b.resource))
}
