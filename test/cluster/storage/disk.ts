/**
 * Where the test cluster's volumes and snapshots live on disk, and how data
 * moves between them. A volume is a directory `<dir>/volumes/<pv-name>` that
 * the node bind-mounts into pods; a snapshot is a full copy of one,
 * `<dir>/snapshots/<content-name>`.
 */
import {chmod, lstat, mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

/** The storage's directories under its state directory. */
export interface Disk {
  volumesDir: string
  snapshotsDir: string
}

/** Creates the volume and snapshot directories under `dir`. */
export async function prepareDisk(dir: string): Promise<Disk> {
  const disk = {volumesDir: path.join(path.resolve(dir), 'volumes'), snapshotsDir: path.join(path.resolve(dir), 'snapshots')}
  await mkdir(disk.volumesDir, {recursive: true})
  await mkdir(disk.snapshotsDir, {recursive: true})
  return disk
}

/** Returns the directory of the volume behind PV `pvName`. */
export function volumeDir(disk: Disk, pvName: string): string {
  return childOf(disk.volumesDir, pvName)
}

/** Returns the directory holding the snapshot with handle `handle`. */
export function snapshotDir(disk: Disk, handle: string): string {
  return childOf(disk.snapshotsDir, handle)
}

/**
 * Makes `target` a new directory holding a copy of `source` (or an empty one
 * when `source` is undefined), all at once: it is filled under a temporary name
 * and renamed, so a crash or a retry never leaves a half-copied volume behind.
 */
export async function populateDir(target: string, source?: string): Promise<void> {
  const staging = `${target}.partial`
  await rm(staging, {recursive: true, force: true})
  if (source === undefined) {
    await mkdir(staging)
  } else {
    // `cp -a` keeps modes, owners, symlinks and mtimes: what a restore must prove it kept.
    await execa('cp', ['-a', '--', source, staging])
  }
  // Pods run as any user; the volume root must be writable by them, as a fresh
  // hostPath provisioner's would be. Copies keep the source's mode.
  if (source === undefined) await chmod(staging, 0o777)
  await rm(target, {recursive: true, force: true})
  await rename(staging, target)
}

/** Removes a volume or snapshot directory; missing is fine. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, {recursive: true, force: true})
  await rm(`${dir}.partial`, {recursive: true, force: true})
}

/** What we remember about a snapshot beside its data: what CSI's ListSnapshots would report. */
export interface SnapshotInfo {
  /** The volume it was taken of. */
  sourceVolume: string
  /** The smallest volume a restore needs, as a quantity (the source volume's capacity). */
  restoreSize: string
  /** When it was taken, ISO 8601. */
  creationTime: string
}

/** Records `info` beside the snapshot with handle `handle`. */
export async function writeSnapshotInfo(disk: Disk, handle: string, info: SnapshotInfo): Promise<void> {
  const file = `${snapshotDir(disk, handle)}.json`
  await writeFile(`${file}.partial`, JSON.stringify(info, null, 2) + '\n')
  await rename(`${file}.partial`, file)
}

/** Returns what {@link writeSnapshotInfo} recorded, or undefined when the snapshot does not exist. */
export async function readSnapshotInfo(disk: Disk, handle: string): Promise<SnapshotInfo | undefined> {
  try {
    // A handle that is not a valid name (a pre-provisioned content can say anything) names no snapshot of ours.
    const dir = snapshotDir(disk, handle)
    if (!(await isDir(dir))) return undefined
    return JSON.parse(await readFile(`${dir}.json`, 'utf8')) as SnapshotInfo
  } catch {
    return undefined
  }
}

/** Removes a snapshot's data and its info file. */
export async function removeSnapshot(disk: Disk, handle: string): Promise<void> {
  let dir
  try {
    dir = snapshotDir(disk, handle)
  } catch {
    return // not a name we would have made: nothing of ours to remove
  }
  await rm(`${dir}.json`, {force: true})
  await removeDir(dir)
}

/** Returns whether `dir` exists as a directory. */
export async function isDir(dir: string): Promise<boolean> {
  try {
    return (await lstat(dir)).isDirectory()
  } catch {
    return false
  }
}

/**
 * Joins a name from the API onto `parent`, refusing anything that is not one
 * plain path segment: names come from objects any test may create, and a
 * `..` must never let a deletion escape the storage directory.
 */
function childOf(parent: string, name: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.includes('..')) {
    throw new Error(`${JSON.stringify(name)} is not a valid volume or snapshot name`)
  }
  return path.join(parent, name)
}
