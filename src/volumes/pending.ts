/**
 * Why a claim stays Pending, told within seconds from its events (as
 * `kubectl describe pvc` shows them), not after a timeout: a missing
 * StorageClass after a restore into another cluster is the usual cause.
 */
import type {KubeApi} from '../cluster/api.js'

/** An Event as far as we read it. */
interface ClaimEvent {
  type?: string
  reason?: string
  message?: string
  lastTimestamp?: string | null
  eventTime?: string | null
  count?: number
}

/** Warning reasons that mean a claim will not bind by itself (the PV controller's and external provisioners'). */
const STUCK_REASONS = new Set(['ProvisioningFailed', 'ClaimLost', 'VolumeMismatch'])

/** Why a claim is Pending: the sentence with its fix, and whether waiting can help. */
export interface PendingReason {
  message: string
  /**
   * Waiting cannot help (a StorageClass that does not exist): report it now.
   * Otherwise a provisioner may still succeed on a retry (a throttled cloud
   * API): report it when the wait ends.
   */
  permanent: boolean
}

/**
 * The sentence that says why claim `claim` is Pending and what fixes it, from
 * its newest Warning event that means it is not binding; undefined when there
 * is none. Pure.
 */
export function describePendingClaim(claim: string, events: ClaimEvent[]): PendingReason | undefined {
  const stuck = events
    .filter((e) => e.type === 'Warning' && STUCK_REASONS.has(e.reason ?? ''))
    .sort((a, b) => timeOf(b) - timeOf(a))[0]
  if (!stuck) return undefined
  const message = (stuck.message ?? stuck.reason ?? '').replace(/\.$/, '')
  const missingClass = /storageclass\.storage\.k8s\.io "([^"]+)" not found/.exec(message)?.[1]
  const fix = missingClass
    ? `map it with --map-storage-class ${missingClass}=NEW (kubectl get storageclass lists this cluster's classes)`
    : `see kubectl describe pvc ${claim}, fix its StorageClass or provisioner, then restore again`
  return {message: `claim ${claim} is Pending: ${message}; ${fix}`, permanent: missingClass !== undefined}
}

function timeOf(e: ClaimEvent): number {
  return Date.parse(e.lastTimestamp ?? e.eventTime ?? '') || 0
}

/** Reads claim `claim`'s events and returns {@link describePendingClaim} of them (undefined when they cannot be read). */
export async function pendingClaimReason(api: KubeApi, namespace: string, claim: string): Promise<PendingReason | undefined> {
  const fieldSelector = `involvedObject.kind=PersistentVolumeClaim,involvedObject.name=${claim}`
  try {
    const events = await api.get<{items?: ClaimEvent[]}>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {query: {fieldSelector}, retries: 1})
    return describePendingClaim(claim, events.items ?? [])
  } catch {
    // Events are a courtesy: an identity that may not read them waits for the timeout as before.
    return undefined
  }
}
