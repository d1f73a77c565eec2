import {Flags} from '@oclif/core'
import {createArchiveWriter} from '../archive/writer.js'
import {copyToSecondPlace, type CopyResult} from '../archive/copy.js'
import {archiveSize} from '../archive/store.js'
import {diskError} from '../archive/disk.js'
import {LockedError} from '../archive/lock.js'
import {STREAM_COMPRESSIONS} from '../archive/manifest.js'
import {KubesnapCommand} from '../base-command.js'
import {cipherFor} from '../archive/contents.js'
import {loadSigningKey, type ManifestSigner} from '../archive/sign.js'
import {signWithFlag} from '../signing.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {phaseRunner, quietFlag} from '../progress.js'
import {endBySignal, interruptOnSignals} from '../signals.js'
import type {SnapshotResult} from '../snapshot/summary.js'
import {takeSnapshot} from '../snapshot/take.js'
import {DEFAULT_HELPER_IMAGE, VOLUME_STRATEGIES} from '../volumes/index.js'
import {pushRunMetrics, type RunStatus} from '../metrics/pushgateway.js'
import {loadPlan} from '../plan/plan.js'
import {DEFAULT_SNAPSHOT_TIMEOUT_SECONDS, snapshotSettings, type SnapshotSettings} from '../plan/settings.js'
import {formatPrune, pruneDirectory, type PruneResult} from '../archive/prune.js'
import {keepFlags} from '../flags.js'

/** What `snapshot --json` prints. */
export interface SnapshotSummary extends SnapshotResult {
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
    compression: Flags.string({summary: 'How volume data is stored: gzip (default) or none, which stores each volume\'s tar as it came: faster where the network is fast, for an archive as large as the data.', options: [...STREAM_COMPRESSIONS], helpGroup: 'VOLUMES'}),
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
      // The archive is written (complete or partial). The copy comes before pruning: while the second place cannot take copies, older archives stay where they are.
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

  /** Takes the snapshot into a new archive, showing its phases; on Ctrl-C, ends by the signal once the archive and helpers are gone. */
  private async snapshot(settings: SnapshotSettings, encryption: Awaited<ReturnType<typeof cipherFor>>, signer?: ManifestSigner): Promise<SnapshotSummary> {
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
      compression: settings.volumes.compression,
    })
    const interrupt = interruptOnSignals()
    // The pipeline stops in order; should anything hang, the signal still ends the run within 10 s.
    interrupt.signal.addEventListener('abort', () => setTimeout(() => endBySignal(interrupt.received!), 10_000).unref(), {once: true})
    const progress = {...phaseRunner({json: this.jsonEnabled(), quiet: this.flags.quiet}), note: (message: string) => this.note(message)}
    let result: SnapshotResult
    try {
      result = await takeSnapshot({api, namespace, server: config.server}, settings, writer, progress, {
        concurrency: this.flags.concurrency, volumeAttempts: this.flags['volume-attempts'], signal: interrupt.signal,
      })
    } finally {
      interrupt.stop()
      // Interrupted: everything is put back; the run ends as the signal would have ended it.
      if (interrupt.received) endBySignal(interrupt.received)
    }
    if (result.status === 'partial') process.exitCode = EXIT.partial
    for (const warning of result.warnings) this.note(warning)
    return result
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
