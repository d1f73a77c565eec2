/**
 * Pod security in the test control plane: v1.20's PodSecurityPolicy admission
 * plugin with two policies, `privileged` (anything goes) and `restricted` (the
 * rules of Pod Security Standards `restricted`), and the RoleBindings that
 * choose, per namespace, which one its users, service accounts and
 * controllers may use. Facts measured on 1.20: /work/shared/TEST-CLUSTER.md,
 * "Pod security on v1.20".
 *
 * A pod is admitted only if its creator or its service account may `use` a
 * policy in the pod's namespace, so a namespace without a binding runs no
 * pods at all (the admin, in `system:masters`, may use every policy anywhere).
 */
import {ApiException, RbacAuthorizationV1Api, type KubeConfig, type KubernetesObject, type V1ClusterRole, type V1RoleBinding} from '@kubernetes/client-node'
import {createDocument, describe, Discovery} from './documents.js'

/** The two policies, and so the two kinds of test namespace. */
export const POD_SECURITY_LEVELS = ['privileged', 'restricted'] as const
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number]

/** The ClusterRole that lets its subjects `use` policy `level`. */
export function podSecurityRoleName(level: PodSecurityLevel): string {
  return `kubesnap-test:psp:${level}`
}

/** The label a 1.23+ cluster's Pod Security admission reads; set on restricted namespaces, harmless on 1.20. */
export const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce'

/** The annotation the PSP plugin puts on every pod it admits: the policy it chose. */
export const PSP_ANNOTATION = 'kubernetes.io/psp'

const SECCOMP_ALLOWED = 'seccomp.security.alpha.kubernetes.io/allowedProfileNames'
const SECCOMP_DEFAULT = 'seccomp.security.alpha.kubernetes.io/defaultProfileName'

/** The ids a restricted pod's groups must lie in: anything but root. */
const NON_ROOT_IDS = [{min: 1, max: 65535}]

/** The policies as policy/v1beta1 documents (the client has no model for them: PSP left in 1.25). */
export function podSecurityPolicies(): KubernetesObject[] {
  const any = {rule: 'RunAsAny'}
  const privileged = {
    apiVersion: 'policy/v1beta1',
    kind: 'PodSecurityPolicy',
    metadata: {name: 'privileged', annotations: {[SECCOMP_ALLOWED]: '*'}},
    spec: {
      privileged: true,
      allowPrivilegeEscalation: true,
      allowedCapabilities: ['*'],
      volumes: ['*'],
      hostNetwork: true,
      hostPorts: [{min: 0, max: 65535}],
      hostPID: true,
      hostIPC: true,
      runAsUser: any,
      runAsGroup: any,
      seLinux: any,
      supplementalGroups: any,
      fsGroup: any,
      allowedUnsafeSysctls: ['*'],
      allowedProcMountTypes: ['Default', 'Unmasked'],
    },
  }
  const restricted = {
    apiVersion: 'policy/v1beta1',
    kind: 'PodSecurityPolicy',
    metadata: {
      name: 'restricted',
      // The only profile allowed, and the one a pod without any gets.
      annotations: {[SECCOMP_ALLOWED]: 'runtime/default', [SECCOMP_DEFAULT]: 'runtime/default'},
    },
    spec: {
      privileged: false,
      // `false` here also makes the plugin set it on containers that leave it unset.
      allowPrivilegeEscalation: false,
      requiredDropCapabilities: ['ALL'],
      // csi and ephemeral are 1.20 volume types too; both are claims in all but name.
      volumes: ['configMap', 'emptyDir', 'projected', 'secret', 'downwardAPI', 'persistentVolumeClaim', 'csi', 'ephemeral'],
      hostNetwork: false,
      hostPID: false,
      hostIPC: false,
      runAsUser: {rule: 'MustRunAsNonRoot'},
      runAsGroup: {rule: 'MustRunAs', ranges: NON_ROOT_IDS},
      seLinux: any,
      supplementalGroups: {rule: 'MustRunAs', ranges: NON_ROOT_IDS},
      fsGroup: {rule: 'MustRunAs', ranges: NON_ROOT_IDS},
      // Allowed, not required: many images write to their root file system.
      readOnlyRootFilesystem: false,
    },
  }
  return [privileged, restricted]
}

/** The ClusterRole granting `use` of policy `level` and nothing else. */
export function podSecurityRole(level: PodSecurityLevel): V1ClusterRole {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: {name: podSecurityRoleName(level)},
    rules: [{apiGroups: ['policy'], resources: ['podsecuritypolicies'], resourceNames: [level], verbs: ['use']}],
  }
}

/**
 * The RoleBinding in `namespace` that lets every authenticated user and every
 * service account use policy `level` there (RoleBindings grant only in their
 * own namespace, so `system:serviceaccounts` means: for pods of this namespace).
 * Controllers count as users here: they create pods with their own credentials.
 */
export function podSecurityRoleBinding(namespace: string, level: PodSecurityLevel, groups = ['system:authenticated', 'system:serviceaccounts']): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {name: podSecurityRoleName(level), namespace},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: podSecurityRoleName(level)},
    subjects: groups.map((name) => ({apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name})),
  }
}

/**
 * Creates both policies, their ClusterRoles, and kube-system's binding to
 * `privileged` for its service accounts (the controllers, which run with
 * --use-service-account-credentials). Must run before the controller-manager
 * starts, or its first pods are refused. Objects already there are kept, so a
 * restart on a kept state directory works.
 */
export async function installPodSecurity(admin: KubeConfig): Promise<void> {
  const discovery = admin.makeApiClient(Discovery)
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api)
  const keep = (what: string) => (err: unknown) => {
    if (err instanceof ApiException && err.code === 409) return
    throw new Error(`cannot create ${what}: ${describe(err)}`, {cause: err})
  }
  for (const policy of podSecurityPolicies()) {
    await createDocument(admin, discovery, policy).catch(keep(`PodSecurityPolicy ${policy.metadata?.name}`))
  }
  for (const level of POD_SECURITY_LEVELS) {
    await rbac.createClusterRole({body: podSecurityRole(level)}).catch(keep(`ClusterRole ${podSecurityRoleName(level)}`))
  }
  await rbac.createNamespacedRoleBinding({namespace: 'kube-system', body: podSecurityRoleBinding('kube-system', 'privileged', ['system:serviceaccounts:kube-system'])})
    .catch(keep('the kube-system RoleBinding to the privileged policy'))
}

/** Binds `level` in `namespace` for its users, service accounts and controllers (see {@link podSecurityRoleBinding}). */
export async function bindPodSecurity(admin: KubeConfig, namespace: string, level: PodSecurityLevel): Promise<void> {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRoleBinding({namespace, body: podSecurityRoleBinding(namespace, level)})
}
