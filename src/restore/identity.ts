/**
 * Whether an archived object is the object its manifest record names. The
 * plan, the summary and the restarts all go by the record; what is applied is
 * the stored JSON. An archive whose two disagree (an entry `secrets/harmless-new`
 * holding Secret `jenkins-admin`) would write one object while reporting
 * another, so restore refuses it before any write.
 */
import pLimit from 'p-limit'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {messageOf} from '../errors.js'

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

/**
 * Reads every entry and returns a sentence for each whose object is not the one
 * its record names (see identityProblem), for the preconditions to list.
 */
export async function checkObjectIdentities(reader: ArchiveReader, entries: readonly ObjectEntry[], concurrency = 8): Promise<string[]> {
  const limit = pLimit(concurrency)
  const problems = await Promise.all(entries.map((entry) => limit(async () => {
    let object: unknown
    try {
      object = JSON.parse((await reader.readObject(entry)).toString('utf8'))
    } catch (err) {
      return `${entry.kind} ${entry.name} (${entry.path}) cannot be read: ${messageOf(err)}`
    }
    const problem = identityProblem(object, entry, reader.manifest.namespace)
    return problem && `${entry.kind} ${entry.name}: ${problem} (member ${entry.path}); the archive was altered, use another one.`
  })))
  return problems.filter((p): p is string => p !== undefined)
}
