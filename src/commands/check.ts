import {Flags} from '@oclif/core'
import {KubesnapCommand} from '../base-command.js'
import {checkNamespace, checkNamespaceFor, type CheckPermissionsResult, type CheckResult, type PermissionsResult} from '../rbac/check.js'
import {EXIT} from '../errors.js'
import {rulesYaml} from '../rbac/manifests.js'
import {ROLE_MODES, ROLE_VOLUMES, type RoleMode, type RoleVolumes} from '../rbac/role.js'
import {DEFAULT_HELPER_IMAGE} from '../volumes/helper.js'

export default class Check extends KubesnapCommand<typeof Check> {
  static override summary = 'Check that kubesnap can reach the cluster and what it may list in a namespace.'

  static override description = `Prints the server version, who the credentials belong to, whether the namespace exists, and every namespaced resource type the identity can list there.
With --for, also asks the API server (SelfSubjectAccessReview) about every right that command needs, the rules kubesnap rbac prints, and prints the ones missing as the Role rules to add; it then exits 4 when any is missing.
Exits 1 with one sentence when the cluster is unreachable, the credentials are refused, or the namespace does not exist.`

  static override examples = [
    '<%= config.bin %> check -n shop',
    '<%= config.bin %> check -n shop --context prod --json',
    '<%= config.bin %> check -n shop --for snapshot --volumes csi',
  ]

  static override flags = {
    for: Flags.string({summary: 'Also check every right this command needs: snapshot, restore, or all.', options: [...ROLE_MODES]}),
    volumes: Flags.string({summary: 'The volume strategy the rights are for, with --for (as snapshot --volumes).', options: [...ROLE_VOLUMES], default: 'tar'}),
    'helper-image': Flags.string({summary: 'With --for and --volumes tar: the helper image whose admission to check (as snapshot and restore --helper-image).', default: DEFAULT_HELPER_IMAGE}),
    'helper-as-root': Flags.boolean({summary: 'With --for and --volumes tar: check helpers that run as root (as snapshot and restore --helper-as-root).'}),
    'restore-rbac': Flags.boolean({summary: 'With --for restore or all: also check escalate and bind, which restore needs to re-create RBAC that grants more than the identity holds (as kubesnap rbac --restore-rbac).'}),
  }

  public async run(): Promise<CheckResult | CheckPermissionsResult> {
    const {api, namespace, config} = await this.connect()
    const mode = this.flags.for as RoleMode | undefined
    const result = mode
      ? await checkNamespaceFor(api, namespace, mode, this.flags.volumes as RoleVolumes, {image: this.flags['helper-image'], asRoot: this.flags['helper-as-root']}, {rbac: this.flags['restore-rbac']})
      : await checkNamespace(api, namespace)
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
    if (mode) {
      const permissions = result as CheckPermissionsResult
      for (const line of formatPermissions(permissions, namespace)) this.log(line)
      for (const helper of permissions.helpers ?? []) {
        if (!helper.admitted) this.note(`A helper pod for claim ${helper.claim} would be refused by the namespace's pod security policy (${helper.refused}): volume data of this claim cannot be copied until the namespace's owner allows a non-root pod with those settings.`)
        else if (helper.refused) this.note(`A helper pod for claim ${helper.claim} would be refused with the ids kubesnap asks for (${helper.refused}); it would run with the uid the platform assigns, so files of other owners may not be readable or keep their owners.`)
      }
      if (permissions.helpersUnchecked) this.note(`Whether the namespace's pod security policy admits helper pods was not checked: ${permissions.helpersUnchecked}.`)
      if (permissions.helpers?.length) this.log(`Helper pods: ${permissions.helpers.filter((h) => h.admitted).length} of ${permissions.helpers.length} claim(s) admitted (server-side dry run).`)
      if (permissions.missing.length > 0) process.exitCode = EXIT.missingPermissions
    }
    return result
  }
}

/** The --for report: all granted, or what is refused and the Role rules that would grant it. */
export function formatPermissions(result: PermissionsResult, namespace: string): string[] {
  const what = `${result.for === 'all' ? 'snapshot and restore' : result.for} (volumes ${result.volumes})`
  if (result.missing.length === 0) return [`Rights for ${what}: all ${result.checked} granted.`]
  const lines = [`Rights for ${what}: ${result.denied.length} of ${result.checked} refused:`]
  for (const d of result.denied) lines.push(`  ${d.verb} ${d.name}`)
  lines.push(`Add these rules to the identity's Role in ${namespace} (or apply kubesnap rbac -n ${namespace} --for ${result.for} --volumes ${result.volumes}${result.rbac ? ' --restore-rbac' : ''}):`)
  result.missing.forEach((rule, i) => {
    lines.push(`# ${result.missingWhy[i]}`)
    lines.push(...rulesYaml([rule]).trimEnd().split('\n'))
  })
  return lines
}
