import {Args, Flags} from '@oclif/core'
import {verifyArchive} from '../archive/verify.js'
import {openArchive} from '../archive/reader.js'
import {archiveSelectionFlags, selectArchive} from '../archive/select.js'
import type {ObjectEntry} from '../archive/manifest.js'
import {KubesnapCommand} from '../base-command.js'
import {discoverResourceTypes, matchType, qualifiedName, type ResourceType} from '../cluster/index.js'
import {EXIT, KubesnapError} from '../errors.js'
import {taskList} from '../progress.js'
import type {ExistingPolicy} from '../resources/apply.js'
import {parseLabelSelector} from '../resources/label-selector.js'
import {orderForRestore} from '../resources/priorities.js'
import {checkPreconditions, type Preconditions} from '../restore/preconditions.js'
import {restoreObjects, type ObjectOutcome} from '../restore/objects.js'

/** What `restore --json` prints. */
export interface RestoreSummary {
  status: 'complete' | 'partial'
  dryRun: boolean
  archive: string
  sourceNamespace: string
  namespace: string
  namespaceCreated: boolean
  objects: {create: number; update: number; skip: number; conflict: number; failed: number}
  outcomes: ObjectOutcome[]
  warnings: string[]
}

export default class Restore extends KubesnapCommand<typeof Restore> {
  static override summary = 'Verify a snapshot, then put its objects back into a namespace.'

  static override description = `Checks every byte of the archive first and every precondition next (namespace, custom resource types served, permissions), reporting all that is missing at once; nothing is written to the cluster unless all hold.
Objects are cleaned (server-set fields, allocated IPs and node ports, volume bindings, generated tokens) and created in the order of a priorities table: ServiceAccounts, Secrets, ConfigMaps, claims, Services, RBAC, custom resources, then workloads.
Exit codes: 0 complete, 1 failed before any write (damaged archive, unmet preconditions), 2 usage, 3 partial (some objects failed; the summary lists them).`

  static override examples = [
    '<%= config.bin %> restore --latest -n shop -o /var/backups/kubesnap',
    '<%= config.bin %> restore shop-000042-20261121T030000Z.kubesnap.tar --to-namespace shop-dr --create-namespace',
    '<%= config.bin %> restore --latest -n shop --only-secrets --existing update',
    '<%= config.bin %> restore --number 42 -n shop --dry-run',
  ]

  static override args = {
    archive: Args.string({description: 'The archive file (or use --number/--latest with -o and -n).'}),
  }

  static override flags = {
    number: archiveSelectionFlags.number,
    latest: archiveSelectionFlags.latest,
    output: archiveSelectionFlags.output,
    'to-namespace': Flags.string({summary: 'Restore into this namespace instead of the snapshot\'s own (RoleBinding subjects follow).'}),
    'create-namespace': Flags.boolean({summary: 'Create the target namespace when it does not exist.'}),
    existing: Flags.string({summary: 'What to do with objects that exist already.', options: ['skip', 'update', 'fail'], default: 'skip'}),
    'include-kinds': Flags.string({summary: 'Only these types (kind, plural, short name or resource.group).', multiple: true}),
    'exclude-kinds': Flags.string({summary: 'Leave these types out.', multiple: true}),
    selector: Flags.string({char: 'l', summary: 'Only objects whose stored labels match this selector.'}),
    'only-secrets': Flags.boolean({summary: 'Only Secrets: the runbook shortcut to repopulate them.'}),
    'dry-run': Flags.boolean({summary: 'Print what would be created, updated or skipped (with field changes); write nothing.'}),
    concurrency: Flags.integer({summary: 'Objects of one rank applied at once.', default: 8, min: 1, max: 64, hidden: true}),
  }

  public async run(): Promise<RestoreSummary> {
    const flags = this.flags
    const path = await selectArchive({path: this.args.archive, number: flags.number, latest: flags.latest, dir: flags.output, namespace: flags.namespace})
    const {api} = this.connect()
    const dryRun = flags['dry-run']
    const existing = flags.existing as ExistingPolicy
    const selector = parseLabelSelector(flags.selector ?? '')

    const state: {
      reader?: Awaited<ReturnType<typeof openArchive>>
      entries: ObjectEntry[]
      preconditions?: Preconditions
      outcomes: ObjectOutcome[]
      namespace: string
      namespaceCreated: boolean
    } = {entries: [], outcomes: [], namespace: '', namespaceCreated: false}

    const tasks = taskList([
      {
        title: `Verify ${path}`,
        task: async (_ctx, task) => {
          // Every byte before the first write: a damaged archive never half-restores.
          const verified = await verifyArchive(path)
          if (!verified.ok) {
            throw new KubesnapError(`The archive ${path} is damaged at ${verified.entry} (${verified.problem}); nothing was restored: restore from another snapshot.`)
          }
          state.reader = await openArchive(path)
          task.title = `Verified ${path} (${verified.members} members)`
        },
      },
      {
        title: 'Check preconditions',
        task: async (_ctx, task) => {
          const manifest = state.reader!.manifest
          state.namespace = this.targetNamespace(manifest.namespace)
          const served = (await discoverResourceTypes(api)).types
          state.entries = orderForRestore(this.selectEntries(manifest.entries.filter((e): e is ObjectEntry => e.type === 'object'), served))
          const crdPaths = new Map(manifest.entries.filter((e): e is ObjectEntry => e.type === 'crd').map((e) => [e.name, e.path]))
          state.preconditions = await checkPreconditions(api, {
            entries: state.entries, served, namespace: state.namespace, createNamespace: flags['create-namespace'], existing, crdPaths,
          })
          if (state.preconditions.problems.length > 0) {
            const list = state.preconditions.problems.map((p) => `\n  - ${p}`).join('')
            throw new KubesnapError(`Restore cannot start; nothing was changed:${list}`)
          }
          task.title = `Preconditions hold for ${state.entries.length} objects into ${state.namespace}`
        },
      },
      {
        title: 'Create the namespace',
        enabled: () => state.preconditions?.namespaceExists === false,
        skip: () => dryRun && 'dry run: the namespace would be created',
        task: async () => {
          await api.post('/api/v1/namespaces', {apiVersion: 'v1', kind: 'Namespace', metadata: {name: state.namespace}})
          state.namespaceCreated = true
        },
      },
      {
        title: dryRun ? 'Plan objects (dry run)' : 'Restore objects',
        task: async (_ctx, task) => {
          let done = 0
          // In a namespace that does not exist yet, the server cannot dry-run creates: they are plain creates.
          const offline = dryRun && state.preconditions!.namespaceExists === false
          state.outcomes = offline
            ? state.entries.map((e) => ({kind: e.kind, resource: `${e.resource}.${e.group}`, name: e.name, action: 'create' as const}))
            : await restoreObjects(api, state.reader!, {
              entries: state.entries,
              targets: state.preconditions!.targets,
              sourceNamespace: state.reader!.manifest.namespace,
              targetNamespace: state.namespace,
              selector,
              existing,
              dryRun,
              concurrency: flags.concurrency,
              onOutcome: () => {
                task.title = `${dryRun ? 'Planned' : 'Restored'} ${++done}/${state.entries.length} objects`
              },
            })
        },
      },
    ], {json: this.jsonEnabled()})

    await tasks.run()
    const summary = this.summarize(path, state, dryRun)
    this.report(summary)
    if (summary.status === 'partial') process.exitCode = EXIT.partial
    return summary
  }

  /** The namespace to restore into; -n naming another namespace than the archive's needs --to-namespace. */
  private targetNamespace(archived: string): string {
    const {namespace, 'to-namespace': to} = this.flags
    if (to) return to
    if (namespace && namespace !== archived && this.args.archive) {
      throw new KubesnapError(`The archive holds namespace ${archived}, not ${namespace}; to restore it into ${namespace}, pass --to-namespace ${namespace}.`, {exit: EXIT.usage})
    }
    return archived
  }

  /** Entries the kind flags keep; names are resolved against the target cluster's types. */
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
    return entries.filter((e) => {
      const name = qualifiedName(e)
      return (include.size === 0 || include.has(name)) && !exclude.has(name)
    })
  }

  private summarize(path: string, state: {reader?: {manifest: {namespace: string}}; outcomes: ObjectOutcome[]; namespace: string; namespaceCreated: boolean; preconditions?: Preconditions}, dryRun: boolean): RestoreSummary {
    const count = (action: ObjectOutcome['action']) => state.outcomes.filter((o) => o.action === action).length
    const objects = {create: count('create'), update: count('update'), skip: count('skip'), conflict: count('conflict'), failed: count('failed')}
    return {
      status: objects.failed + objects.conflict > 0 ? 'partial' : 'complete',
      dryRun,
      archive: path,
      sourceNamespace: state.reader!.manifest.namespace,
      namespace: state.namespace,
      namespaceCreated: state.namespaceCreated,
      objects,
      outcomes: state.outcomes,
      warnings: [...(state.preconditions?.warnings ?? []), ...state.outcomes.filter((o) => o.warning).map((o) => `${o.kind}/${o.name}: ${o.warning}`)],
    }
  }

  /** Human output: the plan (dry run) or the failures, then one summary line. */
  private report(summary: RestoreSummary): void {
    for (const warning of summary.warnings) this.note(warning)
    for (const o of summary.outcomes) {
      if (summary.dryRun) {
        this.log(`${o.action.padEnd(8)} ${o.kind}/${o.name}${o.error ? `: ${o.error}` : ''}`)
        for (const change of o.diff ?? []) this.log(`           ${change}`)
      } else if (o.action === 'failed' || o.action === 'conflict') {
        this.log(`${o.action} ${o.kind}/${o.name}: ${o.error}`)
      }
    }
    const o = summary.objects
    this.log(`${summary.dryRun ? 'Dry run: would restore' : 'Restored'} into ${summary.namespace}: ${o.create} created, ${o.update} updated, ${o.skip} skipped (exist), ${o.conflict} conflicts, ${o.failed} failed.`)
  }
}
