/**
 * Container root filesystems. There is no image registry: an image name maps
 * to one of two local "images", built once per node from Debian's
 * busybox-static:
 *
 * - `busybox`: /bin/busybox with every applet linked (sh, tar, sha256sum, head…),
 *   which is what kubesnap needs from an ordinary application image;
 * - `distroless`: /etc and nothing to run, like gcr.io/distroless images, so an
 *   exec of `tar` or `sh` fails the way it does on a real runtime.
 *
 * Each container gets its own copy (≈2 MB), so writes to /tmp or / stay per container.
 */
import {execFile} from 'node:child_process'
import {chmod, chown, cp, mkdir, symlink, writeFile, lstat} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** The host's static busybox (Debian package busybox-static). */
export const BUSYBOX = '/bin/busybox'

/** The PATH a container's processes get, as container runtimes set by default. */
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Which local image an image reference runs as. */
export type ImageKind = 'busybox' | 'distroless'

/** The base root filesystems of one node, by image kind. */
export type Images = Record<ImageKind, string>

/** Returns the local image an image reference maps to: any name containing `distroless` has no shell and no tar. */
export function imageKind(image: string | undefined): ImageKind {
  return image?.includes('distroless') ? 'distroless' : 'busybox'
}

/** A user in an image's /etc/passwd (with a group of the same name and id in /etc/group). */
export interface ImageUser {
  name: string
  uid: number
  gid: number
  home: string
}

/** The users of each local image, as the real images have them (distroless also has `nonroot`, 65532). */
export const IMAGE_USERS: Record<ImageKind, readonly ImageUser[]> = {
  busybox: [
    {name: 'root', uid: 0, gid: 0, home: '/root'},
    {name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent'},
  ],
  distroless: [
    {name: 'root', uid: 0, gid: 0, home: '/root'},
    {name: 'nonroot', uid: 65532, gid: 65532, home: '/home/nonroot'},
    {name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent'},
  ],
}

/**
 * Returns the user an image's config names (its `USER`), as uid and gid: the
 * `nonroot` variants of distroless (tag `nonroot`, or a tag ending in
 * `-nonroot` such as `debug-nonroot`) run as 65532:65532, every other image
 * here as root.
 */
export function imageUser(image: string | undefined): {uid: number; gid: number} {
  const tag = /:([^/:@]+)(@.*)?$/.exec(image ?? '')?.[1]
  if (imageKind(image) === 'distroless' && tag !== undefined && (tag === 'nonroot' || tag.endsWith('-nonroot'))) return {uid: 65532, gid: 65532}
  return {uid: 0, gid: 0}
}

/** Builds both base images under `dir` and returns their paths. */
export async function buildImages(dir: string): Promise<Images> {
  const images: Images = {busybox: path.join(dir, 'busybox'), distroless: path.join(dir, 'distroless')}
  await buildSkeleton(images.distroless, IMAGE_USERS.distroless)
  await buildSkeleton(images.busybox, IMAGE_USERS.busybox)
  await cp(BUSYBOX, path.join(images.busybox, 'bin/busybox'))
  const {stdout} = await run(BUSYBOX, ['--list-full'])
  for (const applet of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    // The list names busybox itself; linking it to itself would make a loop.
    if (applet === 'bin/busybox') continue
    const link = path.join(images.busybox, applet)
    await mkdir(path.dirname(link), {recursive: true})
    // Absolute targets resolve inside the container's root, as in the busybox image.
    await symlink('/bin/busybox', link).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
  }
  return images
}

/** Copies the base image for `image` to `target`, a new container root filesystem. */
export async function createContainerRootfs(images: Images, image: string | undefined, target: string, hostname: string): Promise<void> {
  const kind = imageKind(image)
  await cp(images[kind], target, {recursive: true, verbatimSymlinks: true})
  // cp does not keep owners: home directories are given to their users here.
  for (const user of IMAGE_USERS[kind].filter((u) => u.home.startsWith('/home/'))) await chown(path.join(target, user.home), user.uid, user.gid)
  await writeFile(path.join(target, 'etc/hostname'), `${hostname}\n`)
  await writeFile(path.join(target, 'etc/hosts'), `127.0.0.1\tlocalhost\n127.0.0.1\t${hostname}\n`)
}

/**
 * Returns whether `command` can be run in `rootfs`: a path (relative to
 * `workingDir`) must exist there, a bare name must be found on the container PATH. Checked with `lstat` so a
 * busybox applet link (pointing at /bin/busybox inside the root) counts.
 */
export async function hasExecutable(rootfs: string, command: string, workingDir = '/'): Promise<boolean> {
  const candidates = command.includes('/')
    ? [path.posix.resolve('/', workingDir, command)]
    : CONTAINER_PATH.split(':').map((dir) => path.posix.join(dir, command))
  for (const candidate of candidates) {
    try {
      await lstat(path.join(rootfs, candidate))
      return true
    } catch {
      // Not in this directory; try the next.
    }
  }
  return false
}

/** The directories and files every image has: /etc with `users`, /tmp, /root, home directories, /dev and /proc mount points. */
async function buildSkeleton(root: string, users: readonly ImageUser[]): Promise<void> {
  for (const dir of ['etc', 'tmp', 'root', 'dev', 'proc', 'var/tmp', 'home']) await mkdir(path.join(root, dir), {recursive: true})
  await chmod(path.join(root, 'tmp'), 0o1777)
  await chmod(path.join(root, 'var/tmp'), 0o1777)
  await chmod(path.join(root, 'root'), 0o700)
  for (const user of users.filter((u) => u.home.startsWith('/home/'))) await mkdir(path.join(root, user.home), {recursive: true})
  const shell = (user: ImageUser) => (user.uid === 0 ? '/bin/sh' : '/sbin/nologin')
  await writeFile(path.join(root, 'etc/passwd'), users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:${shell(u)}\n`).join(''))
  await writeFile(path.join(root, 'etc/group'), users.map((u) => `${u.gid === 65534 ? 'nogroup' : u.name}:x:${u.gid}:\n`).join(''))
  await writeFile(path.join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n')
  // Mount points for the host's character devices, bound in at exec time.
  for (const device of DEVICES) await writeFile(path.join(root, 'dev', device), '')
}

/** Host devices bound into every container (programs expect /dev/null at least). */
export const DEVICES = ['null', 'zero', 'random', 'urandom'] as const
