/**
 * Test namespaces: created by the admin with the kubesnap Role bound to the
 * namespace-only user, so a test acts with exactly the rights kubesnap documents,
 * and with one pod security policy bound for everyone there (podsecurity.ts).
 */
import {randomBytes} from 'node:crypto'
import {ApiException, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig} from '@kubernetes/client-node'
import {kubesnapRole, kubesnapRoleBinding} from '../../src/rbac/role.js'
import {describe} from './documents.js'
import {bindPodSecurity, ENFORCE_LABEL, POD_SECURITY_LEVELS, type PodSecurityLevel} from './podsecurity.js'
import {waitFor} from './wait.js'

/** Label on every namespace the test cluster creates, to find leftovers. */
export const TEST_NAMESPACE_LABEL = 'kubesnap.test/namespace'

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** `<prefix>-<5 random lowercase letters or digits>`, a valid DNS label. */
export function randomNamespaceName(prefix = 'test'): string {
  const suffix = [...randomBytes(5)].map((b) => ALPHABET[b % ALPHABET.length]).join('')
  const name = `${prefix}-${suffix}`
  if (name.length > 63 || !DNS_LABEL.test(name)) throw new Error(`namespace prefix ${JSON.stringify(prefix)} does not make a DNS label (lowercase letters, digits, '-', at most 57 characters)`)
  return name
}

/** Options of {@link createTestNamespace}. */
export interface TestNamespaceOptions {
  /** Bind the kubesnap Role to this user. */
  bindUser?: string
  /**
   * The only pod security policy anyone but the admin may use there, the
   * controllers' pods included. Default `privileged`: pods run as they would
   * without pod security. `restricted` also gets the label a 1.23+ cluster enforces.
   */
  security?: PodSecurityLevel
}

/** Creates namespace `name`, binds its pod security policy and the kubesnap Role to `bindUser` if given, and waits for its `default` ServiceAccount. */
export async function createTestNamespace(admin: KubeConfig, name: string, opts: TestNamespaceOptions = {}): Promise<void> {
  if (!DNS_LABEL.test(name) || name.length > 63) throw new Error(`namespace name ${JSON.stringify(name)} is not a DNS label`)
  const security = opts.security ?? 'privileged'
  if (!POD_SECURITY_LEVELS.includes(security)) throw new Error(`unknown pod security ${JSON.stringify(security)} for namespace ${name}; use one of: ${POD_SECURITY_LEVELS.join(', ')}`)
  const core = admin.makeApiClient(CoreV1Api)
  const labels: Record<string, string> = {[TEST_NAMESPACE_LABEL]: 'true'}
  if (security === 'restricted') labels[ENFORCE_LABEL] = 'restricted'
  await core.createNamespace({body: {metadata: {name, labels}}})
  // Before anything can create a pod here: without a binding every pod is refused.
  await bindPodSecurity(admin, name, security)
  if (opts.bindUser !== undefined) {
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api)
    // Ordinary namespaces get the --restore-rbac Role (their fixtures restore Roles that grant more than
    // kubesnap holds); a restricted one the default Role, with which the user cannot leave its policy.
    await rbac.createNamespacedRole({namespace: name, body: kubesnapRole(name, {rbac: security !== 'restricted'})})
    await rbac.createNamespacedRoleBinding({namespace: name, body: kubesnapRoleBinding(name, {user: opts.bindUser})})
  }
  // Pods are refused until the ServiceAccount controller has made `default` and,
  // on 1.20, the token controller has given it its token Secret (the
  // ServiceAccount admission plugin answers 500 "no API token found" until then).
  await waitFor(`ServiceAccount default in ${name} with its token`, async () => {
    try {
      const account = await core.readNamespacedServiceAccount({name: 'default', namespace: name})
      return (account.secrets ?? []).length > 0
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return false
      throw err
    }
  }, {timeoutMs: 30_000})
}

/** Deletes a namespace (absent is fine); with `wait`, until it is gone, which needs the controller-manager (and a node for running pods). */
export async function deleteTestNamespace(admin: KubeConfig, name: string, opts: {wait?: boolean; timeoutMs?: number} = {}): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api)
  try {
    await core.deleteNamespace({name})
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return
    throw new Error(`cannot delete namespace ${name}: ${describe(err)}`, {cause: err})
  }
  if (!opts.wait) return
  let phase = ''
  await waitFor(`namespace ${name} to be deleted`, async () => {
    try {
      const ns = await core.readNamespace({name})
      const conditions = (ns.status?.conditions ?? []).filter((c) => c.status === 'True').map((c) => `${c.type}: ${c.message}`)
      phase = [ns.status?.phase, ...conditions].join('; ')
      return false
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return true
      throw err
    }
  }, {timeoutMs: opts.timeoutMs ?? 120_000, detail: () => phase})
}

