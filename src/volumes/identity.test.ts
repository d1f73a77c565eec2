import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {helperPodSpec, policyRefusal} from './helper.js'
import {
  describeHelperIdentity, helperMode, identityOfClaim, identityOfPod, identityOfWorkload, type AppIdentity,
} from './identity.js'
import {ApiError} from '../cluster/api.js'

const db = {
  metadata: {name: 'db-0'},
  spec: {
    securityContext: {runAsUser: 999, runAsGroup: 999, fsGroup: 999, runAsNonRoot: true, supplementalGroups: [5], seLinuxOptions: {level: 's0:c1,c2'}, fsGroupChangePolicy: 'OnRootMismatch'},
    volumes: [{name: 'data', persistentVolumeClaim: {claimName: 'data-db-0'}}, {name: 'tmp', emptyDir: {}}],
    containers: [
      {securityContext: {runAsUser: 1}, volumeMounts: [{name: 'tmp', mountPath: '/tmp'}]},
      {securityContext: {runAsUser: 70}, volumeMounts: [{name: 'data', mountPath: '/var/lib/db'}]},
    ],
  },
}

test('identityOfPod: pod-level ids, the mounting container\'s own uid winning', () => {
  assert.equal(identityOfPod(db, 'data-db-0'), {
    runAsUser: 70, runAsGroup: 999, runAsNonRoot: true, fsGroup: 999, fsGroupChangePolicy: 'OnRootMismatch',
    supplementalGroups: [5], seLinuxOptions: {level: 's0:c1,c2'},
  })
  assert.is(identityOfPod(db, 'other'), undefined, 'a pod that does not mount the claim says nothing')
  assert.equal(identityOfPod({spec: {volumes: [{name: 'v', persistentVolumeClaim: {claimName: 'c'}}], containers: [{volumeMounts: [{name: 'v'}]}]}}, 'c'), {}, 'no securityContext: an empty identity')
})

test('identityOfWorkload: through volumes, and a StatefulSet\'s claim templates', () => {
  const set = {
    kind: 'StatefulSet', metadata: {name: 'db'},
    spec: {
      volumeClaimTemplates: [{metadata: {name: 'data'}}],
      template: {spec: {securityContext: {runAsUser: 999, fsGroup: 999}, containers: [{volumeMounts: [{name: 'data'}]}]}},
    },
  }
  assert.equal(identityOfWorkload(set, 'data-db-0'), {runAsUser: 999, fsGroup: 999})
  assert.equal(identityOfWorkload(set, 'data-db-12'), {runAsUser: 999, fsGroup: 999})
  assert.is(identityOfWorkload(set, 'data-dbx-0'), undefined, 'another set\'s claim')
  assert.is(identityOfWorkload(set, 'data-db-x'), undefined, 'not an ordinal')
  const cron = {kind: 'CronJob', metadata: {name: 'c'}, spec: {jobTemplate: {spec: {template: {spec: {
    securityContext: {runAsUser: 5}, volumes: [{name: 'v', persistentVolumeClaim: {claimName: 'scratch'}}], containers: [{volumeMounts: [{name: 'v'}]}],
  }}}}}}
  assert.equal(identityOfWorkload(cron, 'scratch'), {runAsUser: 5})
})

test('identityOfClaim: live pods first, then workloads, saying where it came from', () => {
  const workload = {kind: 'Deployment', metadata: {name: 'web'}, spec: {template: {spec: {securityContext: {runAsUser: 1000}, volumes: [{name: 'u', persistentVolumeClaim: {claimName: 'data-db-0'}}], containers: [{volumeMounts: [{name: 'u'}]}]}}}}
  assert.equal(identityOfClaim('data-db-0', {pods: [db], workloads: [workload]})?.from, 'pod db-0')
  assert.equal(identityOfClaim('data-db-0', {pods: [], workloads: [workload], workloadsFrom: 'in the archive'}), {identity: {runAsUser: 1000}, from: 'Deployment web in the archive'})
  assert.is(identityOfClaim('orphan', {pods: [db], workloads: [workload]}), undefined)
})

test('helperMode: as the application, as root, or as the platform assigns', () => {
  const rows: Array<[AppIdentity | undefined, boolean, string]> = [
    [{runAsUser: 999}, false, 'app'],
    [{runAsUser: 999}, true, 'root'],
    [{runAsUser: 0}, false, 'root'],
    [{runAsNonRoot: true}, false, 'platform'],
    [{runAsNonRoot: true, runAsUser: 0}, false, 'root'],
    [{}, false, 'root'],
    [undefined, false, 'root'],
  ]
  for (const [identity, asRoot, mode] of rows) assert.is(helperMode(identity, asRoot), mode, JSON.stringify({identity, asRoot}))
})

/*
 * Pod Security Standards, `restricted` profile (kubernetes.io/docs/concepts/security/pod-security-standards),
 * one row per control, with the baseline controls it includes. Each returns why a pod spec breaks it.
 */
type PodSpec = Record<string, any>
const containersOf = (spec: PodSpec): PodSpec[] => [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])]
const RESTRICTED_RULES: Array<[string, (spec: PodSpec) => string | undefined]> = [
  ['host namespaces', (s) => (s.hostNetwork || s.hostPID || s.hostIPC ? 'host namespace shared' : undefined)],
  ['privileged containers', (s) => (containersOf(s).some((c) => c.securityContext?.privileged) ? 'privileged' : undefined)],
  ['baseline capabilities', (s) => {
    const allowed = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'])
    return containersOf(s).some((c) => (c.securityContext?.capabilities?.add ?? []).some((cap: string) => !allowed.has(cap))) ? 'capability beyond the baseline' : undefined
  }],
  ['hostPath volumes', (s) => ((s.volumes ?? []).some((v: PodSpec) => v.hostPath) ? 'hostPath' : undefined)],
  ['host ports', (s) => (containersOf(s).some((c) => (c.ports ?? []).some((p: PodSpec) => p.hostPort)) ? 'hostPort' : undefined)],
  ['SELinux', (s) => [s.securityContext?.seLinuxOptions, ...containersOf(s).map((c) => c.securityContext?.seLinuxOptions)].some((o) => o && (o.user || o.role || (o.type && !['container_t', 'container_init_t', 'container_kvm_t'].includes(o.type)))) ? 'SELinux user, role or type' : undefined],
  ['/proc mount type', (s) => (containersOf(s).some((c) => c.securityContext?.procMount && c.securityContext.procMount !== 'Default') ? 'procMount' : undefined)],
  ['sysctls', (s) => ((s.securityContext?.sysctls ?? []).length > 0 ? 'sysctls' : undefined)],
  ['volume types', (s) => {
    const allowed = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']
    return (s.volumes ?? []).some((v: PodSpec) => Object.keys(v).filter((k) => k !== 'name').some((k) => !allowed.includes(k))) ? 'volume type' : undefined
  }],
  ['privilege escalation', (s) => (containersOf(s).some((c) => c.securityContext?.allowPrivilegeEscalation !== false) ? 'allowPrivilegeEscalation is not false' : undefined)],
  ['running as non-root', (s) => (containersOf(s).some((c) => (c.securityContext?.runAsNonRoot ?? s.securityContext?.runAsNonRoot) !== true) ? 'runAsNonRoot is not true' : undefined)],
  ['running as non-root user', (s) => ([s.securityContext?.runAsUser, ...containersOf(s).map((c) => c.securityContext?.runAsUser)].includes(0) ? 'runAsUser 0' : undefined)],
  ['seccomp', (s) => {
    const ok = (p: PodSpec | undefined) => p?.type === 'RuntimeDefault' || p?.type === 'Localhost'
    return containersOf(s).some((c) => !ok(c.securityContext?.seccompProfile ?? s.securityContext?.seccompProfile)) ? 'seccomp profile not RuntimeDefault or Localhost' : undefined
  }],
  ['capabilities', (s) => containersOf(s).some((c) => !(c.securityContext?.capabilities?.drop ?? []).includes('ALL') || (c.securityContext?.capabilities?.add ?? []).some((cap: string) => cap !== 'NET_BIND_SERVICE')) ? 'capabilities not dropped to ALL (+NET_BIND_SERVICE)' : undefined],
]

const specOf = (mode: 'app' | 'root' | 'platform', identity?: AppIdentity) =>
  (helperPodSpec({name: 'h', claim: 'data', image: 'busybox:1.36', mode, app: identity ? {identity, from: 'pod x'} : undefined}) as {spec: PodSpec}).spec

test('helper pods pass every Pod Security restricted rule as the application and as the platform assigns', () => {
  const specs = {
    app: specOf('app', {runAsUser: 999, runAsGroup: 999, fsGroup: 999, supplementalGroups: [5], seLinuxOptions: {level: 's0:c1,c2'}}),
    platform: specOf('platform'),
  }
  for (const [mode, spec] of Object.entries(specs)) {
    for (const [rule, broken] of RESTRICTED_RULES) assert.is(broken(spec), undefined, `${mode}: ${rule}`)
  }
})

test('the rules bite: a root helper passes only baseline; a helper without kubesnap\'s securityContext breaks restricted', () => {
  const root = specOf('root', {})
  const brokenBy = (spec: PodSpec) => RESTRICTED_RULES.filter(([, broken]) => broken(spec)).map(([rule]) => rule)
  assert.equal(brokenBy(root), ['running as non-root', 'running as non-root user', 'capabilities'])
  const bare = {...root, securityContext: undefined, containers: root.containers.map((c: PodSpec) => ({...c, securityContext: undefined}))}
  assert.equal(brokenBy(bare), ['privilege escalation', 'running as non-root', 'seccomp', 'capabilities'])
})

test('helper pods: the identity goes on the pod, the lock-down on the container, /tmp is an emptyDir', () => {
  const spec = specOf('app', {runAsUser: 999, runAsGroup: 998, fsGroup: 997, fsGroupChangePolicy: 'OnRootMismatch'})
  assert.equal(spec.securityContext, {runAsNonRoot: true, runAsUser: 999, runAsGroup: 998, fsGroup: 997, fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: {type: 'RuntimeDefault'}})
  assert.equal(spec.containers[0].securityContext, {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, runAsNonRoot: true, capabilities: {drop: ['ALL']}})
  assert.equal(spec.containers[0].volumeMounts[1], {name: 'tmp', mountPath: '/tmp'})
  assert.equal(spec.volumes[1], {name: 'tmp', emptyDir: {}})
  const root = specOf('root', {runAsGroup: 5})
  assert.equal(root.securityContext, {runAsUser: 0, runAsGroup: 5, seccompProfile: {type: 'RuntimeDefault'}})
  assert.equal(root.containers[0].securityContext.capabilities, {drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID']})
  const platform = specOf('platform', {runAsUser: 999})
  assert.is(platform.securityContext.runAsUser, undefined, 'the platform assigns the uid')
})

test('describeHelperIdentity says who the helper runs as', () => {
  assert.is(describeHelperIdentity('app', {identity: {runAsUser: 999, runAsGroup: 999, fsGroup: 999}, from: 'pod db-0'}), 'uid 999, gid 999, fsGroup 999 (as pod db-0)')
  assert.is(describeHelperIdentity('platform', undefined), 'the uid the platform assigns')
  assert.match(describeHelperIdentity('root', undefined), /^root with only CHOWN, DAC_OVERRIDE/)
})

const forbidden = (message: string, code = 403) => new ApiError('POST', '/api/v1/namespaces/shop/pods', code, {kind: 'Status', status: 'Failure', message, reason: 'Forbidden', code})

test('policyRefusal: the refused fields of PodSecurityPolicy, Pod Security admission and SCCs; nothing for RBAC', () => {
  // The 1.20 PodSecurityPolicy wording, as the test control plane answered kubesnap's root helper (measured).
  assert.is(policyRefusal(forbidden('pods "kubesnap-root" is forbidden: PodSecurityPolicy: unable to admit pod: [spec.containers[0].securityContext.runAsNonRoot: Invalid value: false: must be true spec.containers[0].securityContext: Invalid value: []int64{0}: group 0 must be in the ranges: [{1 65535}] spec.containers[0].securityContext.capabilities.add: Invalid value: "CHOWN": capability may not be added]')),
    'spec.containers[0].securityContext.runAsNonRoot: Invalid value: false: must be true; spec.containers[0].securityContext: Invalid value: []int64{0}: group 0 must be in the ranges: [{1 65535}]; spec.containers[0].securityContext.capabilities.add: Invalid value: "CHOWN": capability may not be added')
  assert.match(policyRefusal(forbidden('pods "h" is forbidden: unable to validate against any pod security policy: [spec.securityContext.runAsUser: Invalid value: 0: running with the root UID is forbidden]')) ?? '', /^spec\.securityContext\.runAsUser: Invalid value: 0: running with the root UID is forbidden$/)
  assert.is(policyRefusal(forbidden('pods "h" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "helper" must set securityContext.runAsNonRoot=true)')),
    'pods "h" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "helper" must set securityContext.runAsNonRoot=true)')
  assert.match(policyRefusal(forbidden('pods "h" is forbidden: unable to validate against any security context constraint: [provider "restricted-v2": Forbidden: not usable by user or serviceaccount, spec.containers[0].securityContext.runAsUser: Invalid value: 999: must be in the ranges: [1000650000, 1000659999]]')) ?? '',
    /runAsUser: Invalid value: 999: must be in the ranges/)
  assert.is(policyRefusal(forbidden('pods is forbidden: User "u" cannot create resource "pods" in API group "" in the namespace "shop"')), undefined)
  assert.is(policyRefusal(new Error('socket hang up')), undefined)
})

test.run()
