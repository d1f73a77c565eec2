/**
 * The test cluster's snapshot controller and driver in one: it installs the
 * `snapshot.storage.k8s.io/v1` CRDs and a default VolumeSnapshotClass, takes a
 * VolumeSnapshot of a claim by copying its volume's directory, and keeps
 * VolumeSnapshot and VolumeSnapshotContent bound both ways as the upstream
 * snapshot-controller and csi-snapshotter do. Pre-provisioned contents (an
 * existing `snapshotHandle`, e.g. to restore into another namespace) bind too.
 */
import {readFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node'
import yaml from 'js-yaml'
import {ensureCrd} from '../documents.js'
import {type Disk, populateDir, readSnapshotInfo, removeSnapshot, snapshotDir, volumeDir, writeSnapshotInfo} from './disk.js'
import {describe, type Informer, keyOf, startInformer, syncAll} from './informer.js'
import {DRIVER, parseQuantity, statusOf} from './provisioner.js'

/** The default VolumeSnapshotClass we serve. */
export const SNAPSHOT_CLASS = 'standard-snapshot'

const GROUP = 'snapshot.storage.k8s.io'
const VERSION = 'v1'
const ANN_DEFAULT_CLASS = 'snapshot.storage.kubernetes.io/is-default-class'
const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by'
const CRDS_FILE = fileURLToPath(new URL('./snapshot-crds.yaml', import.meta.url))

/** A VolumeSnapshot as far as we read and write it. */
export interface VolumeSnapshot {
  apiVersion?: string
  kind?: string
  metadata: {name: string; namespace: string; uid: string; resourceVersion?: string; deletionTimestamp?: string}
  spec: {source: {persistentVolumeClaimName?: string; volumeSnapshotContentName?: string}; volumeSnapshotClassName?: string}
  status?: {
    boundVolumeSnapshotContentName?: string
    creationTime?: string
    readyToUse?: boolean
    restoreSize?: string
    error?: {message?: string; time?: string}
  }
}

/** A VolumeSnapshotContent as far as we read and write it. */
export interface VolumeSnapshotContent {
  apiVersion?: string
  kind?: string
  metadata: {name: string; uid?: string; resourceVersion?: string; deletionTimestamp?: string}
  spec: {
    volumeSnapshotRef: {apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string}
    source: {volumeHandle?: string; snapshotHandle?: string}
    driver: string
    deletionPolicy: 'Delete' | 'Retain'
    volumeSnapshotClassName?: string
    sourceVolumeMode?: string
  }
  status?: {
    snapshotHandle?: string
    readyToUse?: boolean
    restoreSize?: number
    creationTime?: number
    error?: {message?: string; time?: string}
  }
}

interface VolumeSnapshotClass {
  metadata: {name: string; annotations?: Record<string, string>}
  driver: string
  deletionPolicy: 'Delete' | 'Retain'
}

/** A running snapshot controller. */
export interface SnapshotController {
  stop(): Promise<void>
}

/** Options for {@link startSnapshotController}. */
export interface SnapshotControllerOptions {
  kubeconfig: KubeConfig
  disk: Disk
  log: (line: string) => void
}

/** Installs the snapshot CRDs and class, then starts taking, binding and deleting snapshots. */
export async function startSnapshotController(opts: SnapshotControllerOptions): Promise<SnapshotController> {
  const core = opts.kubeconfig.makeApiClient(CoreV1Api)
  const custom = opts.kubeconfig.makeApiClient(CustomObjectsApi)
  await installCrds(opts.kubeconfig)
  await ensureSnapshotClass(custom)

  const snapshots: Informer = startInformer<VolumeSnapshot>({
    name: 'snapshotter',
    kubeconfig: opts.kubeconfig,
    path: `/apis/${GROUP}/${VERSION}/volumesnapshots`,
    list: () => custom.listClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshots'}),
    reconcile: (snapshot) => reconcileSnapshot(snapshot),
    // Without finalizers a deleted snapshot is simply gone: its content learns of it here (or at the next resync).
    deleted: async (snapshot) => {
      if (snapshot.status?.boundVolumeSnapshotContentName) contents.requeue(snapshot.status.boundVolumeSnapshotContentName)
    },
    log: opts.log,
  })
  const contents: Informer = startInformer<VolumeSnapshotContent>({
    name: 'snapshot-contents',
    kubeconfig: opts.kubeconfig,
    path: `/apis/${GROUP}/${VERSION}/volumesnapshotcontents`,
    list: () => custom.listClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents'}),
    reconcile: (content) => reconcileContent(content),
    deleted: (content) => contentDeleted(content),
    log: opts.log,
  })
  return syncAll([snapshots, contents])

  /** Takes the snapshot a new VolumeSnapshot asks for, or binds it to the content it names. */
  async function reconcileSnapshot(snapshot: VolumeSnapshot): Promise<void> {
    if (snapshot.metadata.deletionTimestamp) return
    if (snapshot.status?.readyToUse && snapshot.status.boundVolumeSnapshotContentName) return
    const className = await snapshotClassOf(snapshot)
    if (className === null) return // another driver's snapshot
    if (className === undefined) return setSnapshotError(snapshot, `no VolumeSnapshotClass given and no default class for driver ${DRIVER}`)
    const cls = await readClass(className)
    if (!cls) return setSnapshotError(snapshot, `VolumeSnapshotClass ${className} not found`)
    if (cls.driver !== DRIVER) return

    const {persistentVolumeClaimName: claimName, volumeSnapshotContentName} = snapshot.spec.source
    if (volumeSnapshotContentName) return bindPreProvisioned(snapshot, volumeSnapshotContentName)
    if (!claimName) return setSnapshotError(snapshot, 'spec.source names neither a claim nor a content')

    const contentName = `snapcontent-${snapshot.metadata.uid}`
    let content = await readContent(contentName)
    if (!content) {
      const taken = await takeSnapshot(snapshot, claimName, contentName)
      if (!taken) return
      content = await createContent(snapshot, cls, contentName, taken)
    }
    await setSnapshotStatusFrom(snapshot, content)
  }

  /**
   * Copies the claim's volume into the snapshot directory. Returns undefined
   * (after recording why in the snapshot's status) when the claim cannot be
   * snapshotted yet; the resync tries again, as the upstream controller does.
   */
  async function takeSnapshot(snapshot: VolumeSnapshot, claimName: string, handle: string): Promise<{volume: string; restoreSize: string; creationTime: string} | undefined> {
    const {namespace} = snapshot.metadata
    let claim
    try {
      claim = await core.readNamespacedPersistentVolumeClaim({namespace, name: claimName})
    } catch (err) {
      if (statusOf(err) !== 404) throw err
      await setSnapshotError(snapshot, `PersistentVolumeClaim ${namespace}/${claimName} not found`)
      return undefined
    }
    const pvName = claim.spec?.volumeName
    if (claim.status?.phase !== 'Bound' || !pvName) {
      await setSnapshotError(snapshot, `PersistentVolumeClaim ${namespace}/${claimName} is not bound to a volume yet`)
      return undefined
    }
    const pv = await core.readPersistentVolume({name: pvName})
    if (pv.metadata?.annotations?.[ANN_PROVISIONED_BY] !== DRIVER) {
      await setSnapshotError(snapshot, `volume ${pvName} of claim ${namespace}/${claimName} was not provisioned by ${DRIVER}`)
      return undefined
    }
    const creationTime = new Date().toISOString()
    await populateDir(snapshotDir(opts.disk, handle), volumeDir(opts.disk, pvName))
    const info = {sourceVolume: pvName, restoreSize: pv.spec?.capacity?.storage ?? claim.status?.capacity?.storage ?? '0', creationTime}
    await writeSnapshotInfo(opts.disk, handle, info)
    opts.log(`snapshotter: ${namespace}/${snapshot.metadata.name}: copied ${pvName} (claim ${claimName}) → ${handle}`)
    return {volume: pvName, restoreSize: info.restoreSize, creationTime}
  }

  /** Creates the content of a snapshot just taken, bound to the snapshot, with its status filled in. */
  async function createContent(snapshot: VolumeSnapshot, cls: VolumeSnapshotClass, name: string, taken: {volume: string; restoreSize: string; creationTime: string}): Promise<VolumeSnapshotContent> {
    const body: VolumeSnapshotContent = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'VolumeSnapshotContent',
      metadata: {name},
      spec: {
        volumeSnapshotRef: {apiVersion: `${GROUP}/${VERSION}`, kind: 'VolumeSnapshot', name: snapshot.metadata.name, namespace: snapshot.metadata.namespace, uid: snapshot.metadata.uid},
        source: {volumeHandle: taken.volume},
        driver: DRIVER,
        deletionPolicy: cls.deletionPolicy,
        volumeSnapshotClassName: cls.metadata.name,
        sourceVolumeMode: 'Filesystem',
      },
    }
    let created: VolumeSnapshotContent
    try {
      created = await custom.createClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', body}) as VolumeSnapshotContent
    } catch (err) {
      if (statusOf(err) !== 409) throw err
      created = (await readContent(name))!
    }
    // Status is a subresource: the create above dropped any status we sent.
    created.status = {
      snapshotHandle: name,
      readyToUse: true,
      restoreSize: parseQuantity(taken.restoreSize),
      creationTime: Date.parse(taken.creationTime) * 1e6,
    }
    return await custom.replaceClusterCustomObjectStatus({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name, body: created}) as VolumeSnapshotContent
  }

  /** Binds a snapshot to an existing content that names it back, as for a pre-provisioned snapshot. */
  async function bindPreProvisioned(snapshot: VolumeSnapshot, contentName: string): Promise<void> {
    const content = await readContent(contentName)
    if (!content) return setSnapshotError(snapshot, `VolumeSnapshotContent ${contentName} not found`)
    const ref = content.spec.volumeSnapshotRef
    if (ref.name !== snapshot.metadata.name || ref.namespace !== snapshot.metadata.namespace || (ref.uid && ref.uid !== snapshot.metadata.uid)) {
      return setSnapshotError(snapshot, `VolumeSnapshotContent ${contentName} is bound to ${ref.namespace}/${ref.name}, not to this snapshot`)
    }
    if (!ref.uid) {
      // Binding completes on the content side by recording the snapshot's uid.
      content.spec.volumeSnapshotRef = {...ref, uid: snapshot.metadata.uid}
      await custom.replaceClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name: contentName, body: content})
    }
    // Its status is the content controller's to fill; we follow when it has.
    if (content.status?.readyToUse) await setSnapshotStatusFrom(snapshot, content)
  }

  /** Sets a snapshot's status from its bound content's, clearing any error. */
  async function setSnapshotStatusFrom(snapshot: VolumeSnapshot, content: VolumeSnapshotContent): Promise<void> {
    const status = content.status ?? {}
    const handle = status.snapshotHandle ?? content.spec.source.snapshotHandle
    const info = handle ? await readSnapshotInfo(opts.disk, handle) : undefined
    await updateSnapshotStatus(snapshot, {
      boundVolumeSnapshotContentName: content.metadata.name,
      readyToUse: status.readyToUse ?? false,
      // The volume's size as a quantity ("1Gi"), as the upstream controller turns size_bytes into one.
      ...(info?.restoreSize ? {restoreSize: info.restoreSize} : status.restoreSize !== undefined ? {restoreSize: String(status.restoreSize)} : {}),
      ...(status.creationTime !== undefined ? {creationTime: info?.creationTime ?? new Date(status.creationTime / 1e6).toISOString()} : {}),
    })
    opts.log(`snapshotter: ${keyOf(snapshot)} bound to ${content.metadata.name}, readyToUse=${status.readyToUse ?? false}`)
  }

  /** Records why a snapshot is not ready (unless that is already recorded). */
  async function setSnapshotError(snapshot: VolumeSnapshot, message: string): Promise<void> {
    if (snapshot.status?.error?.message === message && snapshot.status.readyToUse === false) return
    opts.log(`snapshotter: ${keyOf(snapshot)}: ${message}`)
    await updateSnapshotStatus(snapshot, {...snapshot.status, readyToUse: false, error: {message, time: new Date().toISOString()}})
  }

  /** Replaces a snapshot's status through the status subresource, on a fresh copy. */
  async function updateSnapshotStatus(snapshot: VolumeSnapshot, status: NonNullable<VolumeSnapshot['status']>): Promise<void> {
    const {namespace, name} = snapshot.metadata
    const fresh = await custom.getNamespacedCustomObject({group: GROUP, version: VERSION, namespace, plural: 'volumesnapshots', name}) as VolumeSnapshot
    if (fresh.metadata.uid !== snapshot.metadata.uid) return // deleted and re-created: the new one gets its own turn
    fresh.status = status
    await custom.replaceNamespacedCustomObjectStatus({group: GROUP, version: VERSION, namespace, plural: 'volumesnapshots', name, body: fresh})
  }

  /**
   * Returns the class a snapshot uses: its own, or the default class for our
   * driver (written into its spec, as the upstream controller does); null when
   * the snapshot is another driver's, undefined when there is no class to use.
   */
  async function snapshotClassOf(snapshot: VolumeSnapshot): Promise<string | null | undefined> {
    if (snapshot.spec.volumeSnapshotClassName) return snapshot.spec.volumeSnapshotClassName
    if (snapshot.spec.source.persistentVolumeClaimName) {
      // The source volume tells which driver is asked; only ours are hostPath volumes we provisioned.
      try {
        const claim = await core.readNamespacedPersistentVolumeClaim({namespace: snapshot.metadata.namespace, name: snapshot.spec.source.persistentVolumeClaimName})
        if (claim.spec?.volumeName) {
          const pv = await core.readPersistentVolume({name: claim.spec.volumeName})
          if (pv.metadata?.annotations?.[ANN_PROVISIONED_BY] !== DRIVER) return null
        }
      } catch (err) {
        if (statusOf(err) !== 404) throw err
      }
    }
    const classes = await custom.listClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotclasses'}) as {items: VolumeSnapshotClass[]}
    const defaults = classes.items.filter((c) => c.driver === DRIVER && c.metadata.annotations?.[ANN_DEFAULT_CLASS] === 'true')
    if (defaults.length !== 1) return undefined
    const className = defaults[0]!.metadata.name
    const fresh = await custom.getNamespacedCustomObject({group: GROUP, version: VERSION, namespace: snapshot.metadata.namespace, plural: 'volumesnapshots', name: snapshot.metadata.name}) as VolumeSnapshot
    if (fresh.metadata.uid !== snapshot.metadata.uid) return null
    fresh.spec.volumeSnapshotClassName = className
    await custom.replaceNamespacedCustomObject({group: GROUP, version: VERSION, namespace: snapshot.metadata.namespace, plural: 'volumesnapshots', name: snapshot.metadata.name, body: fresh})
    return className
  }

  /**
   * Marks a pre-provisioned content ready when its snapshot exists on disk, and
   * deletes a bound content whose snapshot is gone, with its data when its
   * policy is Delete.
   */
  async function reconcileContent(content: VolumeSnapshotContent): Promise<void> {
    if (content.spec.driver !== DRIVER || content.metadata.deletionTimestamp) return
    const handle = content.status?.snapshotHandle ?? content.spec.source.snapshotHandle
    if (content.spec.source.snapshotHandle && !content.status?.readyToUse) {
      const info = await readSnapshotInfo(opts.disk, content.spec.source.snapshotHandle)
      const status: VolumeSnapshotContent['status'] = info
        ? {snapshotHandle: content.spec.source.snapshotHandle, readyToUse: true, restoreSize: parseQuantity(info.restoreSize), creationTime: Date.parse(info.creationTime) * 1e6}
        : {readyToUse: false, error: {message: `snapshot ${content.spec.source.snapshotHandle} does not exist`, time: new Date().toISOString()}}
      if (info || content.status?.error?.message !== status.error?.message) {
        const fresh = (await readContent(content.metadata.name))
        if (!fresh) return
        fresh.status = status
        await custom.replaceClusterCustomObjectStatus({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name: content.metadata.name, body: fresh})
      }
      if (info && content.spec.volumeSnapshotRef.namespace && content.spec.volumeSnapshotRef.name) {
        snapshots.requeue(`${content.spec.volumeSnapshotRef.namespace}/${content.spec.volumeSnapshotRef.name}`)
      }
      return
    }
    const ref = content.spec.volumeSnapshotRef
    if (!ref.uid || !ref.namespace || !ref.name) return // not bound yet: a pre-provisioned content waits for its snapshot
    let snapshot: VolumeSnapshot | undefined
    try {
      snapshot = await custom.getNamespacedCustomObject({group: GROUP, version: VERSION, namespace: ref.namespace, plural: 'volumesnapshots', name: ref.name}) as VolumeSnapshot
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
    if (snapshot && snapshot.metadata.uid === ref.uid) return
    if (content.spec.deletionPolicy !== 'Delete') return // Retain: the content outlives its snapshot
    if (handle) await removeSnapshot(opts.disk, handle)
    try {
      await custom.deleteClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name: content.metadata.name})
    } catch (err) {
      if (statusOf(err) !== 404) throw err
    }
    opts.log(`snapshot-contents: ${content.metadata.name}: snapshot ${ref.namespace}/${ref.name} is gone: deleted`)
  }

  /** Removes the data of a content deleted directly, when its policy says so. */
  async function contentDeleted(content: VolumeSnapshotContent): Promise<void> {
    if (content.spec.driver !== DRIVER || content.spec.deletionPolicy !== 'Delete') return
    const handle = content.status?.snapshotHandle ?? content.spec.source.snapshotHandle
    if (handle) await removeSnapshot(opts.disk, handle)
  }

  async function readContent(name: string): Promise<VolumeSnapshotContent | undefined> {
    try {
      return await custom.getClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotcontents', name}) as VolumeSnapshotContent
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }

  async function readClass(name: string): Promise<VolumeSnapshotClass | undefined> {
    try {
      return await custom.getClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotclasses', name}) as VolumeSnapshotClass
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }
}

/** Creates the snapshot CRDs (existing ones are kept, their `enum`s intact) and waits until the apiserver serves them. */
async function installCrds(kubeconfig: KubeConfig): Promise<void> {
  const crds = yaml.loadAll(await readFile(CRDS_FILE, 'utf8')).filter(Boolean) as KubernetesObject[]
  for (const crd of crds) await ensureCrd(kubeconfig, crd)
}

/** Creates the default VolumeSnapshotClass unless it exists. */
async function ensureSnapshotClass(custom: CustomObjectsApi): Promise<void> {
  const body = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'VolumeSnapshotClass',
    metadata: {name: SNAPSHOT_CLASS, annotations: {[ANN_DEFAULT_CLASS]: 'true'}},
    driver: DRIVER,
    deletionPolicy: 'Delete',
  }
  // A CRD just established can still answer 404 for a moment while discovery catches up.
  for (let attempt = 0; ; attempt++) {
    try {
      await custom.createClusterCustomObject({group: GROUP, version: VERSION, plural: 'volumesnapshotclasses', body})
      return
    } catch (err) {
      if (statusOf(err) === 409) return
      if (statusOf(err) !== 404 || attempt >= 50) throw new Error(`cannot create VolumeSnapshotClass ${SNAPSHOT_CLASS}: ${describe(err)}`, {cause: err})
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
