/**
 * The preconditions' one pass over the archived objects, before any write:
 * each entry is read once and checked against its record (an altered archive
 * refuses the restore); only the entries a check needs are then prepared as
 * restore will apply them (cleaned, class-mapped, modified), and each is
 * dropped once looked at. Preparing all 10,000 objects of the bench, or
 * keeping them, doubled the restore's peak RSS (git show 49dc77d).
 */
import {Readable} from 'node:stream'
import type {KubernetesObject} from '@kubernetes/client-node'
import type {ObjectEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {prepareStored, readStoredObject, type PrepareOptions} from './objects.js'
import type {ResourceModifiers} from './modifiers.js'

/** What the pass found, each list in entry order. */
export interface ObjectChecks {
  /** Entries that cannot be read, or whose object is not the one their record names: the archive was altered. */
  altered: string[]
  /** Objects a modifier rule cannot be applied to or would turn into another (only with modifiers). */
  problems: string[]
  /** Modifier rules that change no object at all (a misspelt condition, most likely). */
  warnings: string[]
}

/** One entry as the pass saw it: a problem, the prepared object for `onObject`, the modifier rules it used. */
interface Looked {
  altered?: string
  problem?: string
  object?: KubernetesObject
  rules: number[]
}

/**
 * Reads every entry once, before any write, and returns what refuses the
 * restore (see {@link ObjectChecks}). An entry is prepared only when a check
 * looks at what will be written: every one with --resource-modifiers, else
 * those `wants` names (the target preflight's types); `onObject` then sees it,
 * in entry order. At most `concurrency` objects are held at once.
 */
export async function checkObjects(reader: ArchiveReader, options: PrepareOptions & {
  entries: readonly ObjectEntry[]
  wants: (entry: ObjectEntry) => boolean
  onObject: (entry: ObjectEntry, object: KubernetesObject) => void
  concurrency?: number
}): Promise<ObjectChecks> {
  const checks: ObjectChecks = {altered: [], problems: [], warnings: []}
  const used = new Set<number>()
  // Read concurrently, looked at in entry order (problems and needs come out the same on every run); nothing is kept.
  const looked = Readable.from(options.entries).map((entry: ObjectEntry) => lookAt(reader, entry, options), {concurrency: options.concurrency ?? 8})
  for await (const [entry, seen] of looked as AsyncIterable<[ObjectEntry, Looked]>) {
    if (seen.altered) checks.altered.push(seen.altered)
    if (seen.problem) checks.problems.push(seen.problem)
    for (const rule of seen.rules) used.add(rule)
    if (seen.object) options.onObject(entry, seen.object)
  }
  if (options.modifiers) checks.warnings.push(...unusedRules(options.modifiers, used, options.sourceNamespace))
  return checks
}

/** Reads one entry, checks its identity, and prepares it if a check needs it. */
async function lookAt(reader: ArchiveReader, entry: ObjectEntry, options: PrepareOptions & {wants: (entry: ObjectEntry) => boolean}): Promise<[ObjectEntry, Looked]> {
  const stored = await readStoredObject(reader, entry, options.sourceNamespace)
  if ('unreadable' in stored) return [entry, {altered: `${entry.kind} ${entry.name} (${entry.path}) cannot be read: ${stored.unreadable}`, rules: []}]
  if ('altered' in stored) return [entry, {altered: `${entry.kind} ${entry.name}: ${stored.altered} (member ${entry.path}); the archive was altered, use another one.`, rules: []}]
  if (!options.modifiers && !options.wants(entry)) return [entry, {rules: []}]
  const prepared = prepareStored(stored.object, entry, options)
  // Left out by the selector, or of a type not served (checkPreconditions' own problem): nothing to look at.
  if (!prepared) return [entry, {rules: []}]
  if ('object' in prepared) return [entry, {object: options.wants(entry) ? prepared.object : undefined, rules: prepared.modifiedBy}]
  return [entry, {problem: 'rules' in prepared ? `${entry.kind} ${entry.name}: ${prepared.error}.` : undefined, rules: prepared.rules ?? []}]
}

/** The warning for modifier rules that changed none of the objects to restore, if any. */
function unusedRules(modifiers: ResourceModifiers, used: Set<number>, sourceNamespace: string): string[] {
  const unused = modifiers.rules.filter((r) => !used.has(r.index)).map((r) => `resourceModifierRules[${r.index}]`)
  return unused.length === 0 ? [] : [`${unused.join(', ')} in ${modifiers.file} ${unused.length === 1 ? 'changes' : 'change'} none of the objects to restore; check the conditions (groupResource is spelt resource.group as in deployments.apps, namespaces are the archive's: ${sourceNamespace}).`]
}
