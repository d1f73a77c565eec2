/**
 * Retention on a directory or bucket: plans which archives each namespace
 * keeps (archive/retention.ts's rules) and deletes the others under the
 * directory lock. Shared by prune and snapshot --prune.
 */
import {KubesnapError, messageOf} from '../errors.js'
import {diskError} from './disk.js'
import {acquireLock, type DirLock} from './lock.js'
import {pruneFacts} from './list.js'
import {listArchiveFiles, type ArchiveFile} from './naming.js'
import {planRetention, type RetentionPolicy} from './retention.js'
import {checkArchiveDir} from './select.js'
import {isS3Url, removeArchive, s3} from './store.js'

/** One archive in a prune plan. */
export interface PruneItem {
  number: number
  file: string
  path: string
  /** Start of the snapshot, from the file name. */
  time: string
}

/** The plan (and, unless a dry run, the outcome) for one namespace. */
export interface NamespacePrune {
  namespace: string
  keep: (PruneItem & {reasons: string[]})[]
  remove: PruneItem[]
}

export interface PruneResult {
  dir: string
  dryRun: boolean
  policy: RetentionPolicy
  namespaces: NamespacePrune[]
  /** Files deleted (empty in a dry run). */
  removed: string[]
  /** Archives whose name disagrees with their manifest: left alone, not counted. */
  misnamed: Array<{file: string; error: string}>
  /** On S3: keys of kubesnap's incomplete multipart uploads older than a day, aborted (none in a dry run). */
  abortedUploads?: string[]
}

/** Incomplete uploads younger than this may belong to a running snapshot; older ones are left by a killed run. */
const STALE_UPLOAD_MS = 24 * 3600 * 1000

/**
 * Plans retention for every namespace in a directory and, unless dryRun,
 * deletes the archives the plan removes while holding the directory lock.
 * Throws LockedError when another run holds the lock, and a KubesnapError
 * naming the files it could not delete (after trying all of them).
 */
export async function pruneDirectory(dir: string, options: {policy: RetentionPolicy; namespace?: string; dryRun: boolean}): Promise<PruneResult> {
  await checkArchiveDir(dir)
  // Listed under the lock: no snapshot can add a file (or take a number) meanwhile.
  // A bucket has no lock: an archive appears there only complete, after this listing, so it cannot be removed.
  const lock: DirLock | undefined = options.dryRun || isS3Url(dir) ? undefined : await acquireLock(dir).catch((err: unknown) => {
    throw diskError(err, dir, 'nothing was pruned') ?? err
  })
  try {
    const files = await listArchiveFiles(dir, options.namespace)
    const {misnamed, partial} = await pruneFacts(files)
    const namespaces = planDirectory(files.filter((f) => !misnamed.some((m) => m.file === f.file)).map((f) => ({...f, partial: partial.has(f.file)})), options.policy)
    const removed: string[] = []
    const failures: string[] = []
    if (!options.dryRun) {
      for (const item of namespaces.flatMap((n) => n.remove)) {
        try {
          await removeArchive(item.path)
          removed.push(item.file)
        } catch (err) {
          // Gone already is what we wanted.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') removed.push(item.file)
          else failures.push(`${item.file} (${messageOf(err)})`)
        }
      }
    }
    if (failures.length > 0) {
      throw new KubesnapError(`Could not delete ${failures.length} archive(s): ${failures.join(', ')}; check the directory's permissions and run prune again.`)
    }
    const result: PruneResult = {dir, dryRun: options.dryRun, policy: options.policy, namespaces, removed, misnamed}
    if (isS3Url(dir) && !options.dryRun) {
      const {abortStaleUploads, removeStaleClaims} = await s3()
      const dayAgo = new Date(Date.now() - STALE_UPLOAD_MS)
      result.abortedUploads = await abortStaleUploads(dir, dayAgo)
      // The listing above serves unless it was one namespace's: claims of any namespace may be stale.
      await removeStaleClaims(dir, options.namespace ? await listArchiveFiles(dir) : files, dayAgo)
    }
    return result
  } finally {
    await lock?.release()
  }
}

/** Groups archive files by namespace and plans each namespace on its own. */
export function planDirectory(files: ReadonlyArray<ArchiveFile & {partial?: boolean}>, policy: RetentionPolicy): NamespacePrune[] {
  const byNamespace = new Map<string, Array<ArchiveFile & {partial?: boolean}>>()
  for (const f of files) byNamespace.set(f.namespace, [...(byNamespace.get(f.namespace) ?? []), f])
  return [...byNamespace].map(([namespace, archives]) => {
    const plan = planRetention(archives, policy)
    const item = (number: number): PruneItem => {
      const a = archives.find((x) => x.number === number)!
      return {number, file: a.file, path: a.path, time: a.time.toISOString()}
    }
    return {
      namespace,
      keep: plan.keep.map((k) => ({...item(k.number), reasons: k.reasons})),
      remove: plan.remove.map(item),
    }
  })
}

/** The human report: per namespace, what is kept and why, and what is (or would be) removed. */
export function formatPrune(result: PruneResult, namespace?: string): string[] {
  if (result.namespaces.length === 0) return [`No kubesnap archives${namespace ? ` of namespace ${namespace}` : ''} in ${result.dir}; nothing to prune.`]
  const lines: string[] = []
  const time = (iso: string) => iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
  const width = Math.max(...result.namespaces.flatMap((n) => [...n.keep, ...n.remove].map((i) => String(i.number).length)))
  for (const ns of result.namespaces) {
    const verb = result.dryRun ? 'would remove' : 'removed'
    lines.push(`${ns.namespace}: keeping ${ns.keep.length}, ${verb} ${ns.remove.length}`)
    const rows = [
      ...ns.keep.map((k) => ({...k, action: 'keep  ', note: k.reasons.join(', ')})),
      ...ns.remove.map((r) => ({...r, action: 'remove', note: ''})),
    ].sort((a, b) => b.number - a.number)
    for (const r of rows) lines.push(`  ${r.action}  ${String(r.number).padStart(width)}  ${time(r.time)}  ${r.file}${r.note ? `  (${r.note})` : ''}`)
  }
  for (const m of result.misnamed) lines.push(`left alone: ${m.error}`)
  if (result.abortedUploads?.length) lines.push(`aborted ${result.abortedUploads.length} incomplete upload(s) older than a day: ${result.abortedUploads.join(', ')}`)
  if (result.dryRun) lines.push('Dry run: nothing was deleted.')
  return lines
}
