import {Flags} from '@oclif/core'
import {formatPrune, pruneDirectory, type PruneResult} from '../archive/prune.js'
import {isEmptyPolicy, POLICY_FLAGS, policyFromFlags} from '../archive/retention.js'
import {KubesnapCommand} from '../base-command.js'
import {keepFlags} from '../flags.js'
import {EXIT, KubesnapError} from '../errors.js'
import {loadPlan} from '../plan/plan.js'

export default class Prune extends KubesnapCommand<typeof Prune> {
  static override summary = 'Delete old snapshot archives by a retention policy (restic forget semantics).'

  static override description = `For each namespace with archives in the directory (or only -n), keeps the snapshots the --keep-* options select and deletes the other archive files. The rules are those of restic forget, counted in UTC: --keep-last N keeps the N newest; --keep-hourly/daily/weekly/monthly/yearly N keeps the newest snapshot of each of the N most recent hours/days/ISO weeks/months/years that have one (a rule with counts left also keeps the oldest snapshot). A snapshot any rule keeps is kept, and the newest snapshot of a namespace is never deleted.
Takes the directory lock, so it never races a snapshot; a held lock exits 5. Never touches .partial files or the lock. Needs no cluster access.`

  static override examples = [
    '<%= config.bin %> prune -o /var/backups/kubesnap --keep-daily 7 --keep-weekly 4 --keep-monthly 12',
    '<%= config.bin %> prune -o /var/backups/kubesnap -n shop --keep-last 3 --dry-run',
    '<%= config.bin %> prune --config /etc/kubesnap/shop.yaml',
  ]

  static override flags = {
    config: Flags.string({summary: 'Take the directory, namespace and retention policy from this kubesnap.yaml plan; flags given as well override it.'}),
    output: Flags.string({char: 'o', summary: 'The directory that holds the archives (default: the plan\'s output, else the working directory).'}),
    namespace: Flags.string({char: 'n', summary: 'Only the archives of this namespace (default: every namespace in the directory).'}),
    ...keepFlags('POLICY'),
    'dry-run': Flags.boolean({summary: 'Print the plan and delete nothing.'}),
  }

  public async run(): Promise<PruneResult> {
    const plan = this.flags.config ? await loadPlan(this.flags.config) : undefined
    const dir = this.flags.output ?? plan?.output ?? '.'
    const namespace = this.flags.namespace ?? plan?.namespace
    const fromFlags = policyFromFlags(this.flags)
    const policy = Object.keys(fromFlags).length > 0 ? fromFlags : plan?.retention ?? fromFlags
    if (isEmptyPolicy(policy)) {
      throw new KubesnapError(`Say what to keep: give at least one of ${Object.values(POLICY_FLAGS).join(', ')} with a count above 0, or a plan with a retention section (--config).`, {exit: EXIT.usage})
    }
    const dryRun = this.flags['dry-run']
    const result = await pruneDirectory(dir, {policy, namespace, dryRun})
    for (const line of formatPrune(result, namespace)) this.log(line)
    return result
  }
}
