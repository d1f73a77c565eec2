/**
 * Runs a process inside a container: private mount and UTS namespaces, in
 * which each volume is bind-mounted at its mount path inside the container's
 * root filesystem and the hostname is the pod's, then a chroot into it. The
 * namespaces die with the process, so nothing is ever mounted on the host and
 * two containers can share a volume.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {lstat, mkdir, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {BUSYBOX, CONTAINER_PATH, DEVICES} from './rootfs.js'

/** One volume (or a subPath of it) mounted into a container. */
export interface ContainerMount {
  /** The directory or file on the host. */
  source: string
  /** Where it appears inside the container (absolute). */
  mountPath: string
  readOnly: boolean
}

/** Everything needed to start a process in one container. */
export interface ContainerSandbox {
  rootfs: string
  mounts: ContainerMount[]
  env: Record<string, string>
  workingDir: string
  /** The pod's hostname, set in the process's own UTS namespace (`hostname` prints it). */
  hostname: string
}

/**
 * Creates, inside the container's root filesystem, the directories (or empty
 * files, for a file source) the volumes are mounted on, and the working
 * directory, as a runtime does when it creates the container.
 */
export async function prepareMountPoints(sandbox: ContainerSandbox): Promise<void> {
  for (const mount of sortedMounts(sandbox.mounts)) {
    const target = await hostPathInRootfs(sandbox.rootfs, mount.mountPath)
    const sourceIsDir = (await stat(mount.source)).isDirectory()
    if (sourceIsDir) {
      await mkdir(target, {recursive: true})
    } else {
      await mkdir(path.dirname(target), {recursive: true})
      await writeFile(target, '', {flag: 'a'})
    }
  }
  await mkdir(await hostPathInRootfs(sandbox.rootfs, sandbox.workingDir), {recursive: true})
}

/**
 * Starts `command` in the container and returns the child. The child leads its
 * own process group (`detached`), so killing `-pid` also ends a pipeline the
 * command started, as a runtime killing the exec's cgroup would.
 */
export function spawnInContainer(sandbox: ContainerSandbox, command: string[]): ChildProcess {
  const script = mountScript(sandbox)
  return spawn('unshare', ['--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', ...command], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    // The host side of the script needs a PATH; the command gets only the container env (env -i).
    env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin'},
  })
}

/**
 * The host-side shell script run in the new mount namespace: bind the devices
 * and volumes (remounting read-only ones), then `exec` the command with the
 * root and working directory set by `unshare --root --wd` (chroot with a cwd).
 * Exported for tests.
 */
export function mountScript(sandbox: ContainerSandbox): string {
  const root = sandbox.rootfs
  const lines = ['set -e', `${BUSYBOX} hostname ${quote(sandbox.hostname)}`]
  for (const device of DEVICES) lines.push(`mount --bind ${quote(`/dev/${device}`)} ${quote(path.join(root, 'dev', device))}`)
  for (const mount of sortedMounts(sandbox.mounts)) {
    const target = path.join(root, normalizeContainerPath(mount.mountPath))
    lines.push(`mount --bind ${quote(mount.source)} ${quote(target)}`)
    // A bind mount ignores `ro`; only a remount makes it read-only.
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${quote(target)}`)
  }
  const env = Object.entries({PATH: CONTAINER_PATH, HOME: '/root', ...sandbox.env}).map(([k, v]) => quote(`${k}=${v}`))
  lines.push(`exec env -i ${env.join(' ')} unshare --root=${quote(root)} --wd=${quote(normalizeContainerPath(sandbox.workingDir))} -- "$@"`)
  return lines.join('\n')
}

/** Mounts ordered parents first, so a mount inside another volume's mount path lands on top of it. */
function sortedMounts(mounts: ContainerMount[]): ContainerMount[] {
  const depth = (m: ContainerMount) => normalizeContainerPath(m.mountPath).split('/').length
  return [...mounts].sort((a, b) => depth(a) - depth(b))
}

/** Normalises an absolute container path; `..` cannot climb above `/`. */
export function normalizeContainerPath(p: string): string {
  return path.posix.resolve('/', p)
}

/**
 * Returns the host path of `containerPath` in `rootfs`, refusing a path that
 * crosses a symlink: `mount --bind` follows symlinks on the host, where an
 * absolute link such as /bin/sh → /bin/busybox points out of the container.
 */
async function hostPathInRootfs(rootfs: string, containerPath: string): Promise<string> {
  let current = rootfs
  for (const part of normalizeContainerPath(containerPath).split('/').filter(Boolean)) {
    current = path.join(current, part)
    try {
      if ((await lstat(current)).isSymbolicLink()) throw new Error(`mount path ${containerPath} crosses a symlink in the image (${part})`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
  }
  return path.join(rootfs, normalizeContainerPath(containerPath))
}

/** Quotes `s` for a POSIX shell. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
