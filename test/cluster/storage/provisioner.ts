/**
 * The test cluster's volume provisioner, an external provisioner in the sense
 * of sig-storage-lib-external-provisioner: the real PV controller marks a
 * pending claim of our StorageClass with `volume.beta.kubernetes.io/storage-provisioner`,
 * we make a directory and a hostPath PersistentVolume pre-bound to the claim,
 * and the PV controller binds the two. When a claim is deleted the PV controller
 * marks its volume Released; we then remove the directory and the PV. Claims
 * can start from a VolumeSnapshot or another claim (`spec.dataSource`), and can
 * grow (`allowVolumeExpansion`).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  StorageV1Api,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1StorageClass,
} from '@kubernetes/client-node'
import {type Disk, isDir, populateDir, removeDir, snapshotDir, volumeDir} from './disk.js'
import {describe, type Informer, startInformer, syncAll} from './informer.js'

/** The provisioner's name, as StorageClasses and PV annotations carry it. */
export const DRIVER = 'hostpath.kubesnap.test'
/** The default StorageClass we serve, unless told another name (a second cluster's `fast`). */
export const STORAGE_CLASS = 'standard'

const ANN_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner'
const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by'
const ANN_DEFAULT_CLASS = 'storageclass.kubernetes.io/is-default-class'
const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io'

/** A running provisioner. */
export interface Provisioner {
  stop(): Promise<void>
}

/** Options for {@link startProvisioner}. */
export interface ProvisionerOptions {
  kubeconfig: KubeConfig
  disk: Disk
  /** The name of the default StorageClass to create and serve. Default {@link STORAGE_CLASS}. */
  storageClass?: string
  log: (line: string) => void
}

/** Creates the default StorageClass (`standard`) unless it exists, then starts provisioning and deleting volumes. */
export async function startProvisioner(opts: ProvisionerOptions): Promise<Provisioner> {
  const core = opts.kubeconfig.makeApiClient(CoreV1Api)
  const storage = opts.kubeconfig.makeApiClient(StorageV1Api)
  const custom = opts.kubeconfig.makeApiClient(CustomObjectsApi)
  const className = opts.storageClass ?? STORAGE_CLASS
  await ensureStorageClass(storage, className)

  const claims: Informer = startInformer<V1PersistentVolumeClaim>({
    name: 'provisioner',
    kubeconfig: opts.kubeconfig,
    path: '/api/v1/persistentvolumeclaims',
    list: () => core.listPersistentVolumeClaimForAllNamespaces(),
    reconcile: (claim) => reconcileClaim(claim),
    log: opts.log,
  })
  const volumes: Informer = startInformer<V1PersistentVolume>({
    name: 'deleter',
    kubeconfig: opts.kubeconfig,
    path: '/api/v1/persistentvolumes',
    list: () => core.listPersistentVolume(),
    reconcile: (volume) => reconcileVolume(volume),
    log: opts.log,
  })
  return syncAll([claims, volumes])

  /** Provisions a volume for a pending claim of ours, or grows the volume of a bound one. */
  async function reconcileClaim(claim: V1PersistentVolumeClaim): Promise<void> {
    const {namespace = '', name = '', uid = ''} = claim.metadata ?? {}
    if (claim.metadata?.annotations?.[ANN_PROVISIONER] !== DRIVER || claim.metadata.deletionTimestamp) return
    if (claim.status?.phase === 'Bound') return resizeIfAsked(claim)
    if (claim.spec?.volumeName) return
    const pvName = `pvc-${uid}`
    if (await exists(() => core.readPersistentVolume({name: pvName}))) return

    const source = await dataSourceDir(claim)
    const dir = volumeDir(opts.disk, pvName)
    await populateDir(dir, source)
    const volume: V1PersistentVolume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {name: pvName, annotations: {[ANN_PROVISIONED_BY]: DRIVER}},
      spec: {
        capacity: {storage: claim.spec?.resources?.requests?.storage ?? '1Gi'},
        accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
        volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
        // Pre-bound to the claim by uid: the PV controller binds exactly this pair.
        claimRef: {apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid},
        storageClassName: claim.spec?.storageClassName ?? className,
        persistentVolumeReclaimPolicy: 'Delete',
        hostPath: {path: dir, type: 'Directory'},
      },
    }
    try {
      await core.createPersistentVolume({body: volume})
    } catch (err) {
      if (statusOf(err) !== 409) throw err
    }
    opts.log(`provisioner: ${namespace}/${name} → ${pvName}${source ? ` (from ${claim.spec?.dataSource?.kind} ${claim.spec?.dataSource?.name})` : ''}`)
  }

  /**
   * Returns the directory a new volume is copied from, or undefined for an empty
   * one. Throws (and so retries) while a source snapshot is not ready yet, as a
   * CSI provisioner does.
   */
  async function dataSourceDir(claim: V1PersistentVolumeClaim): Promise<string | undefined> {
    const source = claim.spec?.dataSource
    if (!source) return undefined
    const namespace = claim.metadata?.namespace ?? ''
    if (source.kind === 'VolumeSnapshot' && source.apiGroup === SNAPSHOT_GROUP) {
      const snapshot = await custom.getNamespacedCustomObject({group: SNAPSHOT_GROUP, version: 'v1', namespace, plural: 'volumesnapshots', name: source.name}) as {status?: {readyToUse?: boolean; boundVolumeSnapshotContentName?: string}}
      const contentName = snapshot.status?.boundVolumeSnapshotContentName
      if (!snapshot.status?.readyToUse || !contentName) throw new Error(`VolumeSnapshot ${namespace}/${source.name} is not ready to use yet`)
      const content = await custom.getClusterCustomObject({group: SNAPSHOT_GROUP, version: 'v1', plural: 'volumesnapshotcontents', name: contentName}) as {status?: {snapshotHandle?: string}}
      const handle = content.status?.snapshotHandle
      if (!handle) throw new Error(`VolumeSnapshotContent ${contentName} has no snapshot handle yet`)
      const dir = snapshotDir(opts.disk, handle)
      if (!(await isDir(dir))) throw new Error(`snapshot ${handle} has no data at ${dir}`)
      return dir
    }
    if (source.kind === 'PersistentVolumeClaim' && !source.apiGroup) {
      const sourceClaim = await core.readNamespacedPersistentVolumeClaim({namespace, name: source.name})
      const pvName = sourceClaim.spec?.volumeName
      if (sourceClaim.status?.phase !== 'Bound' || !pvName) throw new Error(`source claim ${namespace}/${source.name} is not bound yet`)
      return volumeDir(opts.disk, pvName)
    }
    // Anything else is not ours to fill; an empty volume would silently lose data.
    throw new Error(`data source ${source.apiGroup ?? ''}/${source.kind} ${source.name} is not supported`)
  }

  /**
   * Grows the volume when the claim asks for more than it has. A directory has
   * no size, so this is bookkeeping only: the PV's capacity, then the claim's
   * status, as an external resizer with no filesystem step does.
   */
  async function resizeIfAsked(claim: V1PersistentVolumeClaim): Promise<void> {
    const wanted = claim.spec?.resources?.requests?.storage
    const has = claim.status?.capacity?.storage
    const pvName = claim.spec?.volumeName
    if (!wanted || !has || !pvName || parseQuantity(wanted) <= parseQuantity(has)) return
    const volume = await core.readPersistentVolume({name: pvName})
    if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] !== DRIVER) return
    volume.spec = {...volume.spec, capacity: {...volume.spec?.capacity, storage: wanted}}
    await core.replacePersistentVolume({name: pvName, body: volume})
    const fresh = await core.readNamespacedPersistentVolumeClaim({namespace: claim.metadata?.namespace ?? '', name: claim.metadata?.name ?? ''})
    fresh.status = {...fresh.status, capacity: {...fresh.status?.capacity, storage: wanted}}
    await core.replaceNamespacedPersistentVolumeClaimStatus({namespace: fresh.metadata?.namespace ?? '', name: fresh.metadata?.name ?? '', body: fresh})
    opts.log(`provisioner: ${claim.metadata?.namespace}/${claim.metadata?.name} resized to ${wanted}`)
  }

  /** Deletes a volume of ours that its claim released, data first. */
  async function reconcileVolume(volume: V1PersistentVolume): Promise<void> {
    const name = volume.metadata?.name ?? ''
    if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] !== DRIVER) return
    if (volume.status?.phase !== 'Released' || volume.spec?.persistentVolumeReclaimPolicy !== 'Delete') return
    if (volume.metadata?.deletionTimestamp) return
    await removeDir(volumeDir(opts.disk, name))
    try {
      await core.deletePersistentVolume({name})
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
    opts.log(`deleter: ${name} released by ${volume.spec.claimRef?.namespace}/${volume.spec.claimRef?.name}: removed`)
  }
}

/** Creates the default StorageClass; an existing one is left as it is (StorageClass parameters are immutable). */
async function ensureStorageClass(storage: StorageV1Api, name: string): Promise<void> {
  const body: V1StorageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {name, annotations: {[ANN_DEFAULT_CLASS]: 'true'}},
    provisioner: DRIVER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    allowVolumeExpansion: true,
  }
  try {
    await storage.createStorageClass({body})
  } catch (err) {
    if (statusOf(err) !== 409) throw new Error(`cannot create StorageClass ${name}: ${describe(err)}`, {cause: err})
  }
}

/** Returns whether `read` finds its object (false on 404). */
async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read()
    return true
  } catch (err) {
    if (statusOf(err) === 404) return false
    throw err
  }
}

/** Returns the HTTP status of a client-node ApiException, if it is one. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as {code?: unknown})?.code
  return typeof code === 'number' ? code : undefined
}

const SUFFIXES: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, m: 1e-3,
}

/** Returns the value of a Kubernetes quantity such as `1Gi` or `500M`, in base units. */
export function parseQuantity(quantity: string): number {
  const match = /^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$/.exec(quantity.trim())
  if (!match) throw new Error(`${JSON.stringify(quantity)} is not a quantity`)
  const [, number, exponent, suffix = ''] = match
  if (exponent) return Number(number + exponent)
  const factor = SUFFIXES[suffix]
  if (factor === undefined) throw new Error(`${JSON.stringify(quantity)} has an unknown suffix`)
  return Number(number) * factor
}
