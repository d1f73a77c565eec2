/**
 * Runs a process inside a container: private mount, UTS and PID namespaces,
 * in which the devices and each volume are mounted inside the container's
 * root filesystem (itself read-only when the container asks) and the hostname
 * is the pod's; then container-init mounts /proc, pivots into the root and
 * takes on the container's identity (uid, gid, groups, capabilities,
 * no_new_privs) before it becomes the command. The namespaces die with the process, so
 * nothing is ever mounted on the host and two containers can share a volume.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {access, lstat, mkdir, readFile, rename, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {binaryDir} from '../controlplane.js'
import {BUSYBOX, CONTAINER_PATH, DEVICES} from './rootfs.js'
import {capabilityMask, type ContainerIdentity} from './security.js'

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
  /** Who the container's processes run as (security.ts). */
  identity: ContainerIdentity
  /** The container-init binary (`buildContainerInit`). */
  init: string
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
 * command started, as a runtime killing the exec's cgroup would. Each process
 * gets a PID namespace of its own, so the container's /proc shows only it and
 * its children (the command is PID 1 there).
 */
export function spawnInContainer(sandbox: ContainerSandbox, command: string[]): ChildProcess {
  const script = mountScript(sandbox)
  return spawn('unshare', ['--mount', '--uts', '--pid', '--fork', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', ...command], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    // The host side of the script needs a PATH; the command gets only the container env (env -i).
    env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin'},
  })
}

/**
 * The host-side shell script run in the new namespaces: bind the root onto
 * itself, read-only if asked (first, so the mounts below still go on top),
 * bind the devices and the volumes (remounting read-only ones), then `exec`
 * container-init (which mounts /proc) with the container's env and identity.
 * Exported for tests.
 */
export function mountScript(sandbox: ContainerSandbox): string {
  const root = sandbox.rootfs
  const id = sandbox.identity
  const lines = ['set -e', `${BUSYBOX} hostname ${quote(sandbox.hostname)}`]
  // pivot_root needs the new root to be a mount point.
  lines.push(`mount --bind ${quote(root)} ${quote(root)}`)
  if (id.readOnlyRootFilesystem) lines.push(`mount -o remount,bind,ro ${quote(root)}`)
  for (const device of DEVICES) lines.push(`mount --bind ${quote(`/dev/${device}`)} ${quote(path.join(root, 'dev', device))}`)
  for (const mount of sortedMounts(sandbox.mounts)) {
    const target = path.join(root, normalizeContainerPath(mount.mountPath))
    lines.push(`mount --bind ${quote(mount.source)} ${quote(target)}`)
    // A bind mount ignores `ro`; only a remount makes it read-only.
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${quote(target)}`)
  }
  const env = Object.entries({PATH: CONTAINER_PATH, HOME: id.home, ...sandbox.env}).map(([k, v]) => quote(`${k}=${v}`))
  const init = [
    quote(sandbox.init), `--root=${quote(root)}`, `--wd=${quote(normalizeContainerPath(sandbox.workingDir))}`,
    `--uid=${id.uid}`, `--gid=${id.gid}`, `--groups=${id.groups.join(',')}`, `--caps=${capabilityMask(id.capabilities)}`,
    ...(id.noNewPrivs ? ['--no-new-privs'] : []),
  ]
  lines.push(`exec env -i ${env.join(' ')} ${init.join(' ')} -- "$@"`)
  return lines.join('\n')
}

const GO = '/usr/lib/go-1.19/bin/go'
let initBuild: Promise<string> | undefined

/**
 * Returns the path of the container-init binary built from
 * container-init/main.go, building it (a few seconds) into the test cache
 * (`$KUBESNAP_TEST_CACHE`, else ~/.cache/kubesnap-test) the first time;
 * the file name carries the source's hash, so a changed source is rebuilt.
 */
export function buildContainerInit(): Promise<string> {
  initBuild ??= (async () => {
    const source = fileURLToPath(new URL('container-init/main.go', import.meta.url))
    const hash = createHash('sha256').update(await readFile(source)).digest('hex').slice(0, 16)
    // binaryDir() is the control plane's versioned directory inside the cache.
    const dir = path.join(path.dirname(binaryDir()), 'container-init')
    const binary = path.join(dir, `container-init-${hash}`)
    if (await access(binary).then(() => true, () => false)) return binary
    if (!(await access(GO).then(() => true, () => false))) throw new Error(`${GO} is missing: apt-get install golang-1.19 (the test node builds its container-init with it)`)
    await mkdir(dir, {recursive: true})
    // Another test process may build at the same time: each writes its own file, the rename is atomic.
    const tmp = `${binary}.${process.pid}.tmp`
    await promisify(execFile)(GO, ['build', '-trimpath', '-ldflags', '-s -w', '-o', tmp, source], {
      env: {...process.env, CGO_ENABLED: '0', GO111MODULE: 'off', GOFLAGS: '', GOCACHE: path.join(dir, 'go-build')},
    })
    await rename(tmp, binary)
    return binary
  })()
  initBuild.catch(() => {
    initBuild = undefined
  })
  return initBuild
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
