/**
 * Storage for the test cluster, standing in for a CSI driver and the snapshot
 * controller a real cluster would run: a default StorageClass whose claims get
 * hostPath volumes under a state directory, and a default VolumeSnapshotClass
 * whose snapshots are copies of those directories. It runs in-process and talks
 * to the apiserver with an admin kubeconfig, as an out-of-cluster controller.
 */
import {KubeConfig} from '@kubernetes/client-node'
import {prepareDisk, volumeDir} from './disk.js'
import {DRIVER, startProvisioner, STORAGE_CLASS} from './provisioner.js'
import {SNAPSHOT_CLASS, startSnapshotController} from './snapshots.js'

/** Running storage: the names tests need and the way to find a volume's data. */
export interface Storage {
  /** The default StorageClass (`standard`, unless started with another name). */
  storageClass: string
  /** The default VolumeSnapshotClass (`standard-snapshot`). */
  snapshotClass: string
  /** The provisioner and snapshot driver name (`hostpath.kubesnap.test`). */
  driver: string
  /** Returns the directory holding the data of PersistentVolume `pvName`. */
  volumePath(pvName: string): string
  stop(): Promise<void>
}

/** Options for {@link startStorage}. */
export interface StorageOptions {
  /** State directory: volumes go to `<dir>/volumes`, snapshots to `<dir>/snapshots`. */
  dir: string
  /** Path of an admin kubeconfig. */
  kubeconfig: string
  /**
   * The name of the default StorageClass (default `standard`): a second test
   * cluster serves `fast` and no `standard`, as a new cluster after a disaster may.
   */
  storageClass?: string
  log?: (line: string) => void
}

/**
 * Installs the StorageClass, the snapshot CRDs and VolumeSnapshotClass, and
 * starts the provisioner and snapshot controller; resolves once both have
 * seen the cluster's current claims, volumes and snapshots.
 */
export async function startStorage(opts: StorageOptions): Promise<Storage> {
  const kubeconfig = new KubeConfig()
  kubeconfig.loadFromFile(opts.kubeconfig)
  const log = opts.log ?? (() => {})
  const disk = await prepareDisk(opts.dir)
  const storageClass = opts.storageClass ?? STORAGE_CLASS
  const provisioner = await startProvisioner({kubeconfig, disk, storageClass, log})
  let snapshots
  try {
    snapshots = await startSnapshotController({kubeconfig, disk, log})
  } catch (err) {
    await provisioner.stop()
    throw err
  }
  return {
    storageClass,
    snapshotClass: SNAPSHOT_CLASS,
    driver: DRIVER,
    volumePath: (pvName) => volumeDir(disk, pvName),
    async stop() {
      await Promise.all([provisioner.stop(), snapshots.stop()])
    },
  }
}
