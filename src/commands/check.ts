import {KubesnapCommand} from '../base-command.js'
import {checkNamespace, type CheckResult} from '../check.js'

export default class Check extends KubesnapCommand<typeof Check> {
  static override summary = 'Check that kubesnap can reach the cluster and what it may list in a namespace.'

  static override description = `Prints the server version, who the credentials belong to, whether the namespace exists, and every namespaced resource type the identity can list there.
Exits 1 with one sentence when the cluster is unreachable, the credentials are refused, or the namespace does not exist.`

  static override examples = [
    '<%= config.bin %> check -n shop',
    '<%= config.bin %> check -n shop --context prod --json',
  ]

  public async run(): Promise<CheckResult> {
    const {api, namespace, config} = this.connect()
    const result = await checkNamespace(api, namespace)
    this.log(`Server:    ${config.server} (${result.serverVersion})`)
    this.log(`Context:   ${config.context}`)
    this.log(`Identity:  ${result.identity.username
      ? `${result.identity.username}${result.identity.groups.length ? ` (groups: ${result.identity.groups.join(', ')})` : ''}`
      : `unknown (${result.identity.source.replace(/^unknown: /, '')})`}`)
    this.log(`Namespace: ${namespace} (${result.namespaceExists === undefined ? 'exists or not: the identity may not get namespaces' : 'exists'})`)
    const listable = result.types.filter((t) => t.canList)
    const denied = result.types.filter((t) => !t.canList)
    this.log(`Can list ${listable.length} of ${result.types.length} namespaced types:`)
    for (const t of listable) this.log(`  ${t.name}`)
    if (denied.length > 0) {
      this.log(`Cannot list:`)
      for (const t of denied) this.log(`  ${t.name}`)
    }
    for (const failure of result.discoveryFailures) {
      this.note(`API group ${failure.groupVersion} could not be discovered: ${failure.error}`)
    }
    return result
  }
}
