import {Args, Flags} from '@oclif/core'
import type {ListrTask} from 'listr2'
import {identityFlag} from '../encryption.js'
import {loadPlan} from '../plan/plan.js'
import {readPlanFlag, trustedKeys, trustFlag} from '../signing.js'
import {selectArchive} from '../archive/select.js'
import {archiveSelectionFlags} from '../flags.js'
import {KubesnapCommand} from '../base-command.js'
import {createNamespace, type KubeApi} from '../cluster/index.js'
import {EXIT, KubesnapError} from '../errors.js'
import {withOldGenerationKeptSmall} from '../heap.js'
import {quietFlag, taskList} from '../progress.js'
import {interruptOnSignals, type Interrupt} from '../signals.js'
import type {ExistingPolicy} from '../resources/apply.js'
import {parseLabelSelector} from '../resources/label-selector.js'
import {checkRestore, type CheckedRestore} from '../restore/check.js'
import {loadResourceModifiers} from '../restore/modifiers.js'
import {RESTORE_CONCURRENCY} from '../restore/objects.js'
import {openVerified, type OpenedArchive} from '../restore/open.js'
import {
  applyEntries, dumpsLeftReason, loadArchivedDumps, restartReaders, restoreCsiClaims, restoreVolumeData, splitAtWorkloads, waitForWorkloads,
} from '../restore/phases.js'
import type {RestorePlan} from '../restore/plan.js'
import {parseDuration} from '../restore/restart.js'
import {workloadKey} from '../volumes/workloads.js'
import {parseStorageClassMap} from '../restore/storage-classes.js'
import {describeVolume, finishRestore, noOutcomes, scaledWorkloads, summarizeRestore, type RestoreOutcomes, type RestoreSummary} from '../restore/summary.js'
import {VOLUME_RESTORE_STRATEGIES} from '../restore/volumes.js'
import {DEFAULT_HELPER_IMAGE} from '../volumes/helper.js'
import {VOLUME_MODES, type VolumeMode} from '../volumes/tar-in.js'
import {archivedCommandsNotice, describeDumpLoad, loadableDumps} from '../dumps/index.js'

export type {RestoreSummary} from '../restore/summary.js'

/** A signal stopped the restore in order, between phases or in the volume copy (which put back what it scaled down). */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.name = 'Interrupted'
  }
}

/** What the phases produced so far: the archive once opened, the checked restore once the preconditions hold, then the outcomes. */
interface RestoreRun {
  opened?: OpenedArchive
  checked?: CheckedRestore
  done: RestoreOutcomes
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
    concurrency: Flags.integer({summary: 'Objects of one rank applied at once.', default: RESTORE_CONCURRENCY, min: 1, max: 64, hidden: true}),
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

  public async run(): Promise<RestoreSummary> {
    // Every object is read, checked and applied once, each dying soon after: 10,000 of them filled 72 MiB of old space.
    return withOldGenerationKeptSmall(() => this.restore())
  }

  /** Runs the restore: the checks, then the write phases in order, with the summary at the end whatever happened. */
  private async restore(): Promise<RestoreSummary> {
    const {plan, api} = await this.restorePlan()
    const run: RestoreRun = {done: noOutcomes()}
    /** Set when the preconditions hold, before the first write. */
    let interrupt: Interrupt | undefined
    const tasks = taskList(stopOnSignal([
      ...this.checkTasks(api, plan, run, () => (interrupt = interruptOnSignals())),
      ...this.objectTasks(api, plan, run, () => interrupt),
      ...this.workloadTasks(api, plan, run, () => interrupt),
    ], () => interrupt), {json: this.jsonEnabled(), quiet: this.flags.quiet})
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
    const summarized = summarizeRestore({
      path: plan.path, dryRun: plan.dryRun, sourceNamespace: run.opened!.reader.manifest.namespace, signature: run.opened!.signature, checked: run.checked!, done: run.done,
    })
    const signal = interrupt?.received ?? (stopped instanceof Interrupted ? stopped.signal : undefined)
    const {summary, exit} = finishRestore(summarized, {apiWrites: api.writes, stopped, signal})
    this.report(summary)
    if (summary.error && !this.jsonEnabled()) this.logToStderr(`Error: ${summary.error}`)
    process.exitCode = exit
    return summary
  }

  /** The restore the flags (over a --config plan) ask for, and the connection to do it with; bad input stops here. */
  private async restorePlan(): Promise<{plan: RestorePlan; api: KubeApi}> {
    const flags = this.flags
    // Trusted keys are read first: a typo in a key file is a usage error before anything else.
    const config = flags.config ? await loadPlan(flags.config) : undefined
    const trust = await trustedKeys(flags.trust, config)
    const storageClasses = {...config?.restore.storageClassMap, ...parseStorageClassMap(flags['map-storage-class'] ?? [])}
    // So is the modifiers file: read and checked whole before any cluster call.
    const modifiersFile = flags['resource-modifiers'] ?? config?.restore.resourceModifiers
    const modifiers = modifiersFile ? await loadResourceModifiers(modifiersFile) : undefined
    const path = await selectArchive(this.args.archive, flags)
    const {api} = await this.connect()
    const selector = parseLabelSelector(flags.selector ?? '')
    const timeoutMs = parseDuration(flags.timeout)
    if (timeoutMs === undefined) throw new KubesnapError(`--timeout ${flags.timeout} is not a duration; use e.g. 90s, 5m or 1h.`, {exit: EXIT.usage})
    const plan: RestorePlan = {
      path, identity: flags.identity, trust, namespace: flags.namespace, toNamespace: flags['to-namespace'],
      createNamespace: flags['create-namespace'], assignNodePorts: flags['assign-node-ports'], existing: flags.existing as ExistingPolicy, selector,
      select: {
        include: [...(flags['include-kinds'] ?? []), ...(flags['only-secrets'] ? ['secrets'] : [])], exclude: flags['exclude-kinds'] ?? [], resources: flags.resource ?? [],
      },
      onlySecrets: flags['only-secrets'], dryRun: flags['dry-run'], concurrency: flags.concurrency, storageClasses, modifiers,
      volumes: flags.volumes as RestorePlan['volumes'], volumeMode: flags['volume-mode'] as VolumeMode, live: flags.live,
      helper: {image: flags['helper-image'], asRoot: flags['helper-as-root']}, timeout: flags.timeout, timeoutMs, wait: flags.wait, dumps: flags.dumps,
    }
    return {plan, api}
  }

  /** Verify, then the preconditions: nothing is written unless all hold; `onHold` marks the point from which the restore writes. */
  private checkTasks(api: KubeApi, plan: RestorePlan, run: RestoreRun, onHold: () => void): ListrTask[] {
    return [
      {
        title: `Verify ${plan.path}`,
        task: async (_ctx, task) => {
          const opened = run.opened = await openVerified(plan)
          const {signature} = opened
          const signed = signature.signed ? `, signed by ${signature.fingerprint}${signature.trusted ? ' (trusted)' : ''}` : ''
          task.title = `Verified ${plan.path} (${opened.members} members${opened.reader.manifest.encrypted ? ', decrypted' : ''}${signed})`
        },
      },
      {
        title: 'Check preconditions',
        task: async (_ctx, task) => {
          const checked = run.checked = await checkRestore(api, run.opened!.reader, plan, run.opened!.volumeScans)
          // Before the first write: commands stored in the archive are about to run in the namespace's pods.
          const notice = plan.dumps && !plan.onlySecrets && !plan.dryRun ? archivedCommandsNotice(run.opened!.reader.manifest.entries) : undefined
          if (notice) this.note(notice)
          // From here on the restore writes: a signal stops it in order, and it reports how far it got.
          onHold()
          const volumes = checked.volumeEntries.length ? ` and ${checked.volumeEntries.length} volumes` : ''
          task.title = `Preconditions hold for ${checked.entries.length} objects${volumes} into ${checked.namespace}`
        },
      },
    ]
  }

  /** The namespace, the objects before the data, the data (tar, or claims from VolumeSnapshots). */
  private objectTasks(api: KubeApi, plan: RestorePlan, run: RestoreRun, interrupt: () => Interrupt | undefined): ListrTask[] {
    const dryRun = plan.dryRun
    const {done} = run
    /** Applies one part of the ordered objects, counting in the task's title. */
    const apply = async (part: 'beforeData' | 'afterData', task: {title: string}) => {
      let applied = 0
      const outcomes = await applyEntries(api, run.opened!.reader, run.checked!, plan, splitAtWorkloads(run.checked!.entries)[part], () => {
        task.title = `${dryRun ? 'Planned' : 'Restored'} ${done.outcomes.length + ++applied}/${run.checked!.entries.length} objects`
      })
      done.outcomes.push(...outcomes)
    }
    return [
      {
        title: 'Create the namespace',
        enabled: () => run.checked?.preconditions.namespaceExists === false,
        skip: () => dryRun && 'dry run: the namespace would be created',
        task: async () => {
          await createNamespace(api, run.checked!.namespace)
          done.namespaceCreated = true
        },
      },
      {title: dryRun ? 'Plan objects (dry run)' : 'Restore objects', task: async (_ctx, task) => apply('beforeData', task)},
      {
        title: dryRun ? 'Plan volume data (dry run)' : 'Restore volume data',
        enabled: () => (run.checked?.volumeEntries.length ?? 0) > 0,
        task: async (_ctx, task) => {
          done.volumes = await restoreVolumeData(api, run.opened!.reader, run.checked!, plan, {
            signal: interrupt()?.signal, onStatus: (line) => (task.output = line), onWarnings: (warnings) => done.warnings.push(...warnings),
          })
          const restored = done.volumes.filter((v) => v.action === 'restored').length
          task.title = dryRun ? `Would restore the data of ${done.volumes.length} claim(s)` : `Restored the data of ${restored}/${done.volumes.length} claim(s)`
        },
      },
      {
        title: dryRun ? 'Plan claims from VolumeSnapshots (dry run)' : 'Restore claims from VolumeSnapshots',
        enabled: () => (run.checked?.csiSnapshots?.length ?? 0) > 0,
        task: async (_ctx, task) => {
          const csi = restoreCsiClaims(run.checked!, done.outcomes, dryRun)
          done.volumes.push(...csi)
          task.title = `${dryRun ? 'Would re-create' : 'Re-created'} ${csi.filter((v) => v.action !== 'failed').length}/${csi.length} claim(s) from VolumeSnapshots`
        },
      },
      {
        title: dryRun ? 'Plan workloads (dry run)' : 'Restore workloads',
        enabled: () => splitAtWorkloads(run.checked?.entries ?? []).afterData.length > 0,
        task: async (_ctx, task) => apply('afterData', task),
      },
    ]
  }

  /** Restarts of what reads restored data, application dumps, and the wait for the workloads. */
  private workloadTasks(api: KubeApi, plan: RestorePlan, run: RestoreRun, interrupt: () => Interrupt | undefined): ListrTask[] {
    const dryRun = plan.dryRun
    const {done} = run
    return [
      {
        title: 'Restart workloads that read restored data',
        enabled: () => (run.checked?.workloadsBefore.length ?? 0) > 0,
        task: async (_ctx, task) => {
          done.restarted = await restartReaders(api, run.checked!, done, dryRun)
          task.title = done.restarted.length === 0 ? 'No running workload needs a restart'
            : `${dryRun ? 'Would restart' : 'Restarted'} ${done.restarted.map((r) => workloadKey(r)).join(', ')}`
        },
      },
      {
        title: dryRun ? 'Plan application dumps (dry run)' : 'Load application dumps',
        enabled: () => loadableDumps(run.opened?.reader.manifest.entries ?? []).length > 0,
        task: async (_ctx, task) => {
          done.dumps = await loadArchivedDumps(api, run.opened!.reader, run.checked!, plan, done, {signal: interrupt()?.signal, onStatus: (line) => (task.output = line)})
          const count = done.dumps.length
          task.title = dumpsLeftReason(plan) ? `Left ${count} application dump(s) unloaded` : dryRun ? `Would load ${count} application dump(s)`
            : `Loaded ${done.dumps.filter((d) => d.action === 'loaded').length}/${count} application dump(s)`
        },
      },
      {
        title: 'Wait for workloads to be ready',
        enabled: () => !dryRun && plan.wait,
        task: async (_ctx, task) => {
          done.rollouts = await waitForWorkloads(api, run.checked!, plan, done, {signal: interrupt()?.signal, onStatus: (line) => (task.output = line)})
          const late = done.rollouts.filter((r) => !r.ready)
          task.title = late.length === 0 ? `${done.rollouts.length} workload(s) ready` : `${late.length} of ${done.rollouts.length} workload(s) not ready within ${plan.timeout}`
        },
      },
    ]
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
