/**
 * The labels kubesnap puts on what it creates in a cluster (helper pods,
 * VolumeSnapshots, the printed Role), in one place: restore finds its own
 * VolumeSnapshots by them.
 */

/** On everything kubesnap creates. */
export const MANAGED_BY = {'app.kubernetes.io/managed-by': 'kubesnap'} as const

/** On a VolumeSnapshot: the number of the snapshot that took it. */
export const SNAPSHOT_NUMBER_LABEL = 'kubesnap.io/snapshot'

/** On kubesnap's helper pods, beside MANAGED_BY: `kubectl delete pod -l app.kubernetes.io/component=kubesnap-helper` cleans up after a killed run. */
export const HELPER_COMPONENT = {'app.kubernetes.io/component': 'kubesnap-helper'} as const

/** Whether an object's labels say it is one of kubesnap's helper pods (never archived, never restored). */
export function isKubesnapHelper(labels: Record<string, string> | undefined): boolean {
  return isManagedByKubesnap(labels) && labels?.['app.kubernetes.io/component'] === HELPER_COMPONENT['app.kubernetes.io/component']
}

/** Whether an object's labels say kubesnap made it. */
export function isManagedByKubesnap(labels: Record<string, string> | undefined): boolean {
  return labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by']
}
