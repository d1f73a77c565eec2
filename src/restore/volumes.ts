/**
 * Puts volume data back. One claim goes: archive entry → (checked for members
 * that leave the mount, before any write) → the claim Bound → its writer
 * scaled to 0 → a helper pod that mounts it read-write → `tar xf -` over exec
 * → helper deleted → writer scaled back. With --live the data goes into the
 * running pod that mounts the claim instead, and the workload is restarted
 * afterwards (restart.ts).
 */
import {formatBytes} from '../format.js'
import {PassThrough} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'
import {isFailure, type Manifest, type ObjectEntry, type StreamEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {verifyArchive, type VerifyResult} from '../archive/verify.js'
import {isStatus, type KubeApi} from '../cluster/api.js'
import {KubesnapError, messageOf} from '../errors.js'
import {matchesLabels, type LabelSelector} from '../resources/label-selector.js'
import type {HelperPods} from '../volumes/helper.js'
import {pendingClaimReason} from '../volumes/pending.js'
import {isManagedByKubesnap, SNAPSHOT_NUMBER_LABEL} from '../labels.js'
import {listPods} from '../volumes/index.js'
import {chooseMount, mountsOfClaim, nodeOfClaimUsers} from '../volumes/mounts.js'
import {identityOfClaim, type IdentityWorkload} from '../volumes/identity.js'
import {fixUpMembers, ownersNotKept, type FileOwner, type MemberMode, type SymlinkOwner, scanVolumeTar, streamVolumeIn, type CanonicalDigest, type MemberOwner, type TarScanResult, type VolumeMode} from '../volumes/tar-in.js'
import {mountsClaim, workloadKey, workloadPath, type WorkloadObject, type WorkloadRef} from '../volumes/workloads.js'
import {scaleCommand} from './result.js'

/** How a volume's data is put back: streamed from the archive, from VolumeSnapshots (csi), or not at all. */
export const VOLUME_RESTORE_STRATEGIES = ['tar', 'csi', 'none'] as const

/** The volume entries of the claims the restore puts back (selectedClaims). */
export function volumeEntriesOf(reader: ArchiveReader, claims: readonly string[]): StreamEntry[] {
  const wanted = new Set(claims)
  return reader.manifest.entries.filter((e): e is StreamEntry => e.type === 'volume' && wanted.has(e.name))
}

/** A claim the restore re-creates without data, and why the archive holds none. */
export interface ClaimWithoutData {
  claim: string
  /** The snapshot's reason, from the manifest's skipped list. */
  reason: string
  /** The snapshot meant to copy it and could not (a partial snapshot), rather than leaving it out on purpose. */
  failed: boolean
}

/**
 * The claims among `claims` whose data this archive does not hold (no volume
 * entry, and no VolumeSnapshot the csi strategy recorded): the restore
 * re-creates them empty, and says so with the snapshot's reason.
 */
export function claimsWithoutData(manifest: Pick<Manifest, 'entries' | 'skipped'>, claims: readonly string[], snapshots: ReadonlySet<string> = new Set()): ClaimWithoutData[] {
  const stored = new Set(manifest.entries.filter((e) => e.type === 'volume').map((e) => e.name))
  return claims.filter((c) => !stored.has(c) && !snapshots.has(c)).map((claim) => {
    const skipped = manifest.skipped.find((s) => s.resource === 'persistentvolumeclaims' && s.name === claim)
    return {claim, reason: skipped?.reason ?? 'the snapshot stored no data for it', failed: skipped !== undefined && isFailure(skipped)}
  })
}

/** How many bytes a claim can hold, and where that figure comes from (`its capacity in the cluster`, `its archived request`). */
export interface ClaimCapacity {
  bytes: number
  from: string
}

/**
 * The room each claim will have: an existing claim's capacity (or request),
 * else the request of the claim the archive re-creates. Claims with neither
 * are left out (nothing to compare with).
 */
export async function claimCapacities(api: KubeApi, reader: ArchiveReader, entries: ObjectEntry[], claims: readonly string[], namespace: string, namespaceExists: boolean): Promise<Map<string, ClaimCapacity>> {
  type Claim = {spec?: {resources?: {requests?: {storage?: string}}}; status?: {capacity?: {storage?: string}}}
  const capacities = new Map<string, ClaimCapacity>()
  for (const claim of claims) {
    let live: Claim | undefined
    if (namespaceExists) {
      try {
        live = await api.get<Claim>(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${encodeURIComponent(claim)}`)
      } catch (err) {
        if (!isStatus(err, 404)) throw err
      }
    }
    if (live) {
      const bytes = quantityBytes(live.status?.capacity?.storage ?? live.spec?.resources?.requests?.storage)
      if (bytes > 0) capacities.set(claim, {bytes, from: 'its capacity in the cluster'})
      continue
    }
    const archived = entries.find((e) => e.group === '' && e.resource === 'persistentvolumeclaims' && e.name === claim)
    if (!archived) continue
    const stored = JSON.parse((await reader.readObject(archived)).toString('utf8')) as Claim
    const bytes = quantityBytes(stored.spec?.resources?.requests?.storage)
    if (bytes > 0) capacities.set(claim, {bytes, from: 'its archived request'})
  }
  return capacities
}

/** A volume the scan approved: its archived owners, and the canonical stream restore sends for it. */
export interface ApprovedVolume {
  owners: MemberOwner[]
  canonical: CanonicalDigest
  /** Symlinks whose archived owner is not root: a root helper gives it to them after the copy. */
  symlinkOwners: SymlinkOwner[]
  /** The archived mount root, to compare with the one the claim ends up with. */
  root?: FileOwner
  /** Every other directory's archived mode: a copy by anyone but root sets them after tar. */
  dirModes: MemberMode[]
}

/** What the scan of the archived volumes found: one problem sentence per refused volume, and each approved volume. */
export interface VolumeArchiveCheck {
  problems: string[]
  approved: Map<string, ApprovedVolume>
}

/**
 * Refuses hostile archives before the first write: reads each volume's tar
 * stream, re-encoding it as it will be sent, and returns one problem sentence
 * per volume with a member that would land outside its mount, that tars read
 * differently (or that cannot be read), and for each approved volume its
 * owners (to tell, after the copy, which could not keep theirs) and the
 * length and sha256 of the canonical stream the pod must receive.
 */
export async function checkVolumeArchives(reader: ArchiveReader, entries: StreamEntry[], capacities: Map<string, ClaimCapacity> = new Map(), scanned: Map<string, VolumeScan> = new Map()): Promise<VolumeArchiveCheck> {
  const problems: string[] = []
  const approved = new Map<string, ApprovedVolume>()
  for (const entry of entries) {
    try {
      // Scanned as the archive was verified (verifyWithVolumeScans), or read here.
      const earlier = scanned.get(entry.name)
      if (earlier && 'error' in earlier) throw earlier.error
      const scan = earlier ?? await scanVolumeTar(reader.readStream(entry))
      if (scan.unsafe) problems.push(`Volume ${entry.name}: the member ${JSON.stringify(scan.unsafe.path)} is refused (${scan.unsafe.reason}); this archive cannot be restored safely: restore from another snapshot, or leave volumes out with --volumes none.`)
      else if (scan.canonical) approved.set(entry.name, {owners: scan.owners, canonical: scan.canonical, symlinkOwners: scan.symlinkOwners, dirModes: scan.dirModes, ...(scan.root ? {root: scan.root} : {})})
      const capacity = capacities.get(entry.name)
      if (capacity && scan.contentBytes > capacity.bytes) {
        problems.push(`Volume ${entry.name}: its files hold ${formatBytes(scan.contentBytes)}, more than the ${formatBytes(capacity.bytes)} of claim ${entry.name} (${capacity.from}), so the copy would fill the volume; create the claim with more room first (restore keeps an existing claim), or leave volumes out with --volumes none.`)
      }
    } catch (err) {
      problems.push(`Volume ${entry.name}: ${messageOf(err)}; restore from another snapshot, or leave volumes out with --volumes none.`)
    }
  }
  return {problems, approved}
}

/** A volume's scan: what scanVolumeTar found, or why its stream could not be read. */
export type VolumeScan = TarScanResult | {error: unknown}

/**
 * Verifies the whole archive (verifyArchive, every byte before the first
 * write) and scans the tar streams of `entries` in the same read: each part
 * is decrypted, decompressed and scanned as verify hashes it, so each volume
 * is read once, not once to verify and again to scan. The scans are only
 * worth anything when the result is ok: checkVolumeArchives takes them.
 */
export async function verifyWithVolumeScans(reader: ArchiveReader, entries: StreamEntry[]): Promise<{verified: VerifyResult; scans: Map<string, VolumeScan>}> {
  const parts = new Map(entries.flatMap((entry) => entry.parts.map((part, index) => [part.path, {entry, index}] as const)))
  const scans = new Map<string, VolumeScan>()
  let open: {entry: StreamEntry; next: number; input: PassThrough; scan: Promise<VolumeScan>} | undefined
  // A part out of place ends the volume's scan (verify names the damage).
  const abandon = () => {
    open?.input.destroy()
    open = undefined
  }
  const verified = await verifyArchive(reader.path, {
    content: (path) => {
      const part = parts.get(path)
      if (!part) return undefined
      if (part.index === 0) {
        abandon()
        const input = new PassThrough()
        const scan = scanVolumeTar(reader.decodeStream(part.entry, input)).catch((error: unknown) => ({error}))
        open = {entry: part.entry, next: 0, input, scan}
      }
      const volume = open
      if (!volume || volume.entry !== part.entry || volume.next !== part.index) {
        abandon()
        return undefined
      }
      volume.next++
      return {
        write: (chunk) => writeOrSkip(volume.input, chunk),
        end: async () => {
          if (volume.next < part.entry.parts.length) return
          volume.input.end()
          scans.set(part.entry.name, await volume.scan)
          open = undefined
        },
      }
    },
  })
  abandon()
  return {verified, scans}
}

/** Writes a chunk and waits until the stream takes more; a stream its reader gave up on (a refused member) takes everything. */
async function writeOrSkip(stream: PassThrough, chunk: Buffer): Promise<void> {
  if (stream.destroyed || stream.write(chunk)) return
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done).off('close', done)
      resolve()
    }
    stream.on('drain', done).on('close', done)
  })
}

/** The StatefulSets and Deployments among the entries to restore, parsed: helpers run as their templates do when nothing runs yet. */
export async function archivedWorkloads(reader: ArchiveReader, entries: ObjectEntry[]): Promise<IdentityWorkload[]> {
  const workloads: IdentityWorkload[] = []
  for (const entry of entries.filter((e) => e.group === 'apps' && (e.resource === 'statefulsets' || e.resource === 'deployments'))) {
    workloads.push(JSON.parse((await reader.readObject(entry)).toString('utf8')) as IdentityWorkload)
  }
  return workloads
}

/** A workload scaled to 0 around the copy, and how putting it back went. */
export interface ScaledWorkload extends WorkloadRef {
  replicas: number
  /** Whether it is back at `replicas` (unset in a dry run). */
  scaledBack?: boolean
  /** When it is left at 0: why, and the command that puts it back. */
  error?: string
  command?: string
}

/** What restore does with one volume. */
export interface VolumePlan {
  claim: string
  entry: StreamEntry
  bytes: number
  /** `helper` (a pod kubesnap starts), or the running pod written into with --live. */
  target: {type: 'helper'} | {type: 'live'; pod: string; container: string; mountPath: string}
  /** The StatefulSet or Deployment that writes the claim and runs now: scaled to 0 around the copy (not with --live). */
  owner?: WorkloadRef & {replicas: number}
}

/** Plans each volume against what runs now; reads only. */
export async function planVolumes(api: KubeApi, namespace: string, entries: StreamEntry[], options: {live: boolean; workloads: Array<WorkloadRef & {object: WorkloadObject}>}): Promise<VolumePlan[]> {
  const pods = entries.length > 0 ? await listPods(api, namespace) : []
  return entries.map((entry) => {
    const claim = entry.name
    const owner = options.workloads.find((w) => mountsClaim(w.kind, w.object, claim))
    const replicas = owner?.object.spec?.replicas ?? 0
    const base = {claim, entry, bytes: entry.rawSize, ...(owner && replicas > 0 ? {owner: {kind: owner.kind, name: owner.name, replicas}} : {})}
    if (!options.live) return {...base, target: {type: 'helper'}}
    // --live: nothing is scaled; the workload restarts afterwards (restart.ts).
    const {owner: _running, ...live} = base
    const mount = chooseMount(mountsOfClaim(pods, claim).filter((m) => !m.readOnly))
    return mount
      ? {...live, target: {type: 'live', pod: mount.pod, container: mount.container, mountPath: mount.mountPath}}
      : {...live, target: {type: 'helper'}}
  })
}

/** How one volume went. */
export interface VolumeOutcome {
  claim: string
  bytes: number
  action: 'restored' | 'planned' | 'failed'
  /** `helper` or `live pod/container`. */
  target: string
  /** The workload scaled to 0 and back around the copy. */
  scaled?: ScaledWorkload
  verified?: string
  seconds?: number
  error?: string
  /** --volumes csi: the VolumeSnapshot the claim was re-created from. */
  snapshot?: string
  /** Who the helper ran as, in words. */
  runsAs?: string
  /** The copy into the claim began (its data was changed, even if it then failed). */
  copyStarted?: boolean
  /** What the restore could not do as archived (owners it could not keep, a helper that could not run as the application does). */
  warnings?: string[]
}

export interface RestoreVolumesOptions {
  api: KubeApi
  namespace: string
  reader: ArchiveReader
  plans: VolumePlan[]
  helpers: HelperPods
  mode: VolumeMode
  timeoutMs: number
  /** Each volume checkVolumeArchives approved: only these are sent, re-encoded as scanned. */
  approved: Map<string, ApprovedVolume>
  /** The workloads the archive holds: a helper runs as the one whose template mounts its claim, when no live pod or workload does. */
  archivedWorkloads?: IdentityWorkload[]
  /** The live workloads, read before the restore. */
  workloads?: IdentityWorkload[]
  signal?: AbortSignal
  onStatus?: (line: string) => void
}

/**
 * Restores the planned volumes, writer by writer: each writer is scaled to 0
 * once, its claims are reloaded, and it is scaled back on every path (done,
 * failed, timed out, interrupted): a workload left at 0 is an outage nobody
 * asked for. Its volume outcomes say what data it starts on; when the scale
 * back fails, its `scaled` record names the `kubectl scale` command to run.
 * A failed volume is reported and the others go on.
 */
export async function restoreVolumes(options: RestoreVolumesOptions): Promise<VolumeOutcome[]> {
  const outcomes: VolumeOutcome[] = []
  const groups = new Map<string, VolumePlan[]>()
  for (const plan of options.plans) {
    const key = plan.owner ? workloadKey(plan.owner) : `claim/${plan.claim}`
    groups.set(key, [...(groups.get(key) ?? []), plan])
  }
  const interrupted = () => options.signal?.aborted === true
  const notStarted = (plan: VolumePlan, error: string): VolumeOutcome => ({claim: plan.claim, bytes: plan.bytes, action: 'failed', target: 'helper', error})
  for (const plans of groups.values()) {
    if (interrupted()) {
      for (const plan of plans) outcomes.push(notStarted(plan, `not restored: ${interruption(options.signal)} before this claim`))
      continue
    }
    const owner = plans[0].owner
    let scaled: ScaledWorkload | undefined
    const mine: VolumeOutcome[] = []
    try {
      if (owner) {
        try {
          options.onStatus?.(`scaling ${workloadKey(owner)} to 0`)
          scaled = await scaleDown(options.api, options.namespace, owner, plans.map((p) => p.claim), options.timeoutMs, options.signal, (s) => (scaled = s))
        } catch (err) {
          for (const plan of plans) mine.push(notStarted(plan, interrupted() ? `not restored: ${interruption(options.signal)} while ${workloadKey(owner)} was scaled down` : messageOf(err)))
          continue
        }
      }
      for (const plan of plans) {
        mine.push(interrupted()
          ? notStarted(plan, `not restored: ${interruption(options.signal)} before this claim`)
          : await restoreOneVolume(options, plan))
      }
    } finally {
      if (scaled) {
        for (const o of mine) o.scaled = scaled
        await scaleBack(options, scaled, mine)
      }
      outcomes.push(...mine)
    }
  }
  return outcomes
}

/** Puts a workload scaled down for its claims back to its replicas, and records how that went on it and on its claims' outcomes. */
async function scaleBack(options: RestoreVolumesOptions, scaled: ScaledWorkload, outcomes: VolumeOutcome[]): Promise<void> {
  const failed = outcomes.filter((o) => o.action === 'failed')
  try {
    options.onStatus?.(`scaling ${workloadKey(scaled)} back to ${scaled.replicas}`)
    await setReplicas(options.api, options.namespace, scaled, scaled.replicas)
    scaled.scaledBack = true
    for (const o of failed) o.error += `; ${workloadKey(scaled)} was scaled back to ${scaled.replicas} on the claim's data as it is now`
  } catch (err) {
    scaled.scaledBack = false
    scaled.command = scaleCommand(options.namespace, scaled, scaled.replicas)
    scaled.error = `${workloadKey(scaled)} is left at 0 replicas (it had ${scaled.replicas}): scaling it back failed (${messageOf(err).replace(/\.$/, '')}); run \`${scaled.command}\``
    for (const o of outcomes) o.error = `${o.error ?? 'restored'}; ${scaled.error}`
  }
}

/** `uid:gid mode 2770`, for messages. */
function describeOwner(o: FileOwner): string {
  return `${o.uid}:${o.gid} mode ${o.mode.toString(8).padStart(4, '0')}`
}

/** What stopped the restore, from its AbortSignal's reason (`interrupted by SIGTERM`). */
function interruption(signal: AbortSignal | undefined): string {
  const reason = signal?.reason
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'the restore was interrupted'
}

async function restoreOneVolume(options: RestoreVolumesOptions, plan: VolumePlan): Promise<VolumeOutcome> {
  const {api, namespace, claim} = {...options, claim: plan.claim}
  const started = Date.now()
  const outcome: VolumeOutcome = {claim, bytes: plan.bytes, action: 'failed', target: plan.target.type === 'live' ? `live ${plan.target.pod}/${plan.target.container}` : 'helper'}
  const warnings: string[] = []
  let helper: string | undefined
  try {
    const approved = options.approved.get(claim)
    if (!approved) throw new KubesnapError(`its data was not scanned before the restore, so it is not sent`)
    await waitBound(api, namespace, claim, Math.min(options.timeoutMs, 30_000), options.onStatus)
    let target = plan.target.type === 'live' ? plan.target : undefined
    if (!target) {
      // Beside any pod that still mounts it (a ReadWriteOnce volume attaches to one node); else where the volume lives.
      const pods = await listPods(api, namespace)
      const node = nodeOfClaimUsers(mountsOfClaim(pods, claim))
      // As the application runs: a pod that mounts the claim, else the live workload, else the one the archive brings.
      const app = identityOfClaim(claim, {pods, workloads: options.workloads})
        ?? identityOfClaim(claim, {workloads: options.archivedWorkloads, workloadsFrom: 'in the archive'})
      options.onStatus?.(`${claim}: starting a helper pod (${options.helpers.image})`)
      const pod = await options.helpers.start(claim, node, {readOnly: false, app})
      helper = pod.name
      outcome.target = `helper ${pod.name}`
      outcome.runsAs = pod.runsAs
      warnings.push(...pod.warnings)
      target = {type: 'live', pod: pod.name, container: pod.container, mountPath: pod.mountPath}
    }
    outcome.copyStarted = true
    const result = await streamVolumeIn({
      api, namespace, claim,
      target,
      stream: options.reader.readStream(plan.entry),
      canonical: approved.canonical,
      mode: options.mode,
      signal: options.signal,
      onProgress: (bytes) => options.onStatus?.(`${claim}: ${formatBytes(bytes)} of ${formatBytes(plan.bytes)}`),
    })
    // What tar leaves undone: as root it owns and chmods all but symlinks (chown -h here); as anyone else it
    // sets no modes, and new directories inherit a setgid parent's bit (an fsGroup volume's): chmod them, deepest first.
    if (result.uid === 0 && approved.symlinkOwners.length > 0) {
      await fixUpMembers({api, namespace, target, command: ['chown', '-h'], members: approved.symlinkOwners.map((l) => ({arg: `${l.uid}:${l.gid}`, path: l.path})), signal: options.signal})
    }
    if (result.uid !== 0 && approved.dirModes.length > 0) {
      await fixUpMembers({api, namespace, target, command: ['chmod'], members: [...approved.dirModes].reverse().map((d) => ({arg: d.mode.toString(8), path: d.path})), signal: options.signal})
    }
    outcome.action = 'restored'
    outcome.verified = result.verified
    const archivedRoot = approved.root
    if (archivedRoot && result.root && describeOwner(result.root) !== describeOwner(archivedRoot)) {
      warnings.push(`The root directory of claim ${claim} is ${describeOwner(result.root)} as the platform made it (its provisioner, fsGroup), not ${describeOwner(archivedRoot)} as archived: a copy as uid ${result.uid ?? '?'} cannot change a directory it does not own; restore with --helper-as-root where the namespace's policy allows it to keep it.`)
    }
    if (result.uid !== undefined) {
      const lost = ownersNotKept(approved.owners, result.uid, result.gids ?? [])
      if (lost.first) {
        warnings.push(`${lost.members} file(s) of claim ${claim} could not keep their archived owner (the first: ${JSON.stringify(lost.first.example)}, uid ${lost.first.uid} gid ${lost.first.gid}) and belong to uid ${result.uid} now, as the copy ran; restore with --helper-as-root where the namespace's policy allows it to keep every owner.`)
      }
    }
  } catch (err) {
    outcome.error = options.signal?.aborted
      ? `${interruption(options.signal)} while its data was copied: the claim holds part of it`
      : `could not restore the data of claim ${claim}: ${messageOf(err).replace(/\.$/, '')}${outcome.copyStarted ? '; the copy had begun, so the claim may hold part of its data: restore again' : ''}`
  } finally {
    if (helper) await options.helpers.remove(helper).catch((err: unknown) => (outcome.error = `${outcome.error ? `${outcome.error}; ` : ''}${messageOf(err)}`))
    outcome.seconds = Math.round((Date.now() - started) / 100) / 10
    if (warnings.length > 0) outcome.warnings = warnings
  }
  return outcome
}

/**
 * Waits for the claim to be Bound. A claim still Pending at the deadline goes
 * on: WaitForFirstConsumer binds when the helper is scheduled. One whose events
 * say it cannot bind (a missing StorageClass) fails within seconds, with why;
 * one whose provisioning failed and may still be retried, at the deadline.
 */
async function waitBound(api: KubeApi, namespace: string, claim: string, timeoutMs: number, onStatus?: (line: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let polls = 0
  for (;;) {
    const pvc = await api.get<{status?: {phase?: string}}>(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${encodeURIComponent(claim)}`)
    const phase = pvc.status?.phase
    if (phase === 'Bound') return
    if (phase === 'Lost') throw new KubesnapError(`the claim ${claim} has lost its volume (phase Lost)`)
    // Every 2 s, and at the deadline: the PV controller records why it cannot provision on the claim's events.
    const late = Date.now() > deadline
    const stuck = ++polls % 4 === 0 || late ? await pendingClaimReason(api, namespace, claim) : undefined
    if (stuck && (stuck.permanent || late)) throw new KubesnapError(stuck.message)
    if (late) return
    onStatus?.(`${claim}: waiting for the claim to be bound (${phase ?? 'no phase yet'})`)
    await sleep(500)
  }
}

/**
 * Scales a writer to 0 and waits until no pod mounts any of `claims`; returns
 * the replicas to scale back to. `onScaled` hears of the scale-down before the
 * PATCH is sent (scaling back is harmless if it never applied), so a timeout,
 * an error or a signal in the wait still scales it back.
 */
async function scaleDown(api: KubeApi, namespace: string, owner: WorkloadRef & {replicas: number}, claims: string[], timeoutMs: number, signal: AbortSignal | undefined, onScaled: (scaled: ScaledWorkload) => void): Promise<ScaledWorkload> {
  const scale = await api.get<{spec?: {replicas?: number}}>(`${workloadPath(namespace, owner)}/scale`)
  const scaled = {kind: owner.kind, name: owner.name, replicas: scale.spec?.replicas ?? owner.replicas}
  onScaled(scaled)
  await setReplicas(api, namespace, owner, 0)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const pods = await listPods(api, namespace)
    const users = claims.flatMap((claim) => mountsOfClaim(pods, claim).map((m) => m.pod))
    if (users.length === 0) return scaled
    if (signal?.aborted) throw new KubesnapError(`${interruption(signal)} while pod ${users[0]} still mounted its claim`)
    if (Date.now() > deadline) {
      throw new KubesnapError(`${workloadKey(owner)} was scaled to 0 but pod ${users[0]} still mounts its claim after ${Math.round(timeoutMs / 1000)} s; check the pod, then restore again`)
    }
    await sleep(500)
  }
}

async function setReplicas(api: KubeApi, namespace: string, ref: WorkloadRef, replicas: number): Promise<void> {
  await api.patch(`${workloadPath(namespace, ref)}/scale`, JSON.stringify({spec: {replicas}}), 'application/merge-patch+json')
}


// ---------------------------------------------------------------------------
// --volumes csi: claims re-created from the VolumeSnapshots the archive recorded

/** A VolumeSnapshot this archive's snapshot run took of a claim (`snapshot --volumes csi`). */
export interface ArchivedClaimSnapshot {
  claim: string
  /** The VolumeSnapshot's name (in the archived namespace). */
  snapshot: string
  /** Its object entry: never re-created as an object (that would snapshot the new, empty claim). */
  entry: ObjectEntry
  uid?: string
  /** status.restoreSize in bytes, when the snapshot recorded one. */
  bytes: number
}

interface StoredVolumeSnapshot {
  metadata?: {name?: string; uid?: string; labels?: Record<string, string>}
  spec?: {source?: {persistentVolumeClaimName?: string}}
  status?: {restoreSize?: string | number; readyToUse?: boolean}
}

/**
 * The VolumeSnapshots the csi strategy took for this archive, by claim: the
 * archived VolumeSnapshot objects labelled with this snapshot's number (older
 * runs' snapshots still in the namespace are ordinary objects of the archive).
 */
export async function archivedClaimSnapshots(reader: ArchiveReader): Promise<Map<string, ArchivedClaimSnapshot>> {
  const found = new Map<string, ArchivedClaimSnapshot>()
  const number = String(reader.manifest.number)
  for (const entry of reader.manifest.entries) {
    if (entry.type !== 'object' || entry.group !== 'snapshot.storage.k8s.io' || entry.resource !== 'volumesnapshots') continue
    const stored = JSON.parse((await reader.readObject(entry)).toString('utf8')) as StoredVolumeSnapshot
    const labels = stored.metadata?.labels ?? {}
    const claim = stored.spec?.source?.persistentVolumeClaimName
    if (!claim || !isManagedByKubesnap(labels) || labels[SNAPSHOT_NUMBER_LABEL] !== number) continue
    found.set(claim, {claim, snapshot: entry.name, entry, uid: stored.metadata?.uid, bytes: quantityBytes(stored.status?.restoreSize)})
  }
  return found
}

/**
 * The claims (PersistentVolumeClaim entries) the restore puts back: kind flags
 * and the label selector apply to a claim's data as to the claim.
 */
export async function selectedClaims(reader: ArchiveReader, objects: ObjectEntry[], selector: LabelSelector): Promise<string[]> {
  const claims: string[] = []
  for (const entry of objects) {
    if (entry.group !== '' || entry.resource !== 'persistentvolumeclaims') continue
    const stored = JSON.parse((await reader.readObject(entry)).toString('utf8')) as {metadata?: {labels?: Record<string, string>}}
    if (matchesLabels(selector, stored.metadata?.labels)) claims.push(entry.name)
  }
  return claims
}

/** What restore --volumes csi does with each claim. */
export interface CsiPlan {
  /** claim → VolumeSnapshot: the claims re-created with `dataSource: VolumeSnapshot`. */
  claimSnapshots: Record<string, string>
  snapshots: ArchivedClaimSnapshot[]
  problems: string[]
  warnings: string[]
}

/**
 * Plans a csi restore; reads only. Each selected claim with an archived
 * VolumeSnapshot is re-created from it, which needs that VolumeSnapshot to
 * still exist (the same one: its uid) in the namespace the claim goes to. A
 * claim that exists already keeps its volume and data (a bound claim's
 * dataSource cannot change).
 */
export async function planCsiRestore(api: KubeApi, options: {
  snapshots: Map<string, ArchivedClaimSnapshot>
  claims: string[]
  sourceNamespace: string
  namespace: string
  namespaceExists: boolean | undefined
  /** Claims with tar data in the archive. */
  tarClaims: Set<string>
}): Promise<CsiPlan> {
  const plan: CsiPlan = {claimSnapshots: {}, snapshots: [], problems: [], warnings: []}
  const fallback = 'restore from a tar snapshot (snapshot --volumes tar)'
  for (const claim of options.claims) {
    const archived = options.snapshots.get(claim)
    if (!archived) {
      plan.warnings.push(`Claim ${claim} has no VolumeSnapshot in this archive: it is re-created empty${options.tarClaims.has(claim) ? ' (the archive holds its data as tar: restore with --volumes tar)' : ''}.`)
      continue
    }
    const name = archived.snapshot
    if (options.namespace !== options.sourceNamespace) {
      plan.problems.push(`VolumeSnapshot ${name} is in namespace ${options.sourceNamespace}, and a claim in ${options.namespace} cannot be created from it: restore into ${options.sourceNamespace}, or ${fallback}.`)
      continue
    }
    if (options.namespaceExists === false) {
      plan.problems.push(`VolumeSnapshot ${name} is gone: the csi strategy keeps data in the cluster, and namespace ${options.namespace} was deleted with it; ${fallback}.`)
      continue
    }
    if (await claimExists(api, options.namespace, claim)) {
      plan.warnings.push(`Claim ${claim} exists already, so it keeps its volume: its data is not restored from VolumeSnapshot ${name} (delete the claim first to restore it).`)
      continue
    }
    const base = `/apis/snapshot.storage.k8s.io/${archived.entry.version}/namespaces/${encodeURIComponent(options.namespace)}`
    let live: StoredVolumeSnapshot
    try {
      live = await api.get<StoredVolumeSnapshot>(`${base}/volumesnapshots/${encodeURIComponent(name)}`)
    } catch (err) {
      if (isStatus(err, 404)) plan.problems.push(`VolumeSnapshot ${name} is gone: the csi strategy keeps data in the cluster; ${fallback}.`)
      else if (isStatus(err, 403)) plan.problems.push(`The identity may not get volumesnapshots.snapshot.storage.k8s.io in ${options.namespace}, so VolumeSnapshot ${name} cannot be checked: add that verb to its Role (see kubesnap rbac).`)
      else plan.problems.push(`VolumeSnapshot ${name} cannot be read (${messageOf(err)}); try again.`)
      continue
    }
    if (archived.uid && live.metadata?.uid && live.metadata.uid !== archived.uid) {
      plan.problems.push(`VolumeSnapshot ${name} was re-created since this archive was taken (its uid changed), so it may not hold the archived data: ${fallback}.`)
      continue
    }
    if (live.status?.readyToUse === false) plan.warnings.push(`VolumeSnapshot ${name} is not ready to use now: claim ${claim} is provisioned once it is.`)
    plan.claimSnapshots[claim] = name
    plan.snapshots.push(archived)
  }
  return plan
}

async function claimExists(api: KubeApi, namespace: string, claim: string): Promise<boolean> {
  try {
    await api.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}/persistentvolumeclaims/${encodeURIComponent(claim)}`)
    return true
  } catch (err) {
    if (isStatus(err, 404)) return false
    throw err
  }
}

/**
 * The outcome of each claim re-created from its VolumeSnapshot, once the
 * objects are applied: planned (dry run), restored (the claim was created with
 * its dataSource; the provisioner fills the volume before the claim binds, and
 * the wait for the workloads that mount it shows when it is ready), or failed
 * with the claim.
 */
export function csiOutcomes(snapshots: ArchivedClaimSnapshot[], claimOutcomes: Map<string, {action: string; error?: string}>, dryRun: boolean): VolumeOutcome[] {
  const outcomes: VolumeOutcome[] = []
  for (const s of snapshots) {
    const created = claimOutcomes.get(s.claim)
    if (!created) continue // left out by the selector
    const base = {claim: s.claim, bytes: s.bytes, target: `csi VolumeSnapshot ${s.snapshot}`, snapshot: s.snapshot}
    if (created.action === 'create') outcomes.push({...base, action: dryRun ? 'planned' : 'restored'})
    else outcomes.push({...base, action: 'failed', error: `the claim ${s.claim} was not created from VolumeSnapshot ${s.snapshot} (${created.action}${created.error ? `: ${created.error}` : ''})`})
  }
  return outcomes
}

/** Bytes of a Kubernetes quantity (`1Gi`, `500M`, `1073741824`); 0 when absent or unreadable. */
export function quantityBytes(quantity: string | number | undefined): number {
  if (typeof quantity === 'number') return quantity
  const match = /^(\d+(?:\.\d+)?)([KMGTPE]i?|k)?$/.exec(quantity ?? '')
  if (!match) return 0
  const powers: Record<string, number> = {k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60}
  return Math.round(Number(match[1]) * (match[2] ? powers[match[2]] : 1))
}
