/**
 * Which running container can read a claim's files: pods' volumes name the
 * claim (`persistentVolumeClaim.claimName`), their containers mount those
 * volumes (`mountPath`, `subPath`, `readOnly`). Pure functions over the pod
 * list, so the choice is tested without a cluster.
 */

import {isKubesnapHelper} from '../labels.js'
import type {SecurityContextLike} from './identity.js'

/** The parts of a Pod read here (and by identity.ts), as the API returns them. */
export interface PodLike {
  metadata?: {name?: string; deletionTimestamp?: string | Date; labels?: Record<string, string>}
  spec?: {
    nodeName?: string
    securityContext?: SecurityContextLike
    volumes?: Array<{name: string; persistentVolumeClaim?: {claimName: string; readOnly?: boolean}}>
    containers?: Array<{
      name: string
      image?: string
      securityContext?: SecurityContextLike
      volumeMounts?: Array<{name: string; mountPath: string; subPath?: string; subPathExpr?: string; readOnly?: boolean}>
    }>
  }
  status?: {phase?: string; containerStatuses?: Array<{name: string; state?: {running?: unknown}}>}
}

/** One container's mount of a claim. */
export interface ClaimMount {
  pod: string
  container: string
  image?: string
  nodeName?: string
  mountPath: string
  /** Set when the container sees only a sub-directory of the volume. */
  subPath?: string
  readOnly: boolean
  /** The pod is Running, not being deleted, and this container is running. */
  running: boolean
  /** The pod is a kubesnap helper (this run's or another's): never a source, it may go at any time. */
  helper: boolean
}

/** Every container mount of claim `claimName` in `pods`, in pod order. */
export function mountsOfClaim(pods: PodLike[], claimName: string): ClaimMount[] {
  const mounts: ClaimMount[] = []
  for (const pod of pods) {
    const volumes = (pod.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim?.claimName === claimName)
    if (volumes.length === 0) continue
    const podRunning = pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp
    const helper = isKubesnapHelper(pod.metadata?.labels)
    for (const container of pod.spec?.containers ?? []) {
      const containerRunning = Boolean(pod.status?.containerStatuses?.find((s) => s.name === container.name)?.state?.running)
      for (const mount of container.volumeMounts ?? []) {
        const volume = volumes.find((v) => v.name === mount.name)
        if (!volume) continue
        const subPath = mount.subPath || mount.subPathExpr || undefined
        mounts.push({
          pod: pod.metadata?.name ?? '',
          container: container.name,
          image: container.image,
          nodeName: pod.spec?.nodeName,
          mountPath: mount.mountPath,
          ...(subPath ? {subPath} : {}),
          readOnly: Boolean(mount.readOnly || volume.persistentVolumeClaim?.readOnly),
          running: podRunning && containerRunning,
          helper,
        })
      }
    }
  }
  return mounts
}

/**
 * The mount to stream a claim out of: a running container that sees the whole
 * volume (a `subPath` mount shows only part of it, so it is never chosen).
 * Undefined when there is none: a helper pod must mount the claim.
 */
export function chooseMount(mounts: ClaimMount[]): ClaimMount | undefined {
  return mounts.find((m) => m.running && !m.subPath && !m.helper)
}

/**
 * The node a helper pod must run on to mount the claim beside its current
 * users: a ReadWriteOnce volume can be attached to one node only. Undefined
 * when no pod uses the claim (the scheduler then follows the volume's own
 * node affinity).
 */
export function nodeOfClaimUsers(mounts: ClaimMount[]): string | undefined {
  return mounts.find((m) => m.nodeName)?.nodeName
}
