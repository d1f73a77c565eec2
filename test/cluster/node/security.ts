/**
 * A container's identity and privileges as a kubelet with containerd and runc
 * derive them from the pod's and the container's securityContext and the
 * image: uid, gid and groups, capabilities, no_new_privs, a read-only root;
 * the kubelet's refusal of a root container under runAsNonRoot; and the
 * ownership fsGroup gives volume files. Pure functions: container.ts applies
 * the identity with real system calls (container-init), volumes.ts the
 * ownership.
 */
import {IMAGE_USERS, imageKind, imageUser} from './rootfs.js'
import type {Container, Pod} from './types.js'

/** Linux capability names without `CAP_`, indexed by their number. */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const

/** containerd's default capability set for a container (its oci.defaultUnixCaps), which runc applies. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE',
  'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
]

/** Who a container's processes are and what they may do. */
export interface ContainerIdentity {
  uid: number
  gid: number
  /** Supplementary groups: the gid, then fsGroup, then supplementalGroups (no repeats). */
  groups: number[]
  /**
   * The bounding set, sorted by number; also the permitted and effective sets when uid is 0
   * (a non-root process has none). `all` (privileged) keeps every capability the kernel has.
   */
  capabilities: readonly string[] | 'all'
  /** allowPrivilegeEscalation: false. */
  noNewPrivs: boolean
  readOnlyRootFilesystem: boolean
  /** HOME from the image's /etc/passwd, `/` for a uid it does not list (as runc). */
  home: string
}

/** The identity of a root container with no securityContext: what every pod got before securityContext was honoured. */
export const ROOT_IDENTITY: ContainerIdentity = {
  uid: 0, gid: 0, groups: [0], capabilities: sortCapabilities(DEFAULT_CAPABILITIES), noNewPrivs: false, readOnlyRootFilesystem: false, home: '/root',
}

/**
 * A container the kubelet refuses to create: `reason` is the waiting reason it
 * reports (CreateContainerConfigError, CreateContainerError), `message` its text.
 */
export class ContainerConfigError extends Error {
  constructor(readonly reason: 'CreateContainerConfigError' | 'CreateContainerError', message: string) {
    super(message)
    this.name = 'ContainerConfigError'
  }
}

/**
 * Returns the identity `container` of `pod` runs with. Container fields win
 * over pod fields; without runAsUser the image's user is used; without
 * runAsGroup the gid is the image user's group, or, when runAsUser is set, the
 * group /etc/passwd gives that uid (0 if it lists none), as containerd does.
 * Throws `ContainerConfigError` where a kubelet would not start the container.
 */
export function containerIdentity(pod: Pod, container: Container): ContainerIdentity {
  const podSc = pod.spec.securityContext ?? {}
  const sc = container.securityContext ?? {}
  const image = imageUser(container.image)
  const runAsUser = sc.runAsUser ?? podSc.runAsUser
  const runAsGroup = sc.runAsGroup ?? podSc.runAsGroup
  const nonRootError = verifyRunAsNonRoot(pod, container, runAsUser, image.uid)
  if (nonRootError) throw new ContainerConfigError('CreateContainerConfigError', nonRootError)
  const uid = runAsUser ?? image.uid
  const passwd = IMAGE_USERS[imageKind(container.image)].find((u) => u.uid === uid)
  const gid = runAsGroup ?? (runAsUser === undefined ? image.gid : passwd?.gid ?? 0)
  const groups = [...new Set([gid, ...(podSc.fsGroup === undefined ? [] : [podSc.fsGroup]), ...(podSc.supplementalGroups ?? [])])]
  return {
    uid,
    gid,
    groups,
    capabilities: capabilitySet(sc.privileged ?? false, sc.capabilities?.add ?? [], sc.capabilities?.drop ?? []),
    noNewPrivs: sc.allowPrivilegeEscalation === false,
    readOnlyRootFilesystem: sc.readOnlyRootFilesystem ?? false,
    home: passwd?.home ?? '/',
  }
}

/**
 * Returns the kubelet's error (its verifyRunAsNonRoot wording) when runAsNonRoot
 * is set and the container would run as uid 0, else undefined.
 */
export function verifyRunAsNonRoot(pod: Pod, container: Container, runAsUser: number | undefined, imageUid: number): string | undefined {
  const runAsNonRoot = container.securityContext?.runAsNonRoot ?? pod.spec.securityContext?.runAsNonRoot
  if (!runAsNonRoot) return undefined
  // format.Pod: name_namespace(uid), printed with %q.
  const where = `(pod: ${JSON.stringify(`${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid ?? ''})`)}, container: ${container.name})`
  if (runAsUser !== undefined) return runAsUser === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined
  return imageUid === 0 ? `container has runAsNonRoot and image will run as root ${where}` : undefined
}

/**
 * Returns the capability set of a container as containerd builds it: all for
 * a privileged one; else the default set, then `add: [ALL]` (everything),
 * `drop: [ALL]` (nothing), then each other added name, then each other
 * dropped name (a name both added and dropped is dropped). Names may carry
 * `CAP_`; an unknown name is a CreateContainerError, as containerd fails then.
 */
export function capabilitySet(privileged: boolean, add: readonly string[], drop: readonly string[]): readonly string[] | 'all' {
  if (privileged) return 'all'
  const normalize = (name: string) => {
    const bare = name.toUpperCase().replace(/^CAP_/, '')
    if (bare !== 'ALL' && !(CAPABILITIES as readonly string[]).includes(bare)) {
      throw new ContainerConfigError('CreateContainerError', `failed to generate container spec: unknown capability "CAP_${bare}"; use names such as NET_ADMIN`)
    }
    return bare
  }
  const adds = add.map(normalize)
  const drops = drop.map(normalize)
  let set = new Set<string>(DEFAULT_CAPABILITIES)
  if (adds.includes('ALL')) set = new Set(CAPABILITIES)
  if (drops.includes('ALL')) set.clear()
  for (const c of adds) if (c !== 'ALL') set.add(c)
  for (const c of drops) if (c !== 'ALL') set.delete(c)
  return sortCapabilities([...set])
}

/** Returns capability names as container-init's `--caps` argument: a hex bit mask, or `all`. */
export function capabilityMask(capabilities: readonly string[] | 'all'): string {
  if (capabilities === 'all') return 'all'
  let mask = 0n
  for (const c of capabilities) mask |= 1n << BigInt((CAPABILITIES as readonly string[]).indexOf(c))
  return mask.toString(16)
}

function sortCapabilities(names: readonly string[]): string[] {
  const index = (c: string) => (CAPABILITIES as readonly string[]).indexOf(c)
  return [...names].sort((a, b) => index(a) - index(b))
}

/** What SetVolumeOwnership reads of a file. */
export interface OwnedEntry {
  /** st_mode's permission and set-id bits (`mode & 0o7777`). */
  mode: number
  gid: number
  isDirectory: boolean
  isSymbolicLink: boolean
}

/**
 * Returns the group and mode the kubelet's SetVolumeOwnership gives one file
 * of a volume for `fsGroup`: group fsGroup (the owner stays), mode |= 0660
 * (0440 for a read-only volume), directories also |= setgid and 0110.
 * Symlinks are left alone (undefined): chmod would follow them.
 */
export function fsGroupOwnership(entry: OwnedEntry, fsGroup: number, readOnly: boolean): {gid: number; mode: number} | undefined {
  if (entry.isSymbolicLink) return undefined
  let mask = readOnly ? 0o440 : 0o660
  if (entry.isDirectory) mask |= 0o2000 | 0o110
  return {gid: fsGroup, mode: entry.mode | mask}
}

/**
 * Returns whether the kubelet walks a volume for fsGroup: always, unless the
 * policy is OnRootMismatch and the volume's root directory already has group
 * fsGroup, the setgid bit and every bit of the mask.
 */
export function needsOwnershipChange(root: OwnedEntry, fsGroup: number, readOnly: boolean, policy: string | undefined): boolean {
  if (policy !== 'OnRootMismatch') return true
  if (root.gid !== fsGroup || !root.isDirectory) return true
  const wanted = (readOnly ? 0o440 : 0o660) | 0o110
  return (root.mode & wanted) !== wanted || (root.mode & 0o2000) === 0
}
