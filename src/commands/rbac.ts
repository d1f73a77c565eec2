import {Flags} from '@oclif/core'
import {KubesnapCommand} from '../base-command.js'
import {rbacManifests, rbacYaml} from '../rbac/manifests.js'
import {ROLE_MODES, ROLE_VOLUMES, type RoleMode, type RoleVolumes} from '../rbac/role.js'

/** What `rbac --json` returns: a kubectl List, so `kubesnap rbac --json | kubectl apply -f -` works too. */
export interface RbacResult {
  apiVersion: 'v1'
  kind: 'List'
  items: unknown[]
}

export default class Rbac extends KubesnapCommand<typeof Rbac> {
  static override summary = 'Print the least ServiceAccount, Role and RoleBinding kubesnap needs in a namespace.'

  static override description = `Prints YAML for kubectl apply -f -: a ServiceAccount, a Role with the rules --for needs (each under a comment saying why), and a RoleBinding of the Role to the ServiceAccount. --volumes drops what the volume strategy does not use (none: no pods or exec rights at all). Needs no cluster access; kubesnap check --for tells whether an identity has these rights.
Restore with --create-namespace also needs create on namespaces, which no Role can grant (it is cluster-scoped).`

  static override examples = [
    '<%= config.bin %> rbac -n shop | kubectl apply -f -',
    '<%= config.bin %> rbac -n shop --for snapshot --volumes csi --service-account backup',
    '<%= config.bin %> rbac -n shop --for restore --json',
  ]

  static override flags = {
    namespace: Flags.string({char: 'n', summary: 'The namespace the Role grants rights in.', required: true}),
    for: Flags.string({summary: 'What the identity runs: snapshot, restore, or both.', options: [...ROLE_MODES], default: 'all'}),
    volumes: Flags.string({summary: 'The volume strategy it uses (as snapshot --volumes).', options: [...ROLE_VOLUMES], default: 'tar'}),
    'service-account': Flags.string({summary: 'The ServiceAccount to create and bind (default: the Role\'s name, kubesnap or kubesnap-snapshot/-restore).'}),
    'restore-rbac': Flags.boolean({summary: 'Also grant escalate and bind, so restore can re-create Roles and RoleBindings that grant more than the identity holds; the identity can then grant itself any right in the namespace (a more permissive pod security policy included).'}),
  }

  public async run(): Promise<RbacResult> {
    const options = {mode: this.flags.for as RoleMode, volumes: this.flags.volumes as RoleVolumes, serviceAccount: this.flags['service-account'], rbac: this.flags['restore-rbac']}
    // Required by the flag definition; the base flags' type still says optional.
    const namespace = this.flags.namespace!
    const {serviceAccount, role, roleBinding} = rbacManifests(namespace, options)
    if (!this.jsonEnabled()) process.stdout.write(rbacYaml(namespace, options))
    return {apiVersion: 'v1', kind: 'List', items: [serviceAccount, role, roleBinding]}
  }
}
