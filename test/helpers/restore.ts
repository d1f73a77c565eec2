/**
 * What the restore tests check, as a user would after a disaster: the archive's
 * objects deleted (claims too), then every object back (compared after
 * cleaning), every volume tree as seeded, and the workloads Ready.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {KubernetesObject} from '@kubernetes/client-node'
import * as assert from 'uvu/assert'
import type {FixtureName} from '../../fixtures/index.js'
import {hashTree, writeSeedTree} from '../../fixtures/seed.js'
import {openArchive} from '../../src/archive/index.js'
import type {ObjectEntry} from '../../src/archive/manifest.js'
import {collectionPath, type KubeApi} from '../../src/cluster/index.js'
import {cleanForRestore} from '../../src/resources/clean.js'
import {mapStorageClasses, type StorageClassMap} from '../../src/restore/storage-classes.js'
import {HELPER_LABELS} from '../../src/volumes/helper.js'
import {POD_SECURITY_LEVELS, podSecurityRoleName} from '../cluster/podsecurity.js'
import {waitFor} from '../cluster/wait.js'

/**
 * Objects the test harness made for the namespace-only user: never deleted, so the user can restore.
 * The pod security binding too: without it no pod starts, and the user could not re-create it
 * (binding a ClusterRole needs the `use` it grants).
 */
const HARNESS = new Set([
  'roles.rbac.authorization.k8s.io/kubesnap', 'rolebindings.rbac.authorization.k8s.io/kubesnap', 'serviceaccounts./default',
  ...POD_SECURITY_LEVELS.map((level) => `rolebindings.rbac.authorization.k8s.io/${podSecurityRoleName(level)}`),
])

/** Whether the harness made this object (a disaster in the application leaves it). */
export const isHarness = (entry: ObjectEntry): boolean => HARNESS.has(`${entry.resource}.${entry.group}/${entry.name}`)

/** Each claim of a fixture and the seed tree the harness writes on it. */
export const FIXTURE_CLAIMS: Record<FixtureName, Record<string, string>> = {
  jenkins: {'jenkins-home-jenkins-0': 'jenkins/jenkins-home', 'agent-cache': 'jenkins/agent-cache'},
  softwarefactory: {'zookeeper-data-zookeeper-0': 'softwarefactory/zookeeper-data', 'mariadb-logs-mariadb-0': 'softwarefactory/mariadb-logs'},
  shop: {'data-db-0': 'shop/data', 'web-uploads': 'shop/web-uploads'},
}

export interface ArchivedObject {
  entry: ObjectEntry
  object: KubernetesObject
}

/** The archive's object entries with the objects as stored. */
export async function archivedObjects(path: string): Promise<ArchivedObject[]> {
  const reader = await openArchive(path)
  const out: ArchivedObject[] = []
  for (const entry of reader.manifest.entries) {
    if (entry.type !== 'object') continue
    out.push({entry, object: JSON.parse((await reader.readObject(entry)).toString())})
  }
  return out
}

/** Deletes the archived objects from the namespace (claims too, not the harness's), as a disaster would, and waits until they are gone. */
export async function wipe(admin: KubeApi, ns: string, objects: Array<ObjectEntry | ArchivedObject>, timeoutMs = 120_000): Promise<void> {
  const doomed = objects.map((o) => ('entry' in o ? o.entry : o)).filter((e) => !isHarness(e))
  for (const e of doomed) await admin.delete(`${collectionPath(e, ns)}/${e.name}`, {query: {propagationPolicy: 'Foreground'}}).catch(() => undefined)
  let left = doomed
  await waitFor('the archived objects to be deleted', async () => {
    const gone = await Promise.all(left.map((e) => admin.get(`${collectionPath(e, ns)}/${e.name}`).then(() => false, (err) => err?.statusCode === 404)))
    left = left.filter((_, i) => !gone[i])
    return left.length === 0
  }, {timeoutMs, intervalMs: 250, detail: () => `left: ${left.map((e) => `${e.resource}/${e.name}`).join(', ')}`})
}

/**
 * Compares archived and live objects the way the issue asks: both cleaned.
 * `assignedNodePorts` names Services whose node ports were taken (a copy beside
 * its original): their ports are compared without nodePort. `storageClasses`
 * is the restore's --map-storage-class: the archived objects are mapped too.
 */
export async function assertRestored(admin: KubeApi, objects: ArchivedObject[], from: string, to: string, options: {assignedNodePorts?: string[]; storageClasses?: StorageClassMap} = {}): Promise<void> {
  for (const {entry, object} of objects) {
    const live = await admin.get<KubernetesObject>(`${collectionPath(entry, to)}/${entry.name}`)
    // Copies: the cleaned object shares parts with the archived one, which the caller may reuse.
    const want: any = structuredClone(mapStorageClasses(cleanForRestore(object, entry, {sourceNamespace: from, targetNamespace: to}), entry, options.storageClasses ?? {}))
    const have: any = structuredClone(cleanForRestore(live, entry, {sourceNamespace: to, targetNamespace: to}))
    // Controllers add their own bookkeeping to live objects (not the archive's business).
    for (const o of [want, have]) {
      delete o.metadata?.annotations?.['deployment.kubernetes.io/revision']
      if (o.kind === 'ServiceAccount') delete o.secrets
      if (o.kind === 'Secret' && o.type === 'kubernetes.io/service-account-token') delete o.data
      if (o.kind === 'Service' && options.assignedNodePorts?.includes(entry.name)) for (const p of o.spec?.ports ?? []) delete p.nodePort
    }
    assert.equal(have, want, `${entry.resource}/${entry.name} differs after restore`)
  }
}

/** Every object's resourceVersion in a namespace: proof that nothing was written. */
export async function versions(admin: KubeApi, ns: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const collections = [
    ...['secrets', 'configmaps', 'services', 'serviceaccounts', 'persistentvolumeclaims', 'pods'].map((r) => `/api/v1/namespaces/${ns}/${r}`),
    ...['statefulsets', 'deployments'].map((r) => `/apis/apps/v1/namespaces/${ns}/${r}`),
  ]
  for (const path of collections) {
    const list = await admin.get<any>(path)
    for (const item of list.items) out[`${path.split('/').pop()}/${item.metadata.name}`] = item.metadata.resourceVersion
  }
  return out
}

/** The host directory of a PersistentVolume (hostPath, as the test cluster's provisioner makes them). */
async function pvDir(admin: KubeApi, volumeName: string): Promise<string> {
  const pv = await admin.get<any>(`/api/v1/persistentvolumes/${volumeName}`)
  return pv.spec.hostPath.path
}

/** The host directory of a claim's volume. */
export async function volumeDir(admin: KubeApi, ns: string, claim: string): Promise<string> {
  const pvc = await admin.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`)
  return pvDir(admin, pvc.spec.volumeName)
}

/** Every claim of the namespace and its volume's tree (hashTree: sha256 of each file, modes, links). */
export async function volumeTrees(admin: KubeApi, ns: string): Promise<Record<string, Record<string, string>>> {
  const claims = await admin.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims`)
  const out: Record<string, Record<string, string>> = {}
  for (const claim of claims.items) out[claim.metadata.name] = await hashTree(await pvDir(admin, claim.spec.volumeName))
  return out
}

const seedTrees = new Map<string, Promise<Record<string, string>>>()

/** The tree of seed `key` as writeSeedTree writes it, computed once per process. */
export function seedTree(key: string): Promise<Record<string, string>> {
  let tree = seedTrees.get(key)
  if (!tree) {
    tree = (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kubesnap-seed-'))
      try {
        await writeSeedTree(key, dir)
        return await hashTree(dir)
      } finally {
        await rm(dir, {recursive: true, force: true})
      }
    })()
    seedTrees.set(key, tree)
  }
  return tree
}

/** What volumeTrees gives for a namespace holding exactly the fixture's claims, each as seeded. */
export async function seededTrees(fixture: FixtureName): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {}
  for (const [claim, key] of Object.entries(FIXTURE_CLAIMS[fixture])) out[claim] = await seedTree(key)
  return out
}

/** `kubectl get statefulsets,deployments` as `Kind/name ready/wanted`, sorted. */
export async function workloadReadiness(admin: KubeApi, ns: string): Promise<string[]> {
  const out: string[] = []
  for (const [kind, resource] of [['StatefulSet', 'statefulsets'], ['Deployment', 'deployments']]) {
    const list = await admin.get<any>(`/apis/apps/v1/namespaces/${ns}/${resource}`)
    for (const w of list.items) out.push(`${kind}/${w.metadata.name} ${w.status?.readyReplicas ?? 0}/${w.spec.replicas}`)
  }
  return out.sort()
}

/** The names of kubesnap's helper pods in a namespace (selected by HELPER_LABELS, as `kubectl get pods -l` would). */
export async function helperPods(admin: KubeApi, ns: string): Promise<string[]> {
  const labelSelector = Object.entries(HELPER_LABELS).map(([k, v]) => `${k}=${v}`).join(',')
  const list = await admin.get<any>(`/api/v1/namespaces/${ns}/pods`, {query: {labelSelector}})
  return list.items.map((p: any) => p.metadata.name)
}
