/**
 * Table tests of the node's securityContext rules (security.ts, imageUser):
 * identity, capability sets, runAsNonRoot, fsGroup ownership. The kernel side
 * (container-init, real pods) is tested in node.test.ts.
 */
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {imageUser} from './rootfs.js'
import {
  ContainerConfigError, DEFAULT_CAPABILITIES, capabilityMask, capabilitySet, containerIdentity, fsGroupOwnership, needsOwnershipChange,
  type ContainerIdentity,
} from './security.js'
import type {Container, Pod, PodSecurityContext, SecurityContext} from './types.js'

test('imageUser: the user an image config names', () => {
  const cases: Array<[string | undefined, number]> = [
    ['busybox', 0],
    ['busybox:1.36', 0],
    ['docker.io/library/busybox:1.36-musl', 0],
    [undefined, 0],
    ['gcr.io/distroless/static', 0],
    ['gcr.io/distroless/static-debian12:latest', 0],
    ['gcr.io/distroless/static:nonroot', 65532],
    ['gcr.io/distroless/static-debian12:nonroot', 65532],
    ['gcr.io/distroless/base:debug-nonroot', 65532],
    ['gcr.io/distroless/static:nonroot@sha256:0123', 65532],
    ['registry:5000/distroless/static:nonroot', 65532],
    ['registry:5000/distroless/static', 0],
    ['example.com/nonroot-app:nonroot', 0],
    ['gcr.io/distroless/static:nonrootish', 0],
  ]
  for (const [image, uid] of cases) assert.equal(imageUser(image), {uid, gid: uid}, image)
})

function pod(podSc?: PodSecurityContext, sc?: SecurityContext, image = 'busybox:1.36'): {pod: Pod; container: Container} {
  const container: Container = {name: 'main', image, securityContext: sc}
  return {pod: {metadata: {name: 'db-0', namespace: 'shop', uid: 'u-1'}, spec: {containers: [container], securityContext: podSc}}, container}
}

function identity(podSc?: PodSecurityContext, sc?: SecurityContext, image?: string): ContainerIdentity {
  const p = pod(podSc, sc, image)
  return containerIdentity(p.pod, p.container)
}

test('containerIdentity: uid, gid, groups and HOME from pod, container and image', () => {
  const cases: Array<[string, PodSecurityContext | undefined, SecurityContext | undefined, string | undefined, Partial<ContainerIdentity>]> = [
    ['nothing set: the image user', undefined, undefined, 'busybox', {uid: 0, gid: 0, groups: [0], home: '/root'}],
    ['distroless nonroot image', undefined, undefined, 'gcr.io/distroless/static:nonroot', {uid: 65532, gid: 65532, groups: [65532], home: '/home/nonroot'}],
    ['pod runAsUser, not in passwd: gid 0', {runAsUser: 1000}, undefined, 'busybox', {uid: 1000, gid: 0, groups: [0], home: '/'}],
    ['runAsUser in passwd: its group', {runAsUser: 65534}, undefined, 'busybox', {uid: 65534, gid: 65534, home: '/nonexistent'}],
    ['runAsUser 65532 on busybox (no nonroot user there)', {runAsUser: 65532}, undefined, 'busybox', {uid: 65532, gid: 0, home: '/'}],
    ['runAsGroup', {runAsUser: 1000, runAsGroup: 3000}, undefined, 'busybox', {uid: 1000, gid: 3000, groups: [3000]}],
    ['runAsGroup alone keeps the image user', {runAsGroup: 3000}, undefined, 'gcr.io/distroless/static:nonroot', {uid: 65532, gid: 3000}],
    ['container fields win', {runAsUser: 1000, runAsGroup: 3000}, {runAsUser: 2000, runAsGroup: 4000}, 'busybox', {uid: 2000, gid: 4000, groups: [4000]}],
    ['fsGroup then supplementalGroups, no repeats', {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000, 2000, 3000]}, undefined, 'busybox',
      {groups: [3000, 2000, 4000]}],
  ]
  for (const [name, podSc, sc, image, expected] of cases) {
    const got = identity(podSc, sc, image)
    for (const [k, v] of Object.entries(expected)) assert.equal(got[k as keyof ContainerIdentity], v, `${name}: ${k}`)
  }
})

test('containerIdentity: no_new_privs and read-only root only when asked', () => {
  assert.is(identity().noNewPrivs, false)
  assert.is(identity(undefined, {allowPrivilegeEscalation: true}).noNewPrivs, false)
  assert.is(identity(undefined, {allowPrivilegeEscalation: false}).noNewPrivs, true)
  assert.is(identity().readOnlyRootFilesystem, false)
  assert.is(identity(undefined, {readOnlyRootFilesystem: true}).readOnlyRootFilesystem, true)
})

test('containerIdentity: runAsNonRoot refuses uid 0 with the kubelet wording', () => {
  const refused: Array<[string, PodSecurityContext | undefined, SecurityContext | undefined, string, string]> = [
    ['busybox runs as root', {runAsNonRoot: true}, undefined, 'busybox',
      'container has runAsNonRoot and image will run as root (pod: "db-0_shop(u-1)", container: main)'],
    ['on the container', undefined, {runAsNonRoot: true}, 'gcr.io/distroless/static', 'container has runAsNonRoot and image will run as root'],
    ['explicit runAsUser 0', {runAsNonRoot: true, runAsUser: 0}, undefined, 'gcr.io/distroless/static:nonroot',
      `container's runAsUser breaks non-root policy (pod: "db-0_shop(u-1)", container: main)`],
    ['container runAsUser 0 over a pod uid', {runAsNonRoot: true, runAsUser: 1000}, {runAsUser: 0}, 'busybox', `container's runAsUser breaks non-root policy`],
  ]
  for (const [name, podSc, sc, image, message] of refused) {
    const p = pod(podSc, sc, image)
    try {
      containerIdentity(p.pod, p.container)
      assert.unreachable(name)
    } catch (err) {
      assert.instance(err, ContainerConfigError, name)
      assert.is((err as ContainerConfigError).reason, 'CreateContainerConfigError', name)
      assert.match((err as Error).message, message, name)
    }
  }
  const allowed: Array<[string, PodSecurityContext | undefined, SecurityContext | undefined, string, number]> = [
    ['distroless nonroot', {runAsNonRoot: true}, undefined, 'gcr.io/distroless/static:nonroot', 65532],
    ['runAsUser set', {runAsNonRoot: true, runAsUser: 1000}, undefined, 'busybox', 1000],
    ['the container turns it off', {runAsNonRoot: true}, {runAsNonRoot: false}, 'busybox', 0],
  ]
  for (const [name, podSc, sc, image, uid] of allowed) assert.is(identity(podSc, sc, image).uid, uid, name)
})

test('capabilitySet: containerd defaults, ALL, add and drop, privileged', () => {
  const cases: Array<[string, boolean, string[], string[], readonly string[] | 'all' | 'every but SYS_ADMIN']> = [
    ['defaults', false, [], [], DEFAULT_CAPABILITIES],
    ['drop ALL', false, [], ['ALL'], []],
    ['drop ALL, add one back', false, ['NET_BIND_SERVICE'], ['ALL'], ['NET_BIND_SERVICE']],
    ['drop wins over add', false, ['NET_ADMIN'], ['NET_ADMIN'], DEFAULT_CAPABILITIES],
    ['CAP_ prefix and case', false, ['cap_sys_ptrace'], ['CAP_CHOWN', 'kill'], DEFAULT_CAPABILITIES.filter((c) => c !== 'CHOWN' && c !== 'KILL').concat('SYS_PTRACE')],
    ['add ALL drop one', false, ['ALL'], ['SYS_ADMIN'], 'every but SYS_ADMIN'],
    ['privileged', true, [], ['ALL'], 'all'],
  ]
  for (const [name, privileged, add, drop, expected] of cases) {
    const got = capabilitySet(privileged, add, drop)
    if (expected === 'every but SYS_ADMIN') {
      assert.ok(Array.isArray(got) && got.length === 40 && !got.includes('SYS_ADMIN'), name)
    } else if (expected === 'all') {
      assert.is(got, 'all', name)
    } else {
      assert.equal([...(got as string[])].sort(), [...expected].sort(), name)
    }
  }
  assert.throws(() => capabilitySet(false, ['NET_WIZARD'], []), (err: Error) => err instanceof ContainerConfigError && err.reason === 'CreateContainerError' && /unknown capability "CAP_NET_WIZARD"/.test(err.message))
})

test('capabilityMask: bit numbers as container-init reads them', () => {
  assert.is(capabilityMask(DEFAULT_CAPABILITIES), 'a80425fb')
  assert.is(capabilityMask([]), '0')
  assert.is(capabilityMask(['CHOWN']), '1')
  assert.is(capabilityMask(['CHECKPOINT_RESTORE']), (1n << 40n).toString(16))
  assert.is(capabilityMask('all'), 'all')
})

test('fsGroupOwnership: SetVolumeOwnership modes', () => {
  const file = {mode: 0o600, gid: 0, isDirectory: false, isSymbolicLink: false}
  const cases: Array<[string, typeof file, boolean, {gid: number; mode: number} | undefined]> = [
    ['file rw', file, false, {gid: 2000, mode: 0o660}],
    ['file 0000', {...file, mode: 0}, false, {gid: 2000, mode: 0o660}],
    ['file ro', file, true, {gid: 2000, mode: 0o640}],
    ['setuid file keeps its bit', {...file, mode: 0o4755}, false, {gid: 2000, mode: 0o4775}],
    ['dir rw: setgid and x for the group', {...file, mode: 0o700, isDirectory: true}, false, {gid: 2000, mode: 0o2770}],
    ['dir 0777 (an emptyDir)', {...file, mode: 0o777, isDirectory: true}, false, {gid: 2000, mode: 0o2777}],
    ['dir ro', {...file, mode: 0o700, isDirectory: true}, true, {gid: 2000, mode: 0o2750}],
    ['symlink left alone', {...file, mode: 0o777, isSymbolicLink: true}, false, undefined],
  ]
  for (const [name, entry, readOnly, expected] of cases) assert.equal(fsGroupOwnership(entry, 2000, readOnly), expected, name)
})

test('needsOwnershipChange: Always walks; OnRootMismatch skips a matching root', () => {
  const root = {mode: 0o2770, gid: 2000, isDirectory: true, isSymbolicLink: false}
  const cases: Array<[string, typeof root, boolean, string | undefined, boolean]> = [
    ['no policy', root, false, undefined, true],
    ['Always', root, false, 'Always', true],
    ['OnRootMismatch, matching', root, false, 'OnRootMismatch', false],
    ['OnRootMismatch, superset of bits', {...root, mode: 0o2777}, false, 'OnRootMismatch', false],
    ['OnRootMismatch, other group', {...root, gid: 0}, false, 'OnRootMismatch', true],
    ['OnRootMismatch, no setgid', {...root, mode: 0o770}, false, 'OnRootMismatch', true],
    ['OnRootMismatch, group cannot write', {...root, mode: 0o2750}, false, 'OnRootMismatch', true],
    ['OnRootMismatch, read-only needs less', {...root, mode: 0o2750}, true, 'OnRootMismatch', false],
  ]
  for (const [name, entry, readOnly, policy, expected] of cases) assert.is(needsOwnershipChange(entry, 2000, readOnly, policy), expected, name)
})

test.run()
