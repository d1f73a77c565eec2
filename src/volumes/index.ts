/**
 * Volume data for a snapshot. One claim goes: the running container that
 * mounts it (else a helper pod) → `tar cf -` over exec → archive entry
 * `volumes/<claim>/part-*.tar.gz`, checked end to end (tar-out.ts). The CSI
 * strategy (csi.ts) takes VolumeSnapshots instead and records them.
 */
import type {StreamEntry} from '../archive/manifest.js'
import type {EntrySink} from '../archive/sink.js'
import type {KubeApi} from '../cluster/api.js'
import {EXIT, KubesnapError} from '../errors.js'
import {ClaimCopyError} from './failure.js'
import {HelperPods} from './helper.js'
import {identityOfClaim, type IdentityWorkload} from './identity.js'
import {chooseMount, mountsOfClaim, nodeOfClaimUsers, type PodLike} from './mounts.js'
import {NoTarError, streamVolumeOut, UnreadableFilesError, type TarSource} from './tar-out.js'

export {DEFAULT_HELPER_IMAGE, HELPER_LABELS, HelperPods} from './helper.js'
export {snapshotClaimsCsi, type CsiResult} from './csi.js'
export {ClaimCopyError, decideClaimFailure, type ClaimFailureContext, type ClaimFailureDecision} from './failure.js'
export type {PodLike} from './mounts.js'

/** How volume data is taken: streamed into the archive, left in the cluster as VolumeSnapshots, or not at all. */
export const VOLUME_STRATEGIES = ['tar', 'csi', 'none'] as const
export type VolumeStrategy = (typeof VOLUME_STRATEGIES)[number]

/** The parts of a PersistentVolumeClaim read here. */
export interface ClaimObject {
  metadata?: {name?: string}
  spec?: {accessModes?: string[]; volumeName?: string}
  status?: {phase?: string}
}

/** Whether a claim has data to copy: it is bound to a volume. */
export function isBound(claim: ClaimObject): boolean {
  return claim.status?.phase === 'Bound' && Boolean(claim.spec?.volumeName)
}

/** The namespace's pods, as the API returns them. */
export async function listPods(api: KubeApi, namespace: string): Promise<PodLike[]> {
  const pods: PodLike[] = []
  let token: string | undefined
  do {
    const page = await api.get<{items?: PodLike[]; metadata?: {continue?: string}}>(`/api/v1/namespaces/${namespace}/pods`, {query: {limit: 500, continue: token}})
    pods.push(...(page.items ?? []))
    token = page.metadata?.continue || undefined
  } while (token)
  return pods
}

export interface CopyVolumeOptions {
  api: KubeApi
  namespace: string
  claim: string
  /** The namespace's pods (listPods), to find who mounts the claim. */
  pods: PodLike[]
  /** The namespace's workloads: when no pod mounts the claim, a helper runs as their template does. */
  workloads?: IdentityWorkload[]
  sink: EntrySink
  helpers: HelperPods
  /** Attempts per stream (default 3). */
  attempts?: number
  retryDelayMs?: (attempt: number) => number
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
  /** Told what is happening: which pod, a helper starting, a retry. */
  onStatus?: (line: string) => void
}

export interface CopyVolumeResult {
  entry: StreamEntry
  source: TarSource
  /** Why a helper pod was used, when one was. */
  helperReason?: string
  /** What the run should warn about: a helper that could not run as the application does. */
  warnings: string[]
}

/**
 * Copies one claim's files into the archive: out of a running container that
 * mounts the whole volume when there is one with sh and tar, else out of a
 * helper pod (deleted afterwards, also on failure).
 */
export async function copyVolume(options: CopyVolumeOptions): Promise<CopyVolumeResult> {
  const {claim} = options
  const stream = (source: TarSource) => streamVolumeOut({
    api: options.api,
    namespace: options.namespace,
    claim,
    source,
    sink: options.sink,
    attempts: options.attempts,
    retryDelayMs: options.retryDelayMs,
    signal: options.signal,
    onProgress: options.onProgress,
    onRetry: (attempt, reason) => options.onStatus?.(`attempt ${attempt} failed, streaming again: ${reason}`),
  })

  const mounts = mountsOfClaim(options.pods, claim)
  const mount = chooseMount(mounts)
  let helperReason: string
  if (mount) {
    const source: TarSource = {pod: mount.pod, container: mount.container, mountPath: mount.mountPath, helper: false}
    options.onStatus?.(`tar of ${mount.mountPath} in pod ${mount.pod}, container ${mount.container}`)
    try {
      return {entry: await stream(source), source, warnings: []}
    } catch (err) {
      if (err instanceof UnreadableFilesError && options.helpers.asRoot) {
        helperReason = `container ${mount.container} of pod ${mount.pod} cannot read ${err.paths.length} of its files`
      } else if (err instanceof NoTarError) {
        helperReason = `container ${mount.container} of pod ${mount.pod} cannot run sh and tar`
      } else {
        throw copyFailed(claim, err)
      }
    }
  } else {
    helperReason = mounts.length === 0 ? 'no pod mounts it'
      : mounts.every((m) => m.subPath) ? 'its pods mount only sub-paths of it'
        : 'no pod that mounts it is running'
  }

  options.onStatus?.(`starting a helper pod (${options.helpers.image}): ${helperReason}`)
  const app = identityOfClaim(claim, {pods: options.pods, workloads: options.workloads})
  const helper = await options.helpers.start(claim, nodeOfClaimUsers(mounts), {app})
  try {
    const source: TarSource = {pod: helper.name, container: helper.container, mountPath: helper.mountPath, helper: true, runsAs: helper.runsAs}
    options.onStatus?.(`tar of ${helper.mountPath} in helper pod ${helper.name}, as ${helper.runsAs}`)
    try {
      return {entry: await stream(source), source, helperReason, warnings: helper.warnings}
    } catch (err) {
      if (err instanceof NoTarError) {
        throw new KubesnapError(`The helper image ${options.helpers.image} has no sh or tar, so claim ${claim} cannot be copied; pass an image that has both (such as busybox) with --helper-image.`, {exit: EXIT.failed, cause: err})
      }
      throw copyFailed(claim, err)
    }
  } finally {
    await options.helpers.remove(helper.name)
  }
}

function copyFailed(claim: string, err: unknown): KubesnapError {
  if (err instanceof KubesnapError) return err
  if (err instanceof UnreadableFilesError) {
    return new ClaimCopyError(claim, err.message, `Could not copy the data of claim ${claim}: ${err.message}; nothing of it is stored as complete. Run the copy as those files' owner (set runAsUser on the workload that mounts the claim), or with --helper-as-root where the namespace's policy allows root (Pod Security baseline).`, {cause: err})
  }
  const reason = (err as Error).message.replace(/\.$/, '')
  return new ClaimCopyError(claim, reason, `Could not copy the data of claim ${claim}: ${reason}; run the snapshot again, or leave volume data out with --volumes none.`, {cause: err})
}
