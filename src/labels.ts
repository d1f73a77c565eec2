/**
 * The labels kubesnap puts on what it creates in a cluster (helper pods,
 * VolumeSnapshots, the printed Role), in one place: restore finds its own
 * VolumeSnapshots by them.
 */

/** On everything kubesnap creates. */
export const MANAGED_BY = {'app.kubernetes.io/managed-by': 'kubesnap'} as const

/** On a VolumeSnapshot: the number of the snapshot that took it. */
export const SNAPSHOT_NUMBER_LABEL = 'kubesnap.io/snapshot'

/** Whether an object's labels say kubesnap made it. */
export function isManagedByKubesnap(labels: Record<string, string> | undefined): boolean {
  return labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by']
}
