/**
 * Whether an archived object is the object its manifest record names. The
 * plan, the summary and the restarts all go by the record; what is applied is
 * the stored JSON. An archive whose two disagree (an entry `secrets/harmless-new`
 * holding Secret `jenkins-admin`) would write one object while reporting
 * another, so restore refuses it before any write.
 */
import type {ObjectEntry} from '../archive/manifest.js'

/**
 * Says how a stored object differs from its record (kind, apiVersion, name,
 * namespace `namespace`), or returns undefined when it is the object the record names.
 */
export function identityProblem(object: unknown, entry: ObjectEntry, namespace: string): string | undefined {
  const o = object as {apiVersion?: unknown; kind?: unknown; metadata?: {name?: unknown; namespace?: unknown}} | null
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'the archived content is not a Kubernetes object'
  const apiVersion = entry.group ? `${entry.group}/${entry.version}` : entry.version
  const name = o.metadata?.name
  if (o.kind !== entry.kind || name !== entry.name) return `the archived object is ${String(o.kind)} ${String(name)}`
  if (o.apiVersion !== apiVersion) return `the archived object is ${String(o.apiVersion)}, not ${apiVersion}`
  if (o.metadata?.namespace !== namespace) {
    return o.metadata?.namespace === undefined ? `the archived object has no namespace, not ${namespace}` : `the archived object is in namespace ${String(o.metadata.namespace)}, not ${namespace}`
  }
  return undefined
}
