/**
 * The snapshot pipeline: one namespace into one archive. Its phases, in order:
 * discover the types to list, list every object into the archive (objects.ts),
 * run the application dumps, take the claims' data between the pre- and
 * post-hooks (volumes.ts, hooks.ts), and finish the archive with what was left
 * out and why (summary.ts). The command opens the archive, shows the phases
 * and renders the result.
 */
import type {ArchiveWriter} from '../archive/writer.js'
import type {EntrySink} from '../archive/sink.js'
import type {KubeApi} from '../cluster/api.js'
import {runDump} from '../dumps/index.js'
import {KubesnapError} from '../errors.js'
import {formatBytes} from '../format.js'
import {letYoungGenerationGrow} from '../heap.js'
import type {SnapshotSettings} from '../plan/settings.js'
import {withHooks} from './hooks.js'
import {storeObjects} from './objects.js'
import type {SnapshotProgress} from './progress.js'
import {snapshotReport, summarizeSnapshot, unverifiedNamespaceError, type SnapshotResult} from './summary.js'
import {takeVolumes, type VolumesResult} from './volumes.js'

/** The archive a snapshot goes into: where entries go, and how it ends. The archive writer is one. */
export type SnapshotArchive = EntrySink & Pick<ArchiveWriter, 'number' | 'startedAt' | 'path' | 'state' | 'finish' | 'abort'>

/** The cluster side: the API client, the namespace, and the server's URL for messages. */
export interface SnapshotConnection {
  api: KubeApi
  namespace: string
  server: string
}

export interface TakeOptions {
  /** Types listed at once (default 2). */
  concurrency?: number
  /** Attempts per volume stream (default 3). */
  volumeAttempts?: number
  /**
   * The run's stop signal (interruptOnSignals): when it aborts, the archive
   * is discarded at once, helper pods are deleted, the copy under way stops,
   * the post-hooks run, and takeSnapshot throws the signal's reason.
   */
  signal?: AbortSignal
}

/**
 * Takes one snapshot of `connection.namespace` into `archive` and finishes it;
 * on any failure the archive is discarded (no half-written archive ever gets
 * its final name). Returns what was stored, left out and warned about.
 */
export async function takeSnapshot(connection: SnapshotConnection, settings: SnapshotSettings, archive: SnapshotArchive, progress: SnapshotProgress, options: TakeOptions = {}): Promise<SnapshotResult> {
  const {api, namespace} = connection
  const {signal} = options
  // The temporary file and the lock go at once, whatever the phase under way is still waiting for.
  const discard = () => void archive.abort()
  signal?.addEventListener('abort', discard, {once: true})
  try {
    signal?.throwIfAborted()
    const listed = await storeObjects({...connection, archive, settings, progress, concurrency: options.concurrency, signal})
    await storeDumps(connection, settings, archive, progress, signal)
    const volumes = await withHooks({api, namespace, hooks: settings.dumps, progress, signal}, async (): Promise<VolumesResult> => {
      if (listed.claims.length === 0) return {skipped: [], warnings: [], volumeSnapshots: 0}
      // The objects are stored: from here the CPU per GiB of the copy outweighs the young generation's MiB.
      letYoungGenerationGrow()
      return progress.phase('Copy volume data', (report) => takeVolumes({
        api, namespace, archive, volumes: settings.volumes, output: settings.output, attempts: options.volumeAttempts, signal,
      }, listed.claims, report))
    })
    const manifest = await progress.phase('Finish the archive', async (report) => {
      const unverified = unverifiedNamespaceError({namespace, exists: listed.exists, objects: listed.objects, narrowed: Boolean(settings.selector || settings.includeKinds?.length)})
      if (unverified) throw new KubesnapError(unverified)
      const finished = await archive.finish(snapshotReport({...listed, volumes}))
      report.title = `Wrote ${finished.path}`
      return finished.manifest
    })
    return summarizeSnapshot(manifest, {path: archive.path, apiRequests: api.requests, volumeSnapshots: volumes.volumeSnapshots})
  } catch (err) {
    await archive.abort()
    throw signal?.aborted ? signal.reason : err
  } finally {
    signal?.removeEventListener('abort', discard)
  }
}

/** Runs each application dump into the archive (a phase, when there are any). */
async function storeDumps(connection: SnapshotConnection, settings: SnapshotSettings, archive: SnapshotArchive, progress: SnapshotProgress, signal?: AbortSignal): Promise<void> {
  const {dumps} = settings.dumps
  if (dumps.length === 0) return
  await progress.phase(`Run ${dumps.length} application dump(s)`, async (report) => {
    for (const dump of dumps) {
      // Named, never shown: a command line may hold credentials.
      report.output = `${dump.name}: running`
      const entry = await runDump(connection.api, connection.namespace, dump, archive, {signal})
      report.output = `${dump.name}: ${formatBytes(entry.rawSize)} (${formatBytes(entry.size)} stored)`
    }
    report.title = `Stored ${dumps.length} application dump(s)`
  })
}
