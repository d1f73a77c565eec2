/**
 * Turns an object as the server returned it into one that can be created again:
 * small pure functions, one generic and one per kind that needs more (the
 * shape of Velero's restore item actions).
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import {isGeneratedTokenName} from './skip.js'

/** Where the object goes. */
export interface CleanContext {
  /** The namespace the archive was taken from. */
  sourceNamespace: string
  /** The namespace it is restored into (the same unless --to-namespace). */
  targetNamespace: string
  /**
   * restore --volumes csi: the VolumeSnapshot each claim is re-created from, by
   * claim name. Such a claim gets `spec.dataSource` naming it (its old
   * dataSource and dataSourceRef are replaced).
   */
  claimSnapshots?: Record<string, string>
}

/** The API group of VolumeSnapshots, as a claim's dataSource names it. */
export const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io'

/** Server-set metadata a create must not carry. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields', 'ownerReferences'] as const

/** Annotations controllers write for themselves; restoring them would mislead the controller. */
const CONTROLLER_ANNOTATIONS = [
  'deployment.kubernetes.io/revision',
  'pv.kubernetes.io/bind-completed',
  'pv.kubernetes.io/bound-by-controller',
  'volume.beta.kubernetes.io/storage-provisioner',
  'volume.kubernetes.io/storage-provisioner',
  'volume.kubernetes.io/selected-node',
  'kubernetes.io/service-account.uid',
]

type Raw = KubernetesObject & Record<string, any>

/** A per-kind step for one group/resource. It sees the object as stored (managedFields included). */
interface CleanAction {
  group: string
  resource: string
  clean(obj: Raw, ctx: CleanContext): Raw
}

/** Removes what the server sets: uid, versions, timestamps, managed fields, owners, status. */
export function cleanMetadata(obj: Raw, ctx: CleanContext): Raw {
  const {status: _status, ...rest} = obj
  const metadata: Record<string, any> = {...obj.metadata}
  for (const key of SERVER_METADATA) delete metadata[key]
  metadata.namespace = ctx.targetNamespace
  if (metadata.annotations) {
    const annotations = {...metadata.annotations}
    for (const key of CONTROLLER_ANNOTATIONS) delete annotations[key]
    metadata.annotations = annotations
    if (Object.keys(annotations).length === 0) delete metadata.annotations
  }
  return {...rest, metadata}
}

/**
 * Whether a Service's nodePort was chosen by the user (kept) or assigned by the
 * server (dropped, or the restore fails when that port is taken): the stored
 * managedFields say who set the field, the last-applied annotation says what
 * kubectl apply asked for.
 */
export function isExplicitNodePort(service: Raw, port: {port?: number; protocol?: string; nodePort?: number}): boolean {
  const key = `k:{"port":${port.port},"protocol":"${port.protocol ?? 'TCP'}"}`
  for (const entry of service.metadata?.managedFields ?? []) {
    if (entry?.fieldsV1?.['f:spec']?.['f:ports']?.[key]?.['f:nodePort'] !== undefined) return true
  }
  const applied = service.metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration']
  if (applied) {
    try {
      const ports: any[] = JSON.parse(applied)?.spec?.ports ?? []
      return ports.some((p) => p.port === port.port && p.nodePort === port.nodePort)
    } catch {
      // An unreadable annotation says nothing: treat the port as assigned.
    }
  }
  return false
}

const ACTIONS: readonly CleanAction[] = [
  {
    group: '', resource: 'services',
    clean(obj) {
      const spec = {...obj.spec}
      // Cluster IPs are allocated per cluster; a headless Service ("None") keeps its meaning.
      if (spec.clusterIP !== 'None') {
        delete spec.clusterIP
        delete spec.clusterIPs
      }
      if (Array.isArray(spec.ports)) {
        spec.ports = spec.ports.map((p: any) => {
          if (p.nodePort === undefined || isExplicitNodePort(obj, p)) return p
          const {nodePort: _nodePort, ...port} = p
          return port
        })
      }
      return {...obj, spec}
    },
  },
  {
    group: '', resource: 'persistentvolumeclaims',
    clean(obj, ctx) {
      // The claim binds anew to a fresh volume; the old PV belongs to the old claim.
      const {volumeName: _volumeName, ...spec} = obj.spec ?? {}
      const snapshot = ctx.claimSnapshots?.[obj.metadata?.name ?? '']
      if (!snapshot) return {...obj, spec}
      // --volumes csi: the new volume is provisioned from the archived VolumeSnapshot.
      const {dataSource: _dataSource, dataSourceRef: _dataSourceRef, ...rest} = spec
      return {...obj, spec: {...rest, dataSource: {apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name: snapshot}}}
    },
  },
  {
    group: '', resource: 'secrets',
    clean(obj) {
      if (obj.type !== 'kubernetes.io/service-account-token') return obj
      // The token controller signs a new token for the new account; an old
      // token is invalid there, and its uid annotation would make the
      // controller delete the Secret.
      const {data: _data, ...secret} = obj
      return secret
    },
  },
  {
    group: '', resource: 'serviceaccounts',
    clean(obj) {
      // References to generated token Secrets: those are not restored and new ones are made.
      const name = obj.metadata?.name ?? ''
      const secrets = (obj.secrets ?? []).filter((s: {name?: string}) => !isGeneratedTokenName(name, s.name ?? ''))
      const {secrets: _secrets, ...account} = obj
      return secrets.length > 0 ? {...account, secrets} : account
    },
  },
  {
    group: 'batch', resource: 'jobs',
    clean(obj) {
      // The selector names the old Job's uid; the Job controller makes a new one.
      const spec = {...obj.spec}
      delete spec.selector
      const labels = {...spec.template?.metadata?.labels}
      delete labels['controller-uid']
      delete labels['batch.kubernetes.io/controller-uid']
      spec.template = {...spec.template, metadata: {...spec.template?.metadata, labels}}
      return {...obj, spec}
    },
  },
  {
    group: '', resource: 'pods',
    clean(obj) {
      // A bare Pod is scheduled anew.
      const {nodeName: _nodeName, ...spec} = obj.spec ?? {}
      return {...obj, spec}
    },
  },
  {
    group: 'rbac.authorization.k8s.io', resource: 'rolebindings',
    clean(obj, ctx) {
      if (ctx.sourceNamespace === ctx.targetNamespace) return obj
      // Service accounts of the old namespace are now those of the new one.
      const subjects = (obj.subjects ?? []).map((s: any) =>
        s.kind === 'ServiceAccount' && s.namespace === ctx.sourceNamespace ? {...s, namespace: ctx.targetNamespace} : s)
      return {...obj, subjects}
    },
  },
]

/** Cleans one archived object of the given type for creation in the target namespace. */
export function cleanForRestore(obj: KubernetesObject, type: {group: string; resource: string}, ctx: CleanContext): KubernetesObject {
  let cleaned = obj as Raw
  // Kind actions first: some read what the metadata cleaner removes (managedFields).
  for (const action of ACTIONS) {
    if (action.group === type.group && action.resource === type.resource) cleaned = action.clean(cleaned, ctx)
  }
  return cleanMetadata(cleaned, ctx)
}
