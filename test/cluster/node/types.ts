/**
 * The parts of Kubernetes objects the node reads, as they arrive in JSON
 * (timestamps are strings). Written out rather than taken from
 * @kubernetes/client-node, whose models type timestamps as `Date`.
 */

export interface ObjectMeta {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  deletionTimestamp?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

export interface KeyToPath {
  key: string
  path: string
  mode?: number
}

export interface Volume {
  name: string
  persistentVolumeClaim?: {claimName: string; readOnly?: boolean}
  emptyDir?: Record<string, unknown>
  hostPath?: {path: string; type?: string}
  configMap?: {name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean}
  secret?: {secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean}
  projected?: unknown
  downwardAPI?: unknown
}

export interface VolumeMount {
  name: string
  mountPath: string
  subPath?: string
  readOnly?: boolean
}

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: {
    fieldRef?: {fieldPath: string}
    secretKeyRef?: {name: string; key: string; optional?: boolean}
    configMapKeyRef?: {name: string; key: string; optional?: boolean}
  }
}

export interface EnvFromSource {
  prefix?: string
  configMapRef?: {name: string; optional?: boolean}
  secretRef?: {name: string; optional?: boolean}
}

/** A container's securityContext (the fields this node enforces). */
export interface SecurityContext {
  runAsUser?: number
  runAsGroup?: number
  runAsNonRoot?: boolean
  privileged?: boolean
  allowPrivilegeEscalation?: boolean
  readOnlyRootFilesystem?: boolean
  capabilities?: {add?: string[]; drop?: string[]}
}

/** A pod's securityContext: defaults for its containers' identity, and volume ownership. */
export interface PodSecurityContext {
  runAsUser?: number
  runAsGroup?: number
  runAsNonRoot?: boolean
  supplementalGroups?: number[]
  fsGroup?: number
  fsGroupChangePolicy?: 'OnRootMismatch' | 'Always'
}

export interface Container {
  name: string
  image?: string
  securityContext?: SecurityContext
  command?: string[]
  args?: string[]
  workingDir?: string
  env?: EnvVar[]
  envFrom?: EnvFromSource[]
  volumeMounts?: VolumeMount[]
}

export interface Pod {
  metadata: ObjectMeta
  spec: {
    nodeName?: string
    containers: Container[]
    initContainers?: Container[]
    volumes?: Volume[]
    hostname?: string
    subdomain?: string
    securityContext?: PodSecurityContext
  }
  status?: {phase?: string; podIP?: string}
}

export interface PersistentVolumeClaim {
  metadata: ObjectMeta
  spec: {volumeName?: string}
  status?: {phase?: string}
}

export interface PersistentVolume {
  metadata: ObjectMeta
  spec: {hostPath?: {path: string}; local?: {path: string}}
}

export interface ConfigMap {
  metadata: ObjectMeta
  data?: Record<string, string>
  binaryData?: Record<string, string>
}

export interface Secret {
  metadata: ObjectMeta
  data?: Record<string, string>
}

export interface ObjectList<T> {
  metadata: {resourceVersion: string}
  items: T[]
}

/** A `metav1.Status` as watch ERROR events and failed requests carry it. */
export interface Status {
  kind?: 'Status'
  status?: string
  message?: string
  reason?: string
  code?: number
}
