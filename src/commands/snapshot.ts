import {Flags} from '@oclif/core'
import {abortOnSignals, createArchiveWriter} from '../archive/writer.js'
import type {Manifest} from '../archive/manifest.js'
import {KubesnapCommand} from '../base-command.js'
import {discoverResourceTypes, qualifiedName} from '../cluster/index.js'
import {EXIT} from '../errors.js'
import {taskList} from '../progress.js'
import {collectCrds, collectObjects, type CollectResult} from '../resources/collect.js'
import {planTypes, type TypePlan} from '../resources/selection.js'

/** What `snapshot --json` prints. */
export interface SnapshotSummary {
  status: 'complete' | 'partial'
  path: string
  namespace: string
  number: number
  startedAt: string
  finishedAt: string
  objects: number
  volumes: number
  bytes: number
  /** Requests sent to the API server, retries included. */
  apiRequests: number
  /** Objects and types left out, with reasons (also in the manifest). */
  skipped: Manifest['skipped']
  warnings: string[]
}

export default class Snapshot extends KubesnapCommand<typeof Snapshot> {
  static override summary = "Take the next numbered snapshot of a namespace's objects into an archive."

  static override description = `Lists every namespaced type discovery shows (custom resources, Secrets, ConfigMaps, workloads, …), leaves out what the cluster makes by itself, and writes each object as the server returned it into DIR/<namespace>-<number>-<time>.kubesnap.tar (mode 0600), under a temporary name until complete.
Exit codes: 0 complete, 1 failed (no archive), 2 usage, 3 partial (some types could not be listed; the archive says which), 5 another run holds DIR.`

  static override examples = [
    '<%= config.bin %> snapshot -n shop -o /var/backups/kubesnap',
    '<%= config.bin %> snapshot -n shop --include-kinds secrets,configmaps',
    '<%= config.bin %> snapshot -n shop -l app=db --exclude-kinds cronjobs --json',
  ]

  static override flags = {
    output: Flags.string({char: 'o', summary: 'Directory for the archive (created 0700 if missing).', default: '.'}),
    'include-kinds': Flags.string({summary: 'Only these types (kind, plural, short name or resource.group; comma-separated or repeated).', multiple: true}),
    'exclude-kinds': Flags.string({summary: 'Leave these types out.', multiple: true}),
    selector: Flags.string({char: 'l', summary: 'Only objects matching this label selector (as kubectl -l).'}),
    concurrency: Flags.integer({summary: 'Types listed at once.', default: 4, min: 1, max: 32, hidden: true}),
  }

  public async run(): Promise<SnapshotSummary> {
    const {api, namespace, config} = this.connect()
    // The archive is opened first: a held lock fails fast, before any API call,
    // and Ctrl-C from here on removes the temporary file.
    const writer = await createArchiveWriter({
      dir: this.flags.output,
      namespace,
      kubesnapVersion: this.config.version,
      cluster: {server: config.server, context: config.context},
    })
    const detachSignals = abortOnSignals(writer)

    let plan: TypePlan = {types: [], skipped: []}
    let collected: CollectResult = {stored: {}, skipped: [], unlisted: []}
    const unlisted: CollectResult['unlisted'] = []
    let crdsReadable = true
    let manifest: Manifest | undefined

    const tasks = taskList([
      {
        title: 'Discover resource types',
        task: async (_ctx, task) => {
          const discovery = await discoverResourceTypes(api)
          plan = planTypes(discovery.types, {includeKinds: this.flags['include-kinds'], excludeKinds: this.flags['exclude-kinds']})
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
            sink: writer,
            labelSelector: this.flags.selector,
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
        title: 'Finish the archive',
        task: async (_ctx, task) => {
          const warnings = unlisted.map((u) => `Could not list ${u.resource} (${u.reason}).`)
          if (!crdsReadable) warnings.push('CustomResourceDefinitions are not readable with these credentials and are not in the archive; restore needs them installed already.')
          const result = await writer.finish({
            skipped: [...plan.skipped, ...collected.skipped, ...unlisted.map((u) => ({resource: u.resource, reason: `could not be listed: ${u.reason}`}))],
            warnings,
          })
          manifest = result.manifest
          task.title = `Wrote ${result.path}`
        },
      },
    ], {json: this.jsonEnabled()})

    try {
      await tasks.run()
    } catch (err) {
      await writer.abort()
      throw err
    } finally {
      detachSignals()
    }

    const status = unlisted.length > 0 ? 'partial' : 'complete'
    if (status === 'partial') process.exitCode = EXIT.partial
    for (const warning of manifest!.warnings) this.note(warning)
    const summary = summarize(manifest!, writer.path, status, api.requests)
    this.log(`Snapshot ${summary.number} of ${namespace} (${status}): ${summary.objects} objects, ${summary.skipped.length} left out → ${summary.path}`)
    return summary
  }
}

function countObjects(collected: CollectResult): number {
  return Object.values(collected.stored).reduce((a, b) => a + b, 0)
}

function summarize(manifest: Manifest, path: string, status: SnapshotSummary['status'], apiRequests: number): SnapshotSummary {
  return {
    status,
    path,
    namespace: manifest.namespace,
    number: manifest.number,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    objects: manifest.entries.filter((e) => e.type === 'object').length,
    volumes: manifest.entries.filter((e) => e.type === 'volume').length,
    bytes: manifest.entries.reduce((sum, e) => sum + e.size, 0),
    apiRequests,
    skipped: manifest.skipped,
    warnings: manifest.warnings,
  }
}
