import {Args, Flags} from '@oclif/core'
import {verifyArchive, type VerifyResult} from '../archive/verify.js'
import type {ArchiveReader} from '../archive/reader.js'
import {identityFlag, openForContents} from '../encryption.js'
import {openArchive} from '../archive/reader.js'
import {loadPlan} from '../plan/plan.js'
import {checkTrust, readPlanFlag, trustedKeys, trustFlag, type SignatureSummary} from '../signing.js'
import {archiveSelectionFlags, selectArchive} from '../archive/select.js'
import type {ObjectEntry, StreamEntry} from '../archive/manifest.js'
import {KubesnapCommand} from '../base-command.js'
import {createNamespace, discoverResourceTypes, matchType, qualifiedName, type KubeApi, type ResourceType} from '../cluster/index.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {formatBytes} from '../format.js'
import type {ListrTask} from 'listr2'
import {quietFlag, taskList} from '../progress.js'
import {interruptOnSignals, type Interrupt} from '../signals.js'
import type {ExistingPolicy} from '../resources/apply.js'
import {parseLabelSelector} from '../resources/label-selector.js'
import {orderForRestore, restoreRank} from '../resources/priorities.js'
import {checkObjectIdentities} from '../restore/identity.js'
import {checkPreconditions, type Preconditions} from '../restore/preconditions.js'
import {restoreTarget} from '../restore/target.js'
import {restoreResult, type RestoreStatus} from '../restore/result.js'
import {parseStorageClassMap, type StorageClassMap} from '../restore/storage-classes.js'
import {checkTarget} from '../restore/preflight.js'
import {selectResources} from '../restore/resource-names.js'
import {checkModifiedObjects, prepareObject, restoreObjects, type ObjectOutcome, type PrepareOptions} from '../restore/objects.js'
import {loadResourceModifiers, type ResourceModifiers} from '../restore/modifiers.js'
import {
  listWorkloads, parseDuration, planRestarts, restoredChanges, rolloutRestart, waitForRollouts, workloadKey,
  type RestartPlan, type RolloutResult, type WorkloadObject, type WorkloadRef,
} from '../restore/restart.js'
import {
  archivedClaimSnapshots, csiOutcomes, planCsiRestore, selectedClaims, type ArchivedClaimSnapshot,
} from '../restore/volumes.js'
import {
  archivedWorkloads, checkVolumeArchives, claimCapacities, claimsWithoutData, planVolumes, restoreVolumes, verifyWithVolumeScans, volumeEntriesOf, VOLUME_RESTORE_STRATEGIES,
  type ApprovedVolume, type ClaimWithoutData, type VolumeOutcome, type VolumePlan, type VolumeScan,
} from '../restore/volumes.js'
import {DEFAULT_HELPER_IMAGE, HelperPods} from '../volumes/helper.js'
import {VOLUME_MODES, type VolumeMode} from '../volumes/tar-in.js'
import {archivedCommandsNotice, describeDumpLoad, entryTarget, loadableDumps, loadDumps, type DumpOutcome} from '../dumps/index.js'

/** A signal stopped the restore in order, between phases or in the volume copy (which put back what it scaled down). */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.name = 'Interrupted'
  }
}

/** Workloads are created after volume data is back, so they start once, on their data. */
const FIRST_WORKLOAD_RANK = restoreRank('apps', 'statefulsets')

/** What `restore --json` prints. */
export interface RestoreSummary {
  /**
   * `failed`: nothing was written (exit 1); `partial`: something was, and something failed (exit 3);
   * `interrupted`: a signal stopped it (exit 3, or 1 before any write). See restoreResult.
   */
  status: RestoreStatus
  /** What stopped the run before its end (a phase that could not go on, or a signal); the outcomes say how far it got. */
  error?: string
  dryRun: boolean
  archive: string
  sourceNamespace: string
  namespace: string
  namespaceCreated: boolean
  objects: {create: number; update: number; skip: number; conflict: number; failed: number}
  outcomes: ObjectOutcome[]
  /** Volume data: restored, planned (dry run) or failed, per claim. */
  volumes: VolumeOutcome[]
  /** Claims re-created without data: the archive holds none for them (a partial snapshot's failed copies among them). */
  withoutData: ClaimWithoutData[]
  /** Workloads restarted (or, in a dry run, to restart) to pick up restored Secrets, ConfigMaps or live-written data. */
  restarted: RestartPlan[]
  /** How the wait for restarted, rescaled and created workloads ended (empty with --no-wait). */
  rollouts: RolloutResult[]
  /** Application dumps streamed into their load commands (planned in a dry run, skipped without a Ready pod or with --no-dumps). */
  dumps: DumpOutcome[]
  /** When the manifest is signed: by which key, and whether that key is trusted (--trust). */
  signature?: SignatureSummary
  warnings: string[]
}

export default class Restore extends KubesnapCommand<typeof Restore> {
  static override summary = 'Verify a snapshot, then put its objects back into a namespace.'

  static override description = `Checks every byte of the archive first and every precondition next (namespace, custom resource types served, permissions; in the target cluster, StorageClasses after --map-storage-class, referenced ServiceAccounts and image-pull Secrets, chosen node ports), reporting all that is missing at once with the flag that fixes each; nothing is written to the cluster unless all hold.
Objects are cleaned (server-set fields, allocated IPs and node ports, volume bindings, generated tokens) and created in the order of a priorities table: ServiceAccounts, Secrets, ConfigMaps, claims, Services, RBAC, custom resources, then workloads.
With --resource-modifiers, each cleaned object is then changed by the rules of a Velero resource-modifiers file (JSON Patch and JSON merge patch); a rule that cannot be applied to an object, or would change its kind, name or namespace, refuses the restore before any write.
Then volume data, before the workloads that use it are created: each claim's tar stream (checked first: a member that would land outside the mount refuses the whole restore) goes into a helper pod that mounts the claim, while a StatefulSet or Deployment already writing it is scaled to 0 and back; with --live into the running pod instead.
Finally, existing workloads that read a restored Secret or ConfigMap (or a claim written live) are restarted as \`kubectl rollout restart\` does, and the restore waits for them and for the workloads it created to be ready.
A signed archive's signature is checked after its bytes; with --trust (or a --config plan's trust list) the archive must be signed by a trusted key.
Once writing begins, every object, volume and workload gets an outcome, and the summary (or --json) is printed however the run ends: done, failed half-way, timed out or stopped by Ctrl-C/SIGTERM. A workload scaled down for a copy is scaled back on every path, or named with the kubectl scale command that does it.
Exit codes: 0 complete, 1 nothing was written (damaged, hostile, tampered, unsigned with --trust or untrusted archive, unmet preconditions, or every write failed), 2 usage, 3 partial (something was written and something failed, timed out or was interrupted; the summary lists it).`

  static override examples = [
    '<%= config.bin %> restore --latest -n shop -o /var/backups/kubesnap',
    '<%= config.bin %> restore shop-000042-20261121T030000Z.kubesnap.tar --to-namespace shop-dr --create-namespace',
    '<%= config.bin %> restore --latest -n shop --only-secrets --existing update',
    '<%= config.bin %> restore --number 42 -n shop --dry-run',
    '<%= config.bin %> restore --latest -n shop --map-storage-class standard=fast --timeout 10m',
    '<%= config.bin %> restore --latest -n shop --resource secret/db --resource pvc/data-db-0',
    '<%= config.bin %> restore --latest -n shop --live --volume-mode merge',
    '<%= config.bin %> restore --latest -n shop -o /var/backups/kubesnap --identity ~/keys/shop-key.txt',
    '<%= config.bin %> restore --latest -n shop -o /var/backups/kubesnap --trust /etc/kubesnap/signing-key.pub',
    '<%= config.bin %> restore --latest -n shop -o /var/backups/kubesnap --resource-modifiers dr-modifiers.yaml',
  ]

  static override args = {
    archive: Args.string({description: 'The archive file (or use --number/--latest with -o and -n).'}),
  }

  static override flags = {
    number: archiveSelectionFlags.number,
    latest: archiveSelectionFlags.latest,
    output: archiveSelectionFlags.output,
    identity: identityFlag,
    trust: trustFlag,
    config: readPlanFlag,
    'to-namespace': Flags.string({summary: 'Restore into this namespace instead of the snapshot\'s own (RoleBinding subjects follow).'}),
    'create-namespace': Flags.boolean({summary: 'Create the target namespace when it does not exist.'}),
    'assign-node-ports': Flags.boolean({summary: 'Let the server assign another node port to a Service whose chosen one is taken in the target cluster (default: stop before any write when kubesnap can see it is taken).'}),
    'map-storage-class': Flags.string({summary: 'OLD=NEW: claims and StatefulSet volumeClaimTemplates of StorageClass OLD get NEW (repeatable; adds to and overrides a --config plan\'s restore.storageClassMap).', multiple: true}),
    existing: Flags.string({summary: 'What to do with objects that exist already.', options: ['skip', 'update', 'fail'], default: 'skip'}),
    'include-kinds': Flags.string({summary: 'Only these types (kind, plural, short name or resource.group).', multiple: true}),
    'exclude-kinds': Flags.string({summary: 'Leave these types out.', multiple: true}),
    selector: Flags.string({char: 'l', summary: 'Only objects whose stored labels match this selector.'}),
    resource: Flags.string({summary: 'Only this object, KIND/NAME with KIND as kubectl takes it (secret/db, pvc/data-db-0, statefulsets.apps/db); a claim brings its data. Repeatable.', multiple: true}),
    'only-secrets': Flags.boolean({summary: 'Only Secrets: the runbook shortcut to repopulate them.'}),
    'dry-run': Flags.boolean({summary: 'Print what would be created, updated or skipped (with field changes); write nothing.'}),
    'resource-modifiers': Flags.string({summary: 'Change objects on their way back with the rules of this Velero resource-modifiers YAML file (JSON and merge patches; a plan\'s restore.resourceModifiers).'}),
    concurrency: Flags.integer({summary: 'Objects of one rank applied at once.', default: 8, min: 1, max: 64, hidden: true}),
    volumes: Flags.string({summary: 'How claims\' data comes back: tar streams it from the archive, csi re-creates claims from their VolumeSnapshots, none leaves it.', options: [...VOLUME_RESTORE_STRATEGIES], default: 'tar', helpGroup: 'VOLUMES'}),
    'volume-mode': Flags.string({summary: 'replace empties a claim before loading it (it ends up as archived); merge keeps files the archive does not have.', options: [...VOLUME_MODES], default: 'replace', helpGroup: 'VOLUMES'}),
    live: Flags.boolean({summary: 'Load data into the running pod that mounts the claim (no scaling), then restart its workload.', helpGroup: 'VOLUMES'}),
    'helper-image': Flags.string({summary: 'Image of the helper pod that mounts a claim to load it (needs sh, tar, head, sleep).', default: DEFAULT_HELPER_IMAGE, helpGroup: 'VOLUMES'}),
    'helper-as-root': Flags.boolean({summary: 'Run helper pods as root with only the capabilities a copy needs, so every file keeps its archived owner, where the namespace\'s policy allows it (default: as the application runs).', helpGroup: 'VOLUMES'}),
    timeout: Flags.string({summary: 'How long to wait for claims, helper pods, scaling and rollouts (e.g. 90s, 5m, 1h).', default: '5m', helpGroup: 'WORKLOADS'}),
    wait: Flags.boolean({summary: 'Wait for restarted and created workloads to be ready (--no-wait: return once they are started).', default: true, allowNo: true, helpGroup: 'WORKLOADS'}),
    quiet: quietFlag,
    dumps: Flags.boolean({summary: 'Stream each application dump that has a load command into it, in the first Ready pod of its workload (--no-dumps: leave them).', default: true, allowNo: true, helpGroup: 'DUMPS'}),
  }

  /** --volumes csi: the VolumeSnapshot each claim is re-created from (set by the preconditions). */
  private claimSnapshots: Record<string, string> = {}
  /** --map-storage-class, over the plan's restore.storageClassMap. */
  private storageClasses: StorageClassMap = {}

  /** --resource-modifiers (or the plan's): applied to every object after cleaning. */
  private modifiers?: ResourceModifiers

  public async run(): Promise<RestoreSummary> {
    const flags = this.flags
    // Trusted keys are read first: a typo in a key file is a usage error before anything else.
    const plan = flags.config ? await loadPlan(flags.config) : undefined
    const trust = await trustedKeys(flags.trust, plan)
    this.storageClasses = {...plan?.restore.storageClassMap, ...parseStorageClassMap(flags['map-storage-class'] ?? [])}
    // So is the modifiers file: read and checked whole before any cluster call.
    const modifiersFile = flags['resource-modifiers'] ?? plan?.restore.resourceModifiers
    if (modifiersFile) this.modifiers = await loadResourceModifiers(modifiersFile)
    const path = await selectArchive(this.args.archive, flags)
    const {api} = await this.connect()
    const dryRun = flags['dry-run']
    const existing = flags.existing as ExistingPolicy
    const selector = parseLabelSelector(flags.selector ?? '')
    const timeoutMs = parseDuration(flags.timeout)
    if (timeoutMs === undefined) throw new KubesnapError(`--timeout ${flags.timeout} is not a duration; use e.g. 90s, 5m or 1h.`, {exit: EXIT.usage})

    const state: {
      reader?: ArchiveReader
      entries: ObjectEntry[]
      preconditions?: Preconditions
      outcomes: ObjectOutcome[]
      namespace: string
      namespaceCreated: boolean
      volumeEntries: StreamEntry[]
      volumesApproved: Map<string, ApprovedVolume>
      /** The volumes scanned as the archive was verified. */
      volumeScans?: Map<string, VolumeScan>
      volumePlans: VolumePlan[]
      volumes: VolumeOutcome[]
      withoutData: ClaimWithoutData[]
      /** StatefulSets and Deployments live before the restore wrote anything. */
      workloadsBefore: Array<WorkloadRef & {object: WorkloadObject}>
      restarted: RestartPlan[]
      rollouts: RolloutResult[]
      /** --volumes csi: the claims re-created from their archived VolumeSnapshots. */
      csiSnapshots?: ArchivedClaimSnapshot[]
    } = {entries: [], outcomes: [], namespace: '', namespaceCreated: false, volumeEntries: [], volumesApproved: new Map(), volumePlans: [], volumes: [], withoutData: [], workloadsBefore: [], restarted: [], rollouts: []}
    /** Application dumps: loaded after volume data and restarts, before the final wait. */
    let dumps: DumpOutcome[] = []
    let signature: SignatureSummary | undefined
    const beforeData = () => state.entries.filter((e) => restoreRank(e.group, e.resource) < FIRST_WORKLOAD_RANK)
    const afterData = () => state.entries.filter((e) => restoreRank(e.group, e.resource) >= FIRST_WORKLOAD_RANK)

    const tasks = taskList(stopOnSignal([
      {
        title: `Verify ${path}`,
        task: async (_ctx, task) => {
          const damaged = (verified: VerifyResult & {ok: false}) => new KubesnapError(`The archive ${path} is damaged at ${verified.entry} (${verified.problem}); nothing was restored: restore from another snapshot.`)
          // Whose it is first: a tampered, unsigned (with --trust) or untrusted archive stops here, before any content is read.
          const checked = await openArchive(path).catch(async (err: unknown) => {
            // One that does not open is damaged somewhere: the full check names where.
            const verified = await verifyArchive(path)
            throw verified.ok ? err : damaged(verified)
          })
          signature = await checkTrust(checked, trust)
          // A missing or wrong key stops here, before any write.
          state.reader = await openForContents(path, flags.identity)
          // Entries are read against this manifest: it must be the one whose signature was checked.
          if (state.reader.trailer.manifestSha256 !== checked.trailer.manifestSha256) {
            throw new KubesnapError(`${path} changed while it was being read; nothing was restored: make sure nothing writes the archive, and restore again.`)
          }
          // Every byte before the first write: a damaged archive never half-restores. When every claim is restored, each
          // volume is scanned for hostile members in the same read; a narrower selection is scanned by the preconditions.
          const everyClaim = flags.volumes === 'tar' && !flags['only-secrets'] && !flags['include-kinds'] && !flags['exclude-kinds'] && !flags.resource && !flags.selector
          const {verified, scans} = await verifyWithVolumeScans(state.reader, everyClaim ? state.reader.manifest.entries.filter((e): e is StreamEntry => e.type === 'volume') : [])
          if (!verified.ok) throw damaged(verified)
          state.volumeScans = scans
          const signed = signature.signed ? `, signed by ${signature.fingerprint}${signature.trusted ? ' (trusted)' : ''}` : ''
          task.title = `Verified ${path} (${verified.members} members${state.reader.manifest.encrypted ? ', decrypted' : ''}${signed})`
        },
      },
      {
        title: 'Check preconditions',
        task: async (_ctx, task) => {
          const manifest = state.reader!.manifest
          state.namespace = restoreTarget({archived: manifest.namespace, path, namespace: flags.namespace, toNamespace: flags['to-namespace']})
          const served = (await discoverResourceTypes(api)).types
          state.entries = orderForRestore(this.selectEntries(manifest.entries.filter((e): e is ObjectEntry => e.type === 'object'), served))
          // The VolumeSnapshots a csi snapshot took are the record of the data, not objects to re-create (a new one would snapshot the new, empty claim).
          const claimSnapshots = await archivedClaimSnapshots(state.reader!)
          const snapshotPaths = new Set([...claimSnapshots.values()].map((s) => s.entry.path))
          state.entries = state.entries.filter((e) => !snapshotPaths.has(e.path))
          const crdPaths = new Map(manifest.entries.filter((e): e is ObjectEntry => e.type === 'crd').map((e) => [e.name, e.path]))
          state.preconditions = await checkPreconditions(api, {
            entries: state.entries, served, namespace: state.namespace, createNamespace: flags['create-namespace'], existing, crdPaths,
          })
          state.preconditions.problems.push(...await checkObjectIdentities(state.reader!, state.entries))
          const claims = flags.volumes === 'none' ? [] : await selectedClaims(state.reader!, state.entries, selector)
          if (flags.volumes === 'tar') {
            // Before the first write: a member that would land outside its mount refuses the whole archive.
            state.volumeEntries = volumeEntriesOf(state.reader!, claims)
            // A partial snapshot's failed claims (and claims left out on purpose) come back empty: the summary names them.
            state.withoutData = claimsWithoutData(manifest, claims, new Set(claimSnapshots.keys()))
            const capacities = await claimCapacities(api, state.reader!, state.entries, claims, state.namespace, state.preconditions.namespaceExists !== false)
            const scanned = await checkVolumeArchives(state.reader!, state.volumeEntries, capacities, state.volumeScans)
            state.preconditions.problems.push(...scanned.problems)
            state.volumesApproved = scanned.approved
          }
          if (claimSnapshots.size > 0 || flags.volumes === 'csi') {
            const tarClaims = new Set(manifest.entries.filter((e) => e.type === 'volume').map((e) => e.name))
            if (flags.volumes === 'csi') {
              const csi = await planCsiRestore(api, {
                snapshots: claimSnapshots, claims, sourceNamespace: manifest.namespace, namespace: state.namespace,
                namespaceExists: state.preconditions.namespaceExists, tarClaims,
              })
              state.preconditions.problems.push(...csi.problems)
              state.preconditions.warnings.push(...csi.warnings)
              state.csiSnapshots = csi.snapshots
              this.claimSnapshots = csi.claimSnapshots
            } else if (flags.volumes === 'tar') {
              const noData = claims.filter((c) => claimSnapshots.has(c) && !tarClaims.has(c))
              if (noData.length > 0) {
                state.preconditions.warnings.push(`This archive was taken with --volumes csi: it holds no tar data for ${noData.map((c) => `claim ${c} (VolumeSnapshot ${claimSnapshots.get(c)!.snapshot})`).join(', ')}; only the objects are restored and a re-created claim starts empty: to restore the data, use --volumes csi.`)
              }
            }
          }
          // The objects as restore will create them (cleaned, class-mapped, modified), for the checks below.
          const prepareOptions: PrepareOptions = {
            targets: state.preconditions.targets, sourceNamespace: manifest.namespace, targetNamespace: state.namespace,
            selector, claimSnapshots: this.claimSnapshots, storageClasses: this.storageClasses, modifiers: this.modifiers,
          }
          // Before the first write: a rule that cannot be applied, or would turn an object into another, refuses the restore.
          const modified = await checkModifiedObjects(state.reader!, {...prepareOptions, entries: state.entries})
          state.preconditions.problems.push(...modified.problems)
          state.preconditions.warnings.push(...modified.warnings)
          // The target cluster against what those objects need: StorageClasses, referenced accounts and pull Secrets, node ports.
          const target = await checkTarget(api, state.reader!, {
            entries: state.entries, allEntries: manifest.entries.filter((e): e is ObjectEntry => e.type === 'object'), namespace: state.namespace,
            namespaceExists: state.preconditions.namespaceExists, prepare: (entry) => prepareObject(state.reader!, entry, prepareOptions), assignNodePorts: flags['assign-node-ports'],
          })
          state.preconditions.problems.push(...target.problems)
          state.preconditions.warnings.push(...target.warnings)
          if (state.preconditions.problems.length > 0) {
            const list = state.preconditions.problems.map((p) => `\n  - ${p}`).join('')
            throw new KubesnapError(`Restore cannot start; nothing was changed:${list}`)
          }
          // Before the first write: commands stored in the archive are about to run in the namespace's pods.
          const notice = flags.dumps && !flags['only-secrets'] && !dryRun ? archivedCommandsNotice(manifest.entries) : undefined
          if (notice) this.note(notice)
          if (state.preconditions.namespaceExists) state.workloadsBefore = await listWorkloads(api, state.namespace)
          // From here on the restore writes: a signal stops it in order, and it reports how far it got.
          interrupt = interruptOnSignals()
          task.title = `Preconditions hold for ${state.entries.length} objects${state.volumeEntries.length ? ` and ${state.volumeEntries.length} volumes` : ''} into ${state.namespace}`
        },
      },
      {
        title: 'Create the namespace',
        enabled: () => state.preconditions?.namespaceExists === false,
        skip: () => dryRun && 'dry run: the namespace would be created',
        task: async () => {
          await createNamespace(api, state.namespace)
          state.namespaceCreated = true
        },
      },
      {
        title: dryRun ? 'Plan objects (dry run)' : 'Restore objects',
        task: async (_ctx, task) => this.applyObjects(api, state, beforeData(), {selector, existing, dryRun}, task),
      },
      {
        title: dryRun ? 'Plan volume data (dry run)' : 'Restore volume data',
        enabled: () => state.volumeEntries.length > 0,
        task: async (_ctx, task) => {
          // Planned against what runs now: workloads the archive brings are created only after their data.
          state.volumePlans = await planVolumes(api, state.namespace, state.volumeEntries, {live: flags.live, workloads: state.workloadsBefore})
          if (dryRun) {
            state.volumes = state.volumePlans.map((p) => ({claim: p.claim, bytes: p.bytes, action: 'planned', target: p.target.type === 'live' ? `live ${p.target.pod}/${p.target.container}` : 'helper', ...(p.owner ? {scaled: p.owner} : {})}))
            task.title = `Would restore the data of ${state.volumePlans.length} claim(s)`
            return
          }
          const helpers = new HelperPods(api, state.namespace, {image: flags['helper-image'], asRoot: flags['helper-as-root'], startTimeoutMs: timeoutMs})
          // A signal during the copy stops it in order: helpers deleted, scaled workloads put back, the state reported.
          const signal = interrupt!.signal
          try {
            state.preconditions!.warnings.push(...await helpers.removeStale())
            state.volumes = await restoreVolumes({
              api, namespace: state.namespace, reader: state.reader!, plans: state.volumePlans, helpers, signal,
              mode: flags['volume-mode'] as VolumeMode, timeoutMs, onStatus: (line) => (task.output = line),
              approved: state.volumesApproved,
              workloads: state.workloadsBefore.map((w) => ({...w.object, kind: w.kind})),
              archivedWorkloads: await archivedWorkloads(state.reader!, state.entries),
            })
          } finally {
            await helpers.removeAll()
          }
          const restored = state.volumes.filter((v) => v.action === 'restored').length
          task.title = `Restored the data of ${restored}/${state.volumes.length} claim(s)`
        },
      },
      {
        title: dryRun ? 'Plan claims from VolumeSnapshots (dry run)' : 'Restore claims from VolumeSnapshots',
        enabled: () => (state.csiSnapshots?.length ?? 0) > 0,
        task: async (_ctx, task) => {
          const claims = new Map(state.outcomes.filter((o) => o.resource === 'persistentvolumeclaims').map((o) => [o.name, o]))
          const csi = csiOutcomes(state.csiSnapshots!, claims, dryRun)
          state.volumes.push(...csi)
          task.title = `${dryRun ? 'Would re-create' : 'Re-created'} ${csi.filter((v) => v.action !== 'failed').length}/${csi.length} claim(s) from VolumeSnapshots`
        },
      },
      {
        title: dryRun ? 'Plan workloads (dry run)' : 'Restore workloads',
        enabled: () => afterData().length > 0,
        task: async (_ctx, task) => this.applyObjects(api, state, afterData(), {selector, existing, dryRun}, task),
      },
      {
        title: 'Restart workloads that read restored data',
        enabled: () => state.workloadsBefore.length > 0,
        task: async (_ctx, task) => {
          const {changes, scaled} = restoredChanges(state.outcomes, state.volumes)
          state.restarted = planRestarts(state.workloadsBefore, changes, scaled)
          for (const plan of dryRun ? [] : state.restarted) {
            // One workload's failed restart is recorded; the others are still restarted.
            await rolloutRestart(api, state.namespace, plan).catch((err: unknown) => (plan.error = `not restarted: ${messageOf(err)}`))
          }
          task.title = state.restarted.length === 0 ? 'No running workload needs a restart'
            : `${dryRun ? 'Would restart' : 'Restarted'} ${state.restarted.map((r) => workloadKey(r)).join(', ')}`
        },
      },
      {
        title: dryRun ? 'Plan application dumps (dry run)' : 'Load application dumps',
        enabled: () => loadableDumps(state.reader?.manifest.entries ?? []).length > 0,
        task: async (_ctx, task) => {
          const entries = loadableDumps(state.reader!.manifest.entries)
          // The load command (which may carry credentials) is in the result only in a dry run, the plan an operator reads.
          const outcome = (e: (typeof entries)[number], action: DumpOutcome['action'], reason?: string): DumpOutcome =>
            ({name: e.name, workload: String(e.extra?.workload), ...(action === 'planned' ? {load: String(e.extra?.load)} : {}), bytes: e.rawSize, action, ...(reason ? {reason} : {})})
          if (!flags.dumps || flags['only-secrets']) {
            dumps = entries.map((e) => outcome(e, 'skipped', flags.dumps ? 'not loaded with --only-secrets' : 'not loaded with --no-dumps'))
            task.title = `Left ${entries.length} application dump(s) unloaded`
            return
          }
          if (dryRun) {
            dumps = entries.map((e) => outcome(e, 'planned'))
            task.title = `Would load ${entries.length} application dump(s)`
            return
          }
          // A workload this restore created, scaled or restarted gets its rollout first: the load needs it running.
          const touched = new Set([
            ...state.restarted.map((r) => workloadKey(r)),
            ...state.volumes.flatMap((v) => (v.scaled ? [workloadKey(v.scaled)] : [])),
            ...state.outcomes.filter((o) => o.action === 'create' && (o.resource === 'statefulsets.apps' || o.resource === 'deployments.apps'))
              .map((o) => `${o.resource === 'statefulsets.apps' ? 'StatefulSet' : 'Deployment'}/${o.name}`),
          ])
          const refs = new Map<string, WorkloadRef>()
          for (const e of entries) {
            try {
              const target = entryTarget(e)
              const kind = target.kind === 'statefulset' ? 'StatefulSet' : target.kind === 'deployment' ? 'Deployment' : undefined
              if (kind && touched.has(`${kind}/${target.name}`)) refs.set(`${kind}/${target.name}`, {kind, name: target.name})
            } catch {
              // An unreadable workload is reported by loadDumps.
            }
          }
          if (refs.size > 0 && flags.wait) await waitForRollouts(api, state.namespace, [...refs.values()], {timeoutMs, onStatus: (line) => (task.output = line), signal: interrupt?.signal})
          dumps = await loadDumps({api, namespace: state.namespace, reader: state.reader!, entries, onStatus: (line) => (task.output = line)})
          task.title = `Loaded ${dumps.filter((d) => d.action === 'loaded').length}/${dumps.length} application dump(s)`
        },
      },
      {
        title: 'Wait for workloads to be ready',
        enabled: () => !dryRun && flags.wait,
        task: async (_ctx, task) => {
          // Restarted, scaled back, or created by this restore: what the runbook needs to see running.
          const refs = new Map<string, WorkloadRef>()
          for (const r of state.restarted) refs.set(workloadKey(r), r)
          for (const v of state.volumes) if (v.scaled && v.action === 'restored') refs.set(workloadKey(v.scaled), v.scaled)
          for (const o of state.outcomes) {
            const kind = o.resource === 'statefulsets.apps' ? 'StatefulSet' : o.resource === 'deployments.apps' ? 'Deployment' : undefined
            if (kind && o.action === 'create') refs.set(`${kind}/${o.name}`, {kind, name: o.name})
          }
          state.rollouts = await waitForRollouts(api, state.namespace, [...refs.values()], {timeoutMs, onStatus: (line) => (task.output = line), signal: interrupt?.signal})
          const late = state.rollouts.filter((r) => !r.ready)
          task.title = late.length === 0 ? `${state.rollouts.length} workload(s) ready` : `${late.length} of ${state.rollouts.length} workload(s) not ready within ${flags.timeout}`
        },
      },
    ], () => interrupt), {json: this.jsonEnabled(), quiet: this.flags.quiet})

    /** Set when the preconditions hold, before the first write. */
    let interrupt: Interrupt | undefined
    let stopped: unknown
    try {
      await tasks.run()
    } catch (err) {
      // Before the first write the error is the whole report (exit 1); after it, the outcomes so far are.
      if (!interrupt) throw err
      stopped = err
    } finally {
      interrupt?.stop()
    }
    const summary = {...this.summarize(path, {...state, dumps}, dryRun), ...(signature?.signed ? {signature} : {})}
    const interrupted = stopped instanceof Interrupted || interrupt?.received !== undefined
    // A dry run is judged by what it would write (a plan that would fail half-way is partial); stopped, it wrote nothing.
    const wrote = dryRun
      ? !interrupted && summary.outcomes.some((o) => o.action === 'create' || o.action === 'update') || summary.volumes.length > 0
      // Writes through the API, and what exec wrote into pods: volume data, dumps loaded (or failed part-way).
      : api.writes > 0 || summary.volumes.some((v) => v.action === 'restored' || v.copyStarted) || summary.dumps.some((d) => d.action === 'loaded' || d.action === 'failed')
    const result = restoreResult({wrote, failures: countFailures(summary), stopped: stopped !== undefined, interrupted})
    summary.status = result.status
    if (interrupted) summary.error = `The restore was interrupted by ${interrupt?.received ?? (stopped as Interrupted).signal} and stopped there: the objects, volumes and workloads above are as listed, helper pods are deleted, and every workload it had scaled down is scaled back (or named with the command to do it); restore again to finish.`
    else if (stopped !== undefined) summary.error = `The restore stopped: ${messageOf(stopped).replace(/\.$/, '')}; the objects, volumes and workloads above are as listed: fix the cause, then restore again (existing objects are skipped).`
    this.report(summary)
    if (summary.error && !this.jsonEnabled()) this.logToStderr(`Error: ${summary.error}`)
    process.exitCode = result.exit
    return summary
  }

  /** Applies `entries` (one phase of the ordered plan) and appends their outcomes. */
  private async applyObjects(
    api: KubeApi,
    state: {reader?: ArchiveReader; entries: ObjectEntry[]; preconditions?: Preconditions; outcomes: ObjectOutcome[]; namespace: string},
    entries: ObjectEntry[],
    options: {selector: ReturnType<typeof parseLabelSelector>; existing: ExistingPolicy; dryRun: boolean},
    task: {title: string},
  ): Promise<void> {
    let done = 0
    // In a namespace that does not exist yet, the server cannot dry-run creates: they are plain creates.
    const offline = options.dryRun && state.preconditions!.namespaceExists === false
    const outcomes = offline
      ? entries.map((e) => ({kind: e.kind, resource: qualifiedName(e), name: e.name, action: 'create' as const}))
      : await restoreObjects(api, state.reader!, {
        entries,
        targets: state.preconditions!.targets,
        sourceNamespace: state.reader!.manifest.namespace,
        targetNamespace: state.namespace,
        selector: options.selector,
        existing: options.existing,
        dryRun: options.dryRun,
        concurrency: this.flags.concurrency,
        claimSnapshots: this.claimSnapshots,
        storageClasses: this.storageClasses,
        modifiers: this.modifiers,
        onOutcome: () => {
          task.title = `${options.dryRun ? 'Planned' : 'Restored'} ${state.outcomes.length + ++done}/${state.entries.length} objects`
        },
      })
    state.outcomes.push(...outcomes)
  }

  /** Entries --resource and the kind flags keep; names are resolved against the target cluster's types. */
  private selectEntries(entries: ObjectEntry[], served: ResourceType[]): ObjectEntry[] {
    const names = (values: string[] | undefined, flag: string) => {
      const result = new Set<string>()
      for (const raw of (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
        const matches = matchType(served, raw)
        if (matches.length === 0) throw new KubesnapError(`${flag}: no resource type named "${raw}" is served by this cluster.`, {exit: EXIT.usage})
        for (const m of matches) result.add(qualifiedName(m))
      }
      return result
    }
    const include = names([...(this.flags['include-kinds'] ?? []), ...(this.flags['only-secrets'] ? ['secrets'] : [])], '--include-kinds')
    const exclude = names(this.flags['exclude-kinds'], '--exclude-kinds')
    // --resource names objects of the archive: checked against all of it, before the kind flags narrow it.
    return selectResources(entries, this.flags.resource ?? [], served).filter((e) => {
      const name = qualifiedName(e)
      return (include.size === 0 || include.has(name)) && !exclude.has(name)
    })
  }

  private summarize(path: string, state: {
    reader?: {manifest: {namespace: string}}; outcomes: ObjectOutcome[]; namespace: string; namespaceCreated: boolean; preconditions?: Preconditions
    volumes: VolumeOutcome[]; withoutData: ClaimWithoutData[]; restarted: RestartPlan[]; rollouts: RolloutResult[]; dumps: DumpOutcome[]
  }, dryRun: boolean): RestoreSummary {
    const count = (action: ObjectOutcome['action']) => state.outcomes.filter((o) => o.action === action).length
    const objects = {create: count('create'), update: count('update'), skip: count('skip'), conflict: count('conflict'), failed: count('failed')}
    return {
      // Settled by run() with restoreResult, which knows what was written and how the run ended.
      status: 'complete',
      dryRun,
      archive: path,
      sourceNamespace: state.reader!.manifest.namespace,
      namespace: state.namespace,
      namespaceCreated: state.namespaceCreated,
      objects,
      outcomes: state.outcomes,
      volumes: state.volumes,
      withoutData: state.withoutData,
      restarted: state.restarted,
      rollouts: state.rollouts,
      dumps: state.dumps,
      warnings: [...(state.preconditions?.warnings ?? []), ...state.outcomes.filter((o) => o.warning).map((o) => `${o.kind}/${o.name}: ${o.warning}`),
        ...state.volumes.flatMap((v) => v.warnings ?? []),
        ...state.withoutData.filter((c) => c.failed).map((c) => `Claim ${c.claim} is restored without data: the snapshot could not copy it (${c.reason.replace(/^data not copied: /, '')}); its data can only come from another snapshot that holds it.`),
        ...state.dumps.filter((d) => d.action === 'skipped').map((d) => `Dump ${d.name} was not loaded: ${d.reason}.`)],
    }
  }

  /** Human output: the plan (dry run) or the failures, then one summary line. */
  private report(summary: RestoreSummary): void {
    for (const warning of summary.warnings) this.note(warning)
    for (const o of summary.outcomes) {
      if (summary.dryRun) {
        const modified = o.modifiedBy ? ` (changed by ${o.modifiedBy.map((i) => `resourceModifierRules[${i}]`).join(', ')})` : ''
        this.log(`${o.action.padEnd(8)} ${o.kind}/${o.name}${modified}${o.error ? `: ${o.error}` : ''}`)
        for (const change of o.diff ?? []) this.log(`           ${change}`)
      } else if (o.action === 'failed' || o.action === 'conflict') {
        this.log(`${o.action} ${o.kind}/${o.name}: ${o.error}`)
      }
    }
    for (const v of summary.volumes) {
      if (summary.dryRun) this.log(describeVolume(v))
      else if (v.action === 'failed') this.log(`failed   volume ${v.claim}: ${v.error}`)
    }
    for (const c of summary.withoutData) this.log(`no data  volume ${c.claim}: ${c.reason}`)
    for (const d of summary.dumps) {
      if (summary.dryRun && d.action === 'planned' && d.load !== undefined) this.log(describeDumpLoad({...d, load: d.load}))
      else if (d.action === 'failed') this.log(`failed   dump ${d.name}: ${d.reason}`)
    }
    for (const r of summary.restarted) {
      if (summary.dryRun) this.log(`restart  ${workloadKey(r)}: reads the restored ${r.reasons.join(', ')}`)
      else if (r.error) this.log(`failed   restart ${workloadKey(r)}: ${r.error}`)
    }
    for (const w of scaledWorkloads(summary.volumes).filter((w) => w.scaledBack === false)) this.log(`left at 0 ${workloadKey(w)}: run ${w.command}`)
    for (const r of summary.rollouts.filter((r) => !r.ready)) this.log(`not ready ${workloadKey(r)}: ${r.waiting}`)
    const o = summary.objects
    const volumes = summary.volumes.length === 0 ? '' : summary.dryRun ? `; ${summary.volumes.length} volume(s)`
      : `; ${summary.volumes.filter((v) => v.action === 'restored').length}/${summary.volumes.length} volume(s) restored`
    const withoutData = summary.withoutData.length > 0 ? `; ${summary.withoutData.length} claim(s) without data in the archive` : ''
    const restarts = summary.restarted.length > 0 ? `; ${summary.restarted.length} workload(s) ${summary.dryRun ? 'to restart' : 'restarted'}` : ''
    const dumps = summary.dumps.length === 0 ? '' : summary.dryRun ? `; ${summary.dumps.filter((d) => d.action === 'planned').length} dump(s) to load`
      : `; ${summary.dumps.filter((d) => d.action === 'loaded').length}/${summary.dumps.length} dump(s) loaded`
    if (this.flags.quiet && summary.status === 'complete' && !summary.dryRun) return
    this.log(`${summary.dryRun ? 'Dry run: would restore' : 'Restored'} into ${summary.namespace}: ${o.create} created, ${o.update} updated, ${o.skip} skipped (exist), ${o.conflict} conflicts, ${o.failed} failed${volumes}${withoutData}${restarts}${dumps}.`)
  }
}

/** The workloads scaled down around volume copies, once each. */
function scaledWorkloads(volumes: VolumeOutcome[]): NonNullable<VolumeOutcome['scaled']>[] {
  return [...new Map(volumes.flatMap((v) => (v.scaled ? [[workloadKey(v.scaled), v.scaled] as const] : []))).values()]
}

/** Every failed outcome of a restore: objects, volumes, workloads left scaled down, restarts, rollouts not ready, dumps. */
function countFailures(summary: RestoreSummary): number {
  return summary.objects.failed + summary.objects.conflict
    + summary.volumes.filter((v) => v.action === 'failed').length
    + scaledWorkloads(summary.volumes).filter((w) => w.scaledBack === false).length
    + summary.restarted.filter((r) => r.error).length
    + summary.rollouts.filter((r) => !r.ready).length
    + summary.dumps.filter((d) => d.action === 'failed').length
}

/**
 * The tasks, each of which does not start once a signal came: the pipeline
 * stops between phases and the run reports (the phase that was running ends in
 * order; the volume copy and the waits watch the signal themselves).
 */
function stopOnSignal<C>(tasks: ListrTask<C>[], interrupt: () => Interrupt | undefined): ListrTask<C>[] {
  const check = () => {
    const received = interrupt()?.received
    if (received) throw new Interrupted(received)
  }
  return tasks.map((t) => ({
    ...t,
    task: async (ctx, task) => {
      check()
      const result = await t.task(ctx, task)
      check()
      return result
    },
  }))
}

/** A dry-run line for one volume: how many bytes go where. */
function describeVolume(v: VolumeOutcome): string {
  if (v.snapshot) return `${'volume'.padEnd(8)} ${v.claim}: re-created from VolumeSnapshot ${v.snapshot}${v.bytes ? ` (${formatBytes(v.bytes)})` : ''}`
  const into = v.target === 'helper' ? 'through a helper pod' : `into the running pod ${v.target.slice('live '.length)}`
  const scaled = v.scaled ? ` while ${workloadKey(v.scaled)} is scaled from ${v.scaled.replicas} to 0` : ''
  return `${'volume'.padEnd(8)} ${v.claim}: ${formatBytes(v.bytes)} ${into}${scaled}`
}
