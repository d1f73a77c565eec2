/**
 * StorageClass mapping for restores into another cluster (`--map-storage-class
 * OLD=NEW`, a plan's `restore.storageClassMap`): Velero's change-storage-class,
 * as small pure functions. Claims and StatefulSet volumeClaimTemplates follow
 * the map; everything else is left as it is.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import {EXIT, KubesnapError} from '../errors.js'

/** OLD class name → NEW class name. */
export type StorageClassMap = Record<string, string>

/** The legacy annotation a claim may name its class by instead of spec.storageClassName. */
export const BETA_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class'

/** A StorageClass name: a DNS subdomain. */
const CLASS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/**
 * Parses `--map-storage-class` values (`OLD=NEW`, repeatable, comma-separated
 * lists too) into a map; a malformed value or an OLD given twice with two NEWs
 * is a usage error (exit 2) naming it.
 */
export function parseStorageClassMap(values: readonly string[], flag = '--map-storage-class'): StorageClassMap {
  const map: StorageClassMap = {}
  for (const value of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
    const match = /^([^=]+)=([^=]+)$/.exec(value)
    const [from, to] = match ? [match[1].trim(), match[2].trim()] : []
    if (!from || !to || !CLASS_NAME.test(from) || !CLASS_NAME.test(to)) {
      throw new KubesnapError(`${flag} ${JSON.stringify(value)} is not OLD=NEW with two StorageClass names; write e.g. ${flag} standard=fast.`, {exit: EXIT.usage})
    }
    if (map[from] !== undefined && map[from] !== to) {
      throw new KubesnapError(`${flag} maps ${from} twice (to ${map[from]} and to ${to}); give one NEW class per OLD class.`, {exit: EXIT.usage})
    }
    map[from] = to
  }
  return map
}

type Raw = KubernetesObject & Record<string, any>

/** Returns the claim spec (and its legacy annotation) with its class mapped; the same object when nothing changes. */
function mapClaim<T extends Raw>(claim: T, map: StorageClassMap): T {
  const name = claim.spec?.storageClassName
  const annotated = claim.metadata?.annotations?.[BETA_CLASS_ANNOTATION]
  const mapped = typeof name === 'string' && map[name] !== undefined
  const mappedAnnotation = typeof annotated === 'string' && map[annotated] !== undefined
  if (!mapped && !mappedAnnotation) return claim
  let out: Raw = claim
  if (mapped) out = {...out, spec: {...out.spec, storageClassName: map[name]}}
  if (mappedAnnotation) out = {...out, metadata: {...out.metadata, annotations: {...out.metadata?.annotations, [BETA_CLASS_ANNOTATION]: map[annotated]}}}
  return out as T
}

/**
 * Returns the object with every StorageClass name the map knows replaced: a
 * PersistentVolumeClaim's `spec.storageClassName` (and the legacy
 * `volume.beta.kubernetes.io/storage-class` annotation), a StatefulSet's
 * `spec.volumeClaimTemplates`. Other objects, and names the map does not
 * know, are returned unchanged. Pure: the input is not modified.
 */
export function mapStorageClasses(obj: KubernetesObject, type: {group: string; resource: string}, map: StorageClassMap): KubernetesObject {
  if (Object.keys(map).length === 0) return obj
  const raw = obj as Raw
  if (type.group === '' && type.resource === 'persistentvolumeclaims') return mapClaim(raw, map)
  if (type.group === 'apps' && type.resource === 'statefulsets' && Array.isArray(raw.spec?.volumeClaimTemplates)) {
    const templates = raw.spec.volumeClaimTemplates.map((t: Raw) => mapClaim(t, map))
    if (templates.every((t: Raw, i: number) => t === raw.spec.volumeClaimTemplates[i])) return obj
    return {...raw, spec: {...raw.spec, volumeClaimTemplates: templates}} as KubernetesObject
  }
  return obj
}

/** A StorageClass an object asks for, and where (for messages: `claim data`, `StatefulSet db's template data`). */
export interface ClassUse {
  storageClass: string
  where: string
}

/**
 * The StorageClasses an object asks for by name: a claim's, each of a
 * StatefulSet's volumeClaimTemplates'. A claim without a class (the cluster's
 * default) asks for none; `""` (no dynamic provisioning) is not a class either.
 */
export function storageClassUses(obj: KubernetesObject, type: {group: string; resource: string}): ClassUse[] {
  const raw = obj as Raw
  const classOf = (claim: Raw): string | undefined => {
    const name = claim.spec?.storageClassName ?? claim.metadata?.annotations?.[BETA_CLASS_ANNOTATION]
    return typeof name === 'string' && name !== '' ? name : undefined
  }
  if (type.group === '' && type.resource === 'persistentvolumeclaims') {
    const storageClass = classOf(raw)
    return storageClass ? [{storageClass, where: `claim ${raw.metadata?.name}`}] : []
  }
  if (type.group === 'apps' && type.resource === 'statefulsets') {
    return (raw.spec?.volumeClaimTemplates ?? []).flatMap((t: Raw) => {
      const storageClass = classOf(t)
      return storageClass ? [{storageClass, where: `StatefulSet ${raw.metadata?.name}'s volumeClaimTemplate ${t.metadata?.name}`}] : []
    })
  }
  return []
}
