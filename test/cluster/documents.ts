/**
 * Loading a set of Kubernetes documents into a namespace, as a fixture does:
 * CRDs cluster-wide first (shared by every namespace, so created once), then
 * every other document in the namespace.
 *
 * Documents are POSTed as they are, not through the client's typed models:
 * @kubernetes/client-node 1.4.0 serializes a plain object by its TypeScript
 * field names, so JSON names that differ (`x-kubernetes-preserve-unknown-fields`,
 * a schema's `default` and `enum`) are silently dropped, even through
 * `KubernetesObjectApi.create` for built-in kinds such as CRDs.
 */
import https from 'node:https'
import {setTimeout as sleep} from 'node:timers/promises'
import {
  ApiException,
  ApiextensionsV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node'
import {waitFor} from './wait.js'

/** Creates `documents` as admin: CRDs cluster-wide (kept if present, waited on until Established), the rest in `namespace`. */
export async function applyDocuments(admin: KubeConfig, namespace: string, documents: readonly KubernetesObject[]): Promise<void> {
  const crds = documents.filter(isCrd)
  const namespaced = documents.filter((doc) => !isCrd(doc))
  await Promise.all(crds.map((crd) => ensureCrd(admin, crd)))
  // One client for all documents: it caches discovery per apiVersion.
  const objects = admin.makeApiClient(Discovery)
  for (const doc of namespaced) {
    // Deleting a namespace full of pods takes minutes on a loaded machine: wait that long for its node port.
    const deadline = Date.now() + 240_000
    for (;;) {
      try {
        await createDocument(admin, objects, {...doc, metadata: {...doc.metadata, namespace}})
        break
      } catch (err) {
        // A fixture's fixed nodePort is cluster-wide: while an earlier copy of the
        // fixture is still being deleted, wait for it to free the port.
        if (/port is already allocated/.test(describe(err)) && Date.now() < deadline) {
          await sleep(1000)
          continue
        }
        throw new Error(`cannot create ${doc.kind} ${doc.metadata?.name ?? '?'} in ${namespace}: ${describe(err)}`, {cause: err})
      }
    }
  }
}

function isCrd(doc: KubernetesObject): boolean {
  return doc.kind === 'CustomResourceDefinition' && (doc.apiVersion ?? '').startsWith('apiextensions.k8s.io/')
}

/**
 * Creates a CustomResourceDefinition (an existing one is kept) and waits until
 * it is Established. Sent as raw JSON: the typed client drops `enum`.
 */
export async function ensureCrd(admin: KubeConfig, crd: KubernetesObject, timeoutMs = 30_000): Promise<void> {
  const name = crd.metadata?.name
  if (!name) throw new Error('a CustomResourceDefinition in the fixture has no name')
  try {
    await createDocument(admin, admin.makeApiClient(Discovery), crd)
  } catch (err) {
    // Another namespace's fixture (or another test process) made it already: same definition, keep it.
    if (!(err instanceof ApiException && err.code === 409)) throw new Error(`cannot create CRD ${name}: ${describe(err)}`, {cause: err})
  }
  const extensions = admin.makeApiClient(ApiextensionsV1Api)
  await waitFor(`CRD ${name} to be Established`, async () => {
    const current = await extensions.readCustomResourceDefinition({name})
    return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false
  }, {timeoutMs})
}

/** The generic object client's discovery (resource names, scope), cached per apiVersion. */
export class Discovery extends KubernetesObjectApi {
  /** Discovery's entry for a kind, or undefined when the server does not serve it. */
  find(apiVersion: string, kind: string): ReturnType<KubernetesObjectApi['resource']> {
    return this.resource(apiVersion, kind)
  }
}

/**
 * POSTs one document, byte for byte, to the collection discovery names for its
 * kind. Fails with an ApiException carrying the HTTP status, as the typed calls do.
 */
export async function createDocument(kc: KubeConfig, discovery: Discovery, doc: KubernetesObject): Promise<KubernetesObject> {
  const {apiVersion, kind} = doc
  if (!apiVersion || !kind) throw new Error(`document ${doc.metadata?.name ?? '?'} has no apiVersion or kind`)
  const resource = await discovery.find(apiVersion, kind)
  if (!resource) throw new Error(`the server does not serve ${kind} in ${apiVersion}`)
  const namespace = doc.metadata?.namespace
  if (resource.namespaced && !namespace) throw new Error(`${kind} ${doc.metadata?.name ?? '?'} is namespaced but has no namespace`)
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
  const collection = resource.namespaced ? `${base}/namespaces/${encodeURIComponent(namespace!)}/${resource.name}` : `${base}/${resource.name}`
  const {status, body} = await request(kc, 'POST', collection, JSON.stringify(doc))
  if (status < 200 || status >= 300) throw new ApiException(status, `POST ${collection} failed`, body, {})
  return JSON.parse(body) as KubernetesObject
}

async function request(kc: KubeConfig, method: string, path: string, body: string): Promise<{status: number; body: string}> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('the kubeconfig has no current cluster')
  const options: https.RequestOptions = {method, headers: {'content-type': 'application/json', accept: 'application/json'}}
  await kc.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, cluster.server), options, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: text}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** One line for an API error: the Status message when there is one. */
export function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown
    const message = typeof body === 'string' ? statusMessage(body) : (body as {message?: string} | undefined)?.message
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`
  }
  return err instanceof Error ? err.message : String(err)
}

function statusMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as {message?: string}).message
  } catch {
    return body.slice(0, 300) || undefined
  }
}
