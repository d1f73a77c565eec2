import {Flags} from '@oclif/core'
import {abortOnSignals, createArchiveWriter} from '../archive/writer.js'
import {copyToSecondPlace, type CopyResult} from '../archive/copy.js'
import {archiveSize} from '../archive/store.js'
import {diskError} from '../archive/disk.js'
import {LockedError} from '../archive/lock.js'
import {snapshotStatus, UNLISTED_REASON, type Manifest, type SkippedItem, type SnapshotStatus} from '../archive/manifest.js'
import {KubesnapCommand} from '../base-command.js'
import {cipherFor} from '../encryption.js'
import {loadSigningKey, type ManifestSigner} from '../archive/sign.js'
import {signWithFlag} from '../signing.js'
import {discoverResourceTypes, namespaceExists, qualifiedName} from '../cluster/index.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {formatBytes} from '../format.js'
import {quietFlag, taskList} from '../progress.js'
import {collectCrds, collectObjects, type CollectResult, type ObjectSink} from '../resources/collect.js'
import {planTypes, type TypePlan} from '../resources/selection.js'
import {
  copyVolume,
  decideClaimFailure,
  DEFAULT_HELPER_IMAGE,
  HelperPods,
  isBound,
  listPods,
  snapshotClaimsCsi,
  VOLUME_STRATEGIES,
  type ClaimObject,
} from '../volumes/index.js'
import {runDump, runHook} from '../dumps/index.js'
import {isStatus} from '../cluster/api.js'
import {listWorkloads} from '../restore/restart.js'
import {pushRunMetrics, type RunStatus} from '../metrics/pushgateway.js'
import {loadPlan} from '../plan/plan.js'
import {DEFAULT_SNAPSHOT_TIMEOUT_SECONDS, snapshotSettings, strategyOf, type SnapshotSettings} from '../plan/settings.js'
import {formatPrune, keepFlags, pruneDirectory, type PruneResult} from './prune.js'

/** What `snapshot --json` prints. */
export interface SnapshotSummary {
  /** `partial` when types could not be listed or claims' data could not be copied (snapshotStatus). */
  status: SnapshotStatus
  path: string
  namespace: string
  number: number
  startedAt: string
  finishedAt: string
  objects: number
  /** Volumes streamed into the archive (--volumes tar). */
  volumes: number
  /** VolumeSnapshots taken and recorded (--volumes csi). */
  volumeSnapshots: number
  /** Application dumps stored (--dump). */
  dumps: number
  bytes: number
  /** Requests sent to the API server, retries included. */
  apiRequests: number
  /** Objects and types left out, with reasons (also in the manifest). */
  skipped: Manifest['skipped']
  warnings: string[]
  /** What --prune kept and removed in the namespace, when it ran. */
  prune?: PruneResult
  /** The copy to the plan's copyTo, when it has one. */
  copy?: CopyResult
}

export default class Snapshot extends KubesnapCommand<typeof Snapshot> {
  static override summary = "Take the next numbered snapshot of a namespace's objects into an archive."

  static override description = `Lists every namespaced type discovery shows (custom resources, Secrets, ConfigMaps, workloads, …), leaves out what the cluster makes by itself, and writes each object as the server returned it into DIR/<namespace>-<number>-<time>.kubesnap.tar (mode 0600), under a temporary name until complete.
Then the data of every PersistentVolumeClaim it stored: with --volumes tar (default) streamed as \`tar cf -\` out of a running container that mounts the claim, or out of a helper pod when none can, and checked end to end; with --volumes csi taken as VolumeSnapshots that stay in the cluster.
With --config, the settings come from a kubesnap.yaml plan (flags given as well win), for cron: no prompts, timestamped plain lines when not on a terminal, --quiet for warnings and errors only. --prune then applies the retention policy to the namespace's archives after a successful run, and --pushgateway reports the run's outcome, failed or not.
A claim whose data cannot be copied after its attempts is left out and named: the archive keeps the objects and every other volume and records the claim in its skipped list (--volumes-required fails the run instead, with no archive).
Exit codes: 0 complete, 1 failed (no archive, or --prune failed after the archive was written), 2 usage or an invalid plan, 3 partial (some types could not be listed, or some claims' data could not be copied; the archive says which), 5 another run holds DIR, 6 the archive was written but copying it to the plan's copyTo failed.`

  static override examples = [
    '<%= config.bin %> snapshot -n shop -o /var/backups/kubesnap',
    '<%= config.bin %> snapshot -n shop --include-kinds secrets,configmaps',
    '<%= config.bin %> snapshot -n shop -l app=db --exclude-kinds cronjobs --json',
    '<%= config.bin %> snapshot -n shop --volumes csi --snapshot-class csi-snapclass',
    '<%= config.bin %> snapshot -n shop --helper-image registry.example.com/busybox:1.36',
    '<%= config.bin %> snapshot -n shop --volumes-required',
    "<%= config.bin %> snapshot -n shop --dump 'db=statefulset/mariadb,container=mariadb:mysqldump --all-databases' --load 'db=mysql'",
    "<%= config.bin %> snapshot -n shop --pre-hook 'deployment/app:touch /data/.frozen' --post-hook 'deployment/app:rm -f /data/.frozen'",
    '<%= config.bin %> snapshot --config /etc/kubesnap/shop.yaml --prune --quiet',
    '<%= config.bin %> snapshot -n shop --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --recipients-file ~/.ssh/team.pub',
    '<%= config.bin %> snapshot -n shop -o /var/backups/kubesnap --sign-with /etc/kubesnap/signing-key',
    '<%= config.bin %> snapshot -n shop -o /var/backups/kubesnap --prune --keep-daily 7 --keep-weekly 4 --pushgateway http://127.0.0.1:9091',
  ]

  static override flags = {
    config: Flags.string({summary: 'Take the settings from this kubesnap.yaml plan; flags given as well override it.', helpGroup: 'PLAN'}),
    quiet: quietFlag,
    output: Flags.string({char: 'o', summary: 'Directory for the archive, created 0700 if missing (default: the plan\'s output, else the working directory).'}),
    'include-kinds': Flags.string({summary: 'Only these types (kind, plural, short name or resource.group; comma-separated or repeated).', multiple: true}),
    'exclude-kinds': Flags.string({summary: 'Leave these types out.', multiple: true}),
    selector: Flags.string({char: 'l', summary: 'Only objects matching this label selector (as kubectl -l).'}),
    concurrency: Flags.integer({summary: 'Types listed at once.', default: 2, min: 1, max: 32, hidden: true}),
    volumes: Flags.string({summary: 'How claims\' data is taken: tar (default) streams it into the archive, csi takes VolumeSnapshots, none skips it; for every claim, overriding the plan\'s per-claim choices.', options: [...VOLUME_STRATEGIES], helpGroup: 'VOLUMES'}),
    'helper-image': Flags.string({summary: `Image of the helper pod that mounts a claim no usable container mounts; needs sh, tar, sleep (default: ${DEFAULT_HELPER_IMAGE}).`, helpGroup: 'VOLUMES'}),
    'helper-as-root': Flags.boolean({summary: 'Run helper pods as root with only the capabilities a copy needs (reads files of every owner), where the namespace\'s policy allows it; also when the application\'s own container cannot read some of its files (default: as the application runs).', helpGroup: 'VOLUMES'}),
    'snapshot-class': Flags.string({summary: 'VolumeSnapshotClass for --volumes csi (default: the cluster\'s default class).', helpGroup: 'VOLUMES'}),
    'snapshot-timeout': Flags.integer({summary: `Seconds to wait for VolumeSnapshots to be ready (default: ${DEFAULT_SNAPSHOT_TIMEOUT_SECONDS}).`, min: 1, helpGroup: 'VOLUMES'}),
    'volume-attempts': Flags.integer({summary: 'Attempts per volume stream before the claim counts as failed.', default: 3, min: 1, max: 10, hidden: true}),
    'volumes-required': Flags.boolean({summary: 'Fail the whole snapshot (no archive) when any claim\'s data cannot be copied, instead of keeping the rest and exiting 3 (partial).', helpGroup: 'VOLUMES'}),
    dump: Flags.string({summary: 'Store the stdout of `sh -c COMMAND`, run in the first Ready pod of a workload, as dump NAME: NAME=KIND/WORKLOAD[,container=C]:COMMAND (KIND statefulset, deployment or pod).', multiple: true, helpGroup: 'DUMPS'}),
    load: Flags.string({summary: 'The command that reads dump NAME on stdin at restore: NAME=COMMAND.', multiple: true, helpGroup: 'DUMPS'}),
    'pre-hook': Flags.string({summary: 'Run `sh -c COMMAND` before the volume copy: KIND/WORKLOAD[,container=C]:COMMAND.', multiple: true, helpGroup: 'DUMPS'}),
    'post-hook': Flags.string({summary: 'Run `sh -c COMMAND` after the volume copy, also when it fails: KIND/WORKLOAD[,container=C]:COMMAND.', multiple: true, helpGroup: 'DUMPS'}),
    prune: Flags.boolean({summary: 'After a successful run, delete the namespace\'s archives in DIR that the retention policy (--keep-* or the plan\'s) does not keep.', helpGroup: 'RETENTION'}),
    ...keepFlags('RETENTION'),
    'encrypt-to': Flags.string({summary: 'Encrypt every entry to this age recipient (age1…) or ssh public key (ssh-ed25519/ssh-rsa …); repeatable.', multiple: true, helpGroup: 'ENCRYPTION'}),
    'recipients-file': Flags.string({summary: 'Encrypt to every recipient in this file (one per line, # comments, as age -R reads); repeatable.', multiple: true, helpGroup: 'ENCRYPTION'}),
    'sign-with': signWithFlag,
    pushgateway: Flags.string({summary: 'Push the run\'s outcome (success or failure, duration, bytes, objects, volumes) to this Prometheus Pushgateway, under job kubesnap and the namespace.', helpGroup: 'METRICS'}),
  }

  /** The namespace once the connection has resolved it (for metrics of a failed run). */
  private namespace?: string

  public async run(): Promise<SnapshotSummary> {
    const startedAt = new Date()
    const plan = this.flags.config ? await loadPlan(this.flags.config) : undefined
    const settings = snapshotSettings(this.flags, plan)
    // Recipients and the signing key are checked before anything else: a typo in a key must not cost a whole run.
    const encryption = await cipherFor(settings.encryption)
    const signer = settings.signWith === undefined ? undefined : await loadSigningKey(settings.signWith)
    this.namespace = settings.connection.namespace
    let summary: SnapshotSummary | undefined
    try {
      // A full, read-only or forbidden output directory is one sentence with its fix, wherever it surfaced.
      summary = await this.snapshot(settings, encryption, signer).catch((err: unknown) => {
        throw diskError(err, settings.output, 'no archive was written') ?? err
      })
      // Before pruning: while the second place cannot take copies, older archives stay where they are.
      if (settings.copyTo) summary.copy = await copyToSecondPlace(summary.path, settings.copyTo)
      if (settings.prune) {
        if (summary.status === 'complete') summary.prune = await this.prune(settings, summary)
        else this.note(`Archives were not pruned: snapshot ${summary.number} is partial, and only a complete snapshot lets older ones go.`)
      }
    } catch (err) {
      await this.pushMetrics(settings, startedAt, summary, err)
      throw err
    }
    await this.pushMetrics(settings, startedAt, summary)
    if (!this.flags.quiet) {
      const volumes = summary.volumeSnapshots > 0 ? `, ${summary.volumeSnapshots} VolumeSnapshots` : `, ${summary.volumes} volumes`
      this.log(`Snapshot ${summary.number} of ${summary.namespace} (${summary.status}): ${summary.objects} objects${volumes}${summary.dumps > 0 ? `, ${summary.dumps} dumps` : ''}, ${summary.skipped.length} left out → ${summary.path}`)
      if (summary.copy) this.log(`Copied to ${summary.copy.to} (verified).`)
      if (summary.prune) for (const line of formatPrune(summary.prune, summary.namespace)) this.log(line)
    }
    return summary
  }

  /** Takes the snapshot: objects, dumps, hooks and volume data into a finished archive. */
  private async snapshot(settings: SnapshotSettings, encryption: Awaited<ReturnType<typeof cipherFor>>, signer?: ManifestSigner): Promise<SnapshotSummary> {
    const dumpPlan = settings.dumps
    const {api, namespace, config} = await this.connect(settings.connection)
    this.namespace = namespace
    // The archive is opened first: a held lock fails fast, before any API call,
    // and Ctrl-C from here on removes the temporary file.
    const writer = await createArchiveWriter({
      dir: settings.output,
      namespace,
      kubesnapVersion: this.config.version,
      cluster: {server: config.server, context: config.context},
      cipher: encryption?.cipher,
      recipients: encryption?.recipients,
      signer,
    })
    const detachSignals = abortOnSignals(writer)

    let plan: TypePlan = {types: [], skipped: []}
    let collected: CollectResult = {stored: {}, skipped: [], unlisted: []}
    const unlisted: CollectResult['unlisted'] = []
    let crdsReadable = true
    let manifest: Manifest | undefined
    // The claims stored with the objects: their data follows (so -l and --include-kinds select volumes too).
    const claims: ClaimObject[] = []
    const sink: ObjectSink = {
      addObject: (meta, content) => {
        if (meta.group === '' && meta.resource === 'persistentvolumeclaims') claims.push(JSON.parse(content.toString()) as ClaimObject)
        return writer.addObject(meta, content)
      },
    }
    const volumeSkipped: SkippedItem[] = []
    const volumeWarnings: string[] = []
    let volumeSnapshots = 0
    // Post-hooks run once pre-hooks have started, also when the copy fails.
    const hooks = {bracketed: false, postDone: false}
    const runPostHooks = async (report?: (line: string) => void) => {
      hooks.postDone = true
      // Every post-hook runs; the first failure is reported.
      let failure: unknown
      for (const hook of dumpPlan.postHooks) {
        await runHook(api, namespace, hook, 'post-hook').then((at) => report?.(`post-hook in ${at.pod}: done`), (err: unknown) => (failure ??= err))
      }
      if (failure) throw failure
    }

    /** Whether the namespace exists, as far as the identity may tell (undefined: it may not get namespaces). */
    let exists: boolean | undefined
    const tasks = taskList([
      {
        title: 'Discover resource types',
        task: async (_ctx, task) => {
          // A typo in -n or a plan must not make "successful" empty backups forever.
          exists = await namespaceExists(api, namespace)
          if (exists === false) throw new KubesnapError(`The namespace ${namespace} does not exist on ${config.server}; check the name given with -n (or the plan's namespace).`)
          const discovery = await discoverResourceTypes(api)
          plan = planTypes(discovery.types, {includeKinds: settings.includeKinds, excludeKinds: settings.excludeKinds})
          for (const failure of discovery.failed) unlisted.push({resource: failure.groupVersion, reason: `discovery failed: ${failure.error}`})
          task.title = `Discovered ${plan.types.length} types to list in ${namespace}`
        },
      },
      {
        title: `List objects into snapshot ${writer.number}`,
        task: async (_ctx, task) => {
          let done = 0
          collected = await collectObjects({
            api,
            namespace,
            types: plan.types,
            sink,
            labelSelector: settings.selector,
            concurrency: this.flags.concurrency,
            onTypeDone: (type, stored) => {
              done++
              if (stored > 0) task.output = `${qualifiedName(type)}: ${stored}`
              task.title = `Listed ${done}/${plan.types.length} types`
            },
          })
          unlisted.push(...collected.unlisted)
          const listed = plan.types.map((p) => p.type).filter((t) => collected.stored[qualifiedName(t)] > 0)
          crdsReadable = (await collectCrds(api, listed, writer)).readable
          task.title = `Listed ${countObjects(collected)} objects of ${listed.length} types`
        },
      },
      {
        title: `Run ${dumpPlan.dumps.length} application dump(s)`,
        enabled: () => dumpPlan.dumps.length > 0,
        task: async (_ctx, task) => {
          for (const dump of dumpPlan.dumps) {
            // Named, never shown: a command line may hold credentials.
            task.output = `${dump.name}: running`
            const entry = await runDump(api, namespace, dump, writer)
            task.output = `${dump.name}: ${formatBytes(entry.rawSize)} (${formatBytes(entry.size)} stored)`
          }
          task.title = `Stored ${dumpPlan.dumps.length} application dump(s)`
        },
      },
      {
        title: 'Run pre-hooks',
        enabled: () => dumpPlan.preHooks.length > 0 || dumpPlan.postHooks.length > 0,
        task: async (_ctx, task) => {
          hooks.bracketed = true
          for (const hook of dumpPlan.preHooks) {
            const at = await runHook(api, namespace, hook, 'pre-hook')
            task.output = `pre-hook in ${at.pod}: done`
          }
          task.title = `Ran ${dumpPlan.preHooks.length} pre-hook(s)`
        },
      },
      {
        title: 'Copy volume data',
        enabled: () => claims.length > 0,
        task: async (_ctx, task) => {
          const names = new Set(claims.map((c) => c.metadata!.name!))
          for (const claim of Object.keys(settings.volumes.claims).filter((c) => !names.has(c)).sort()) {
            volumeWarnings.push(`The plan sets a volume strategy for claim ${claim}, which this snapshot does not hold.`)
          }
          const bound = claims.filter(isBound).map((c) => c.metadata!.name!).sort()
          for (const claim of claims.filter((c) => !isBound(c))) {
            volumeSkipped.push({kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: claim.metadata?.name, reason: 'data not copied: the claim is not bound to a volume'})
          }
          const byStrategy = (strategy: string) => bound.filter((c) => strategyOf(settings.volumes, c) === strategy)
          const [tar, csi, none] = [byStrategy('tar'), byStrategy('csi'), byStrategy('none')]
          for (const claim of none) {
            volumeSkipped.push({kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: claim, reason: 'data not copied: its volume strategy is none'})
          }
          if (tar.length + csi.length === 0) {
            task.title = bound.length === 0 ? 'No bound claims: no volume data to copy' : `No volume data copied (strategy none for ${none.length} claim(s))`
            return
          }
          if (csi.length > 0) {
            const result = await snapshotClaimsCsi({
              api, namespace, claims: csi, number: writer.number, startedAt: writer.startedAt, sink: writer,
              snapshotClass: settings.volumes.snapshotClass, timeoutMs: settings.volumes.snapshotTimeoutSeconds * 1000,
              onStatus: (line) => (task.output = line),
            })
            volumeSnapshots = csi.length
            task.title = `Took ${csi.length} VolumeSnapshot(s)${result.snapshotClass ? ` of class ${result.snapshotClass}` : ''}`
          }
          if (tar.length === 0) return
          // One claim at a time: running container that mounts it (else a helper pod) → tar over exec → archive entry.
          const helpers = new HelperPods(api, namespace, {image: settings.volumes.helperImage, asRoot: settings.volumes.helperAsRoot})
          const detachHelperCleanup = helpers.deleteOnSignals()
          // Leftovers of a killed run first: they mount claims and would pin helpers beside them.
          volumeWarnings.push(...await helpers.removeStale())
          const pods = await listPods(api, namespace)
          // When no pod mounts a claim, its helper runs as the workload whose template does.
          // Without the right to list them (a Role for snapshots of some kinds only), helpers run as root or as the platform says.
          const workloads = (await listWorkloads(api, namespace).catch((err: unknown) => {
            if (isStatus(err, 403)) return []
            throw err
          })).map((w) => ({...w.object, kind: w.kind}))
          let failed = 0
          try {
            for (const [index, claim] of tar.entries()) {
              task.title = `Copy volume data (${index + 1}/${tar.length}): ${claim}`
              try {
                const {entry, helperReason, warnings} = await copyVolume({
                  api, namespace, claim, pods, workloads, sink: writer, helpers, attempts: this.flags['volume-attempts'],
                  onStatus: (line) => (task.output = `${claim}: ${line}`),
                  onProgress: (bytes) => (task.output = `${claim}: ${formatBytes(bytes)}`),
                })
                if (helperReason) volumeWarnings.push(`Claim ${claim} was copied through a helper pod: ${helperReason}.`)
                volumeWarnings.push(...warnings)
                task.output = `${claim}: ${formatBytes(entry.rawSize)} (${formatBytes(entry.size)} stored)`
              } catch (err) {
                // One claim's failure leaves it out (the snapshot is partial), unless volumes are required or the archive itself failed.
                const decision = decideClaimFailure(claim, err, {volumesRequired: settings.volumes.required, archiveOpen: writer.state === 'open', output: settings.output})
                if (decision.action === 'abort') throw err
                failed++
                volumeSkipped.push(decision.skipped)
                volumeWarnings.push(decision.warning)
                task.output = `${claim}: not copied`
              }
            }
          } finally {
            await helpers.removeAll()
            detachHelperCleanup()
          }
          task.title = `Copied the data of ${tar.length - failed}/${tar.length} claim(s)${csi.length > 0 ? `, took ${csi.length} VolumeSnapshot(s)` : ''}`
        },
      },
      {
        title: 'Run post-hooks',
        enabled: () => dumpPlan.postHooks.length > 0,
        task: async (_ctx, task) => {
          await runPostHooks((line) => (task.output = line))
          task.title = `Ran ${dumpPlan.postHooks.length} post-hook(s)`
        },
      },
      {
        title: 'Finish the archive',
        task: async (_ctx, task) => {
          if (exists === undefined && countObjects(collected) === 0) {
            const narrowed = settings.selector || settings.includeKinds?.length ? ' and what -l/--include-kinds select' : ''
            throw new KubesnapError(`No object of namespace ${namespace} could be stored, and this identity may not get namespaces to tell whether it exists; check the name given with -n${narrowed} (no archive was written).`)
          }
          const warnings = [...unlisted.map((u) => `Could not list ${u.resource} (${u.reason}).`), ...volumeWarnings]
          if (!crdsReadable) warnings.push('CustomResourceDefinitions are not readable with these credentials and are not in the archive; restore needs them installed already.')
          const result = await writer.finish({
            skipped: [...plan.skipped, ...collected.skipped, ...unlisted.map((u) => ({resource: u.resource, reason: `${UNLISTED_REASON}${u.reason}`, failed: true})), ...volumeSkipped],
            warnings,
          })
          manifest = result.manifest
          task.title = `Wrote ${result.path}`
        },
      },
    ], {json: this.jsonEnabled(), quiet: this.flags.quiet})

    try {
      await tasks.run()
    } catch (err) {
      if (hooks.bracketed && !hooks.postDone) {
        // The copy (or a pre-hook) failed: undo what the pre-hooks did all the same.
        await runPostHooks().catch((postErr: unknown) => this.note(`${(postErr as Error).message}`))
      }
      await writer.abort()
      throw err
    } finally {
      detachSignals()
    }

    const status = snapshotStatus(manifest!)
    if (status === 'partial') process.exitCode = EXIT.partial
    for (const warning of manifest!.warnings) this.note(warning)
    return summarize(manifest!, writer.path, status, api.requests, volumeSnapshots)
  }

  /** Applies the retention policy to the namespace's archives; a failure fails the run, naming the archive that was written. */
  private async prune(settings: SnapshotSettings, summary: SnapshotSummary): Promise<PruneResult> {
    try {
      return await pruneDirectory(settings.output, {policy: settings.prune!, namespace: summary.namespace, dryRun: false})
    } catch (err) {
      const why = err instanceof LockedError ? 'another kubesnap run holds the directory' : messageOf(err).replace(/\.$/, '')
      throw new KubesnapError(`Snapshot ${summary.number} was written to ${summary.path}, but pruning failed (${why}); run kubesnap prune -o ${settings.output} -n ${summary.namespace} once the cause is fixed.`, {cause: err})
    }
  }

  /** Reports the run to the Pushgateway, if one is set; a push that fails is a warning, never the run's outcome. */
  private async pushMetrics(settings: SnapshotSettings, startedAt: Date, summary: SnapshotSummary | undefined, err?: unknown): Promise<void> {
    if (!settings.pushgateway) return
    if (!this.namespace) {
      this.note('Metrics were not pushed: the run failed before it knew its namespace.')
      return
    }
    const exitCode = err === undefined ? (summary?.status === 'partial' ? EXIT.partial : EXIT.ok) : exitCodeOf(err)
    const status: RunStatus = exitCode === EXIT.ok ? 'success' : exitCode === EXIT.partial ? 'partial' : 'failed'
    const archiveBytes = summary ? await archiveSize(summary.path).then((s) => s ?? 0, () => 0) : 0
    await pushRunMetrics(settings.pushgateway, {
      namespace: this.namespace, status, startedAt, finishedAt: new Date(), exitCode,
      bytes: archiveBytes, objects: summary?.objects ?? 0, volumes: (summary?.volumes ?? 0) + (summary?.volumeSnapshots ?? 0),
    }).catch((pushErr: unknown) => this.note(messageOf(pushErr)))
  }
}

/** The exit code an error ends the run with (as KubesnapCommand.catch decides it). */
function exitCodeOf(err: unknown): number {
  return (err as {exitCode?: number}).exitCode ?? EXIT.failed
}

function countObjects(collected: CollectResult): number {
  return Object.values(collected.stored).reduce((a, b) => a + b, 0)
}


function summarize(manifest: Manifest, path: string, status: SnapshotSummary['status'], apiRequests: number, volumeSnapshots: number): SnapshotSummary {
  return {
    status,
    path,
    namespace: manifest.namespace,
    number: manifest.number,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    objects: manifest.entries.filter((e) => e.type === 'object').length,
    volumes: manifest.entries.filter((e) => e.type === 'volume').length,
    volumeSnapshots,
    dumps: manifest.entries.filter((e) => e.type === 'dump').length,
    bytes: manifest.entries.reduce((sum, e) => sum + e.size, 0),
    apiRequests,
    skipped: manifest.skipped,
    warnings: manifest.warnings,
  }
}
