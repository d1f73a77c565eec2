/**
 * A pod's volumes as host directories, and each container's mounts of them.
 * PVCs resolve through their bound PV to its hostPath/local directory (where
 * the storage provisioner keeps the data); emptyDirs live in the pod's
 * directory; ConfigMap and Secret volumes are written out as files, once, at
 * pod start. The pod's fsGroup is applied to emptyDirs, claims, ConfigMap
 * and Secret volumes as the kubelet does.
 */
import type {Stats} from 'node:fs'
import {chmod, chown, lstat, mkdir, readdir, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import type {ApiClient} from './api.js'
import {isApiError} from './api.js'
import type {ContainerMount} from './container.js'
import {normalizeContainerPath} from './container.js'
import {fsGroupOwnership, needsOwnershipChange, type OwnedEntry} from './security.js'
import type {ConfigMap, Container, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume} from './types.js'

/** A volume the pod cannot use yet (claim not bound, object not there): the pod stays Pending and is retried. */
export class VolumeNotReady extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'VolumeNotReady'
  }
}

/** One of the pod's volumes on the host. */
export interface HostVolume {
  path: string
  /** Mounted read-only whatever the mount says (ConfigMap, Secret, read-only claims). */
  readOnly: boolean
}

/**
 * Returns each volume of `pod` by name as a host path, creating emptyDirs and
 * writing ConfigMap/Secret files under `volumesDir`. Volume types the node does
 * not model (projected, downwardAPI) are left out; mounts of them are skipped.
 */
export async function resolveVolumes(api: ApiClient, pod: Pod, volumesDir: string): Promise<Map<string, HostVolume>> {
  const ns = pod.metadata.namespace ?? 'default'
  const volumes = new Map<string, HostVolume>()
  for (const volume of pod.spec.volumes ?? []) {
    const resolved = await resolveVolume(api, ns, volume, path.join(volumesDir, volume.name))
    if (!resolved) continue
    const fsGroup = pod.spec.securityContext?.fsGroup
    if (fsGroup !== undefined && volume.persistentVolumeClaim) {
      // Claims behave as a CSI driver with fsGroupPolicy File, the only plugin that reads fsGroupChangePolicy.
      await setVolumeOwnership(resolved.path, fsGroup, resolved.readOnly, pod.spec.securityContext?.fsGroupChangePolicy)
    } else if (fsGroup !== undefined && (volume.emptyDir || volume.configMap || volume.secret)) {
      // The kubelet's emptyDir, secret and configMap plugins always walk (secret and configMap read-only: 0440).
      // hostPath volumes are never changed.
      await setVolumeOwnership(resolved.path, fsGroup, resolved.readOnly, undefined)
    }
    volumes.set(volume.name, resolved)
  }
  return volumes
}

async function resolveVolume(api: ApiClient, ns: string, volume: Volume, ownDir: string): Promise<HostVolume | undefined> {
  if (volume.persistentVolumeClaim) {
    const dir = await claimDirectory(api, ns, volume.persistentVolumeClaim.claimName)
    return {path: dir, readOnly: volume.persistentVolumeClaim.readOnly ?? false}
  }
  if (volume.emptyDir) {
    await mkdir(ownDir, {recursive: true})
    // The kubelet makes emptyDirs 0777 whatever the umask: any uid may write.
    await chmod(ownDir, 0o777)
    return {path: ownDir, readOnly: false}
  }
  if (volume.hostPath) {
    // Like type DirectoryOrCreate; a file path that exists is used as it is.
    await stat(volume.hostPath.path).catch(() => mkdir(volume.hostPath!.path, {recursive: true}))
    return {path: volume.hostPath.path, readOnly: false}
  }
  if (volume.configMap) {
    const source = volume.configMap
    const cm = await getOptional<ConfigMap>(api, `/api/v1/namespaces/${ns}/configmaps/${source.name}`, source.optional, `ConfigMap ${source.name}`)
    const data: Record<string, Buffer> = {}
    for (const [k, v] of Object.entries(cm?.data ?? {})) data[k] = Buffer.from(v, 'utf8')
    for (const [k, v] of Object.entries(cm?.binaryData ?? {})) data[k] = Buffer.from(v, 'base64')
    await writeKeys(ownDir, data, source.items, source.defaultMode, `ConfigMap ${source.name}`)
    return {path: ownDir, readOnly: true}
  }
  if (volume.secret) {
    const source = volume.secret
    const secret = await getOptional<Secret>(api, `/api/v1/namespaces/${ns}/secrets/${source.secretName}`, source.optional, `Secret ${source.secretName}`)
    const data: Record<string, Buffer> = {}
    for (const [k, v] of Object.entries(secret?.data ?? {})) data[k] = Buffer.from(v, 'base64')
    await writeKeys(ownDir, data, source.items, source.defaultMode, `Secret ${source.secretName}`)
    return {path: ownDir, readOnly: true}
  }
  return undefined
}

/**
 * Gives the volume at `dir` to `fsGroup` as the kubelet's SetVolumeOwnership
 * does (security.ts has the rules): every file and directory below it, unless
 * the policy is OnRootMismatch and the root already matches.
 */
export async function setVolumeOwnership(dir: string, fsGroup: number, readOnly: boolean, policy: string | undefined): Promise<void> {
  const ownedEntry = (st: Stats): OwnedEntry => ({mode: st.mode & 0o7777, gid: st.gid, isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink()})
  if (!needsOwnershipChange(ownedEntry(await lstat(dir)), fsGroup, readOnly, policy)) return
  const visit = async (file: string): Promise<void> => {
    const st = await lstat(file)
    const change = fsGroupOwnership(ownedEntry(st), fsGroup, readOnly)
    if (!change) return
    await chown(file, st.uid, change.gid)
    // After the chown: it clears set-id bits, which the mode read before puts back.
    await chmod(file, change.mode)
    if (st.isDirectory()) for (const name of await readdir(file)) await visit(path.join(file, name))
  }
  await visit(dir)
}

/** Returns the directory of the PV bound to claim `name`, or throws `VolumeNotReady` while it is unbound. */
async function claimDirectory(api: ApiClient, ns: string, name: string): Promise<string> {
  let claim: PersistentVolumeClaim
  try {
    claim = await api.get<PersistentVolumeClaim>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`)
  } catch (err) {
    if (isApiError(err, 404)) throw new VolumeNotReady(`PersistentVolumeClaim ${name} not found`)
    throw err
  }
  if (claim.status?.phase !== 'Bound' || !claim.spec.volumeName) throw new VolumeNotReady(`PersistentVolumeClaim ${name} is not bound yet`)
  const pv = await api.get<PersistentVolume>(`/api/v1/persistentvolumes/${claim.spec.volumeName}`)
  const dir = pv.spec.hostPath?.path ?? pv.spec.local?.path
  if (!dir) throw new VolumeNotReady(`PersistentVolume ${claim.spec.volumeName} has neither hostPath nor local path; this node mounts only those`)
  // The provisioner may not have made the directory yet (static PVs never do).
  await mkdir(dir, {recursive: true})
  return dir
}

async function getOptional<T>(api: ApiClient, url: string, optional: boolean | undefined, what: string): Promise<T | undefined> {
  try {
    return await api.get<T>(url)
  } catch (err) {
    if (!isApiError(err, 404)) throw err
    if (optional) return undefined
    throw new VolumeNotReady(`${what} not found`)
  }
}

/** Writes `data` as files in `dir`: every key, or only `items` at their paths; modes as the kubelet sets them. */
async function writeKeys(dir: string, data: Record<string, Buffer>, items: KeyToPath[] | undefined, defaultMode = 0o644, what: string): Promise<void> {
  await mkdir(dir, {recursive: true})
  const files: KeyToPath[] = items ?? Object.keys(data).map((key) => ({key, path: key}))
  for (const item of files) {
    const content = data[item.key]
    if (!content) throw new VolumeNotReady(`${what} has no key ${item.key}`)
    const file = path.join(dir, safeRelative(item.path))
    await mkdir(path.dirname(file), {recursive: true})
    await writeFile(file, content)
    await chmod(file, item.mode ?? defaultMode)
  }
}

/**
 * Returns the mounts of `container`: each volumeMount's host source (with
 * `subPath` joined and created, as the kubelet does) and where it goes.
 */
export async function containerMounts(container: Container, volumes: Map<string, HostVolume>): Promise<ContainerMount[]> {
  const mounts: ContainerMount[] = []
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name)
    if (!volume) continue
    let source = volume.path
    if (mount.subPath) {
      source = path.join(volume.path, safeRelative(mount.subPath))
      await stat(source).catch(() => mkdir(source, {recursive: true}))
    }
    mounts.push({source, mountPath: normalizeContainerPath(mount.mountPath), readOnly: Boolean(mount.readOnly) || volume.readOnly})
  }
  return mounts
}

/** Returns `p` as a relative path that cannot leave its base directory (the API server rejects `..` too). */
export function safeRelative(p: string): string {
  const normalized = path.posix.normalize(p)
  if (path.posix.isAbsolute(normalized) || normalized === '..' || normalized.startsWith('../')) throw new Error(`path ${p} leaves its volume`)
  return normalized
}
