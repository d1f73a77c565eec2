/**
 * Listing the archives of a directory for `kubesnap list` (and prune): one row
 * per final archive, from its name, size, trailer and manifest only.
 */
import {dirname} from 'node:path'
import {ArchiveError, type ArchiveProblem} from './errors.js'
import {snapshotStatus, type SnapshotStatus} from './manifest.js'
import {listArchiveFiles, nameMismatch, trueArchiveName, type ArchiveFile} from './naming.js'
import {openArchiveSummary} from './reader.js'
import {archiveSize} from './store.js'

interface ListingBase {
  path: string
  file: string
  namespace: string
  number: number
  /** Start of the snapshot, from the file name (to the second). */
  time: Date
  /** Size of the file in bytes. */
  fileSize: number
}

/** One archive in a listing: its counts, or why they could not be read (a damaged file does not hide the others). */
export type ArchiveListing =
  | (ListingBase & {
      ok: true
      /** `partial` when something the snapshot was meant to store is missing (snapshotStatus). */
      status: SnapshotStatus
      startedAt: string
      finishedAt: string
      objects: number
      crds: number
      volumes: number
      dumps: number
      /** Stored bytes of all volumes and dumps. */
      streamBytes: number
      encrypted: boolean
      skipped: number
      warnings: number
    })
  | (ListingBase & {ok: false; problem: ArchiveProblem | 'unreadable'; error: string})

/** Lists the final archives in a directory (optionally one namespace's), by namespace then number. */
export async function listArchives(dir: string, options: {namespace?: string} = {}): Promise<ArchiveListing[]> {
  const listings: ArchiveListing[] = []
  // One at a time: each costs a few small reads, and hundreds of archives must not exhaust file descriptors.
  for (const {path, file, namespace, number, time} of await listArchiveFiles(dir, options.namespace)) {
    const base = {path, file, namespace, number, time, fileSize: 0}
    try {
      // The entries are counted as they are read, not kept: a manifest of 10,000 of them is 3.5 MB of JSON.
      const {manifest, fileSize, counts, streamBytes} = await openArchiveSummary(path)
      base.fileSize = fileSize
      const mismatch = nameMismatch({namespace, number}, manifest)
      if (mismatch) {
        listings.push({...base, ok: false, problem: 'name mismatch', error: renamedArchiveMessage(path, mismatch, manifest)})
        continue
      }
      listings.push({
        ...base,
        ok: true,
        status: snapshotStatus(manifest),
        startedAt: manifest.startedAt,
        finishedAt: manifest.finishedAt,
        objects: counts.object,
        crds: counts.crd,
        volumes: counts.volume,
        dumps: counts.dump,
        streamBytes,
        encrypted: manifest.encrypted,
        skipped: manifest.skipped.length,
        warnings: manifest.warnings.length,
      })
    } catch (err) {
      // The size of what could not be opened is asked for only then (a file's stat, an object's HEAD).
      base.fileSize = (await archiveSize(path).catch(() => undefined)) ?? 0
      listings.push({...base, ok: false, problem: err instanceof ArchiveError ? err.problem : 'unreadable', error: (err as Error).message})
    }
  }
  return listings
}

/** The sentence for an archive whose name disagrees with its manifest (see nameMismatch): what it is and what to do. */
export function renamedArchiveMessage(path: string, mismatch: string, manifest: {namespace: string; number: number; startedAt: string}): string {
  const name = trueArchiveName(manifest)
  return `${path} ${mismatch}; it was renamed or copied in by hand: ${name ? `rename it to ${name}` : 'remove it'} or move it out of ${dirname(path)}.`
}

/**
 * What prune must know of each archive before it plans, from its manifest:
 * the archives whose name disagrees with it (left alone, with the message
 * `list` gives), and the partial ones (retention always keeps the newest
 * complete snapshot, so a run of partial ones never removes it).
 */
export async function pruneFacts(files: readonly ArchiveFile[]): Promise<{misnamed: Array<{file: string; error: string}>; partial: Set<string>}> {
  const misnamed: Array<{file: string; error: string}> = []
  const partial = new Set<string>()
  for (const f of files) {
    const manifest = await openArchiveSummary(f.path).then((a) => a.manifest, () => undefined)
    const mismatch = manifest && nameMismatch(f, manifest)
    if (mismatch) misnamed.push({file: f.file, error: renamedArchiveMessage(f.path, mismatch, manifest)})
    if (manifest && snapshotStatus(manifest) === 'partial') partial.add(f.file)
  }
  return {misnamed, partial}
}
