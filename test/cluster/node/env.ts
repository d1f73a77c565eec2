/**
 * A container's environment as its exec'd commands see it: literal values,
 * the downward API fields commands commonly use, keys of ConfigMaps and
 * Secrets (`valueFrom`, `envFrom`), and `$(VAR)` references to earlier variables.
 */
import type {ApiClient} from './api.js'
import {isApiError} from './api.js'
import {VolumeNotReady} from './volumes.js'
import type {ConfigMap, Container, Pod, Secret} from './types.js'

/** Returns the environment of `container` in `pod`, read once at pod start. */
export async function containerEnv(api: ApiClient, pod: Pod, container: Container, podIP: string): Promise<Record<string, string>> {
  const ns = pod.metadata.namespace ?? 'default'
  const env: Record<string, string> = {HOSTNAME: pod.spec.hostname ?? pod.metadata.name}
  const objects = new Map<string, Record<string, string> | undefined>()
  const dataOf = async (kind: 'configmaps' | 'secrets', name: string, optional: boolean | undefined) => {
    const key = `${kind}/${name}`
    if (!objects.has(key)) objects.set(key, await readData(api, ns, kind, name))
    const data = objects.get(key)
    if (!data && !optional) throw new VolumeNotReady(`${kind === 'secrets' ? 'Secret' : 'ConfigMap'} ${name} for the environment of ${container.name} not found`)
    return data ?? {}
  }

  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef
    if (!ref) continue
    const data = await dataOf(source.configMapRef ? 'configmaps' : 'secrets', ref.name, ref.optional)
    for (const [k, v] of Object.entries(data)) env[`${source.prefix ?? ''}${k}`] = v
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom
    if (variable.value !== undefined) {
      env[variable.name] = expand(variable.value, env)
    } else if (from?.fieldRef) {
      const value = fieldValue(pod, from.fieldRef.fieldPath, podIP)
      if (value !== undefined) env[variable.name] = value
    } else if (from?.configMapKeyRef || from?.secretKeyRef) {
      const ref = (from.configMapKeyRef ?? from.secretKeyRef)!
      const data = await dataOf(from.configMapKeyRef ? 'configmaps' : 'secrets', ref.name, ref.optional)
      const value = data[ref.key]
      if (value !== undefined) env[variable.name] = value
      else if (!ref.optional) throw new VolumeNotReady(`key ${ref.key} of ${ref.name} for variable ${variable.name} not found`)
    }
  }
  return env
}

/** Reads a ConfigMap's data or a Secret's decoded data; undefined when it does not exist. */
async function readData(api: ApiClient, ns: string, kind: 'configmaps' | 'secrets', name: string): Promise<Record<string, string> | undefined> {
  try {
    if (kind === 'configmaps') return (await api.get<ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${name}`)).data ?? {}
    const secret = await api.get<Secret>(`/api/v1/namespaces/${ns}/secrets/${name}`)
    return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
  } catch (err) {
    if (isApiError(err, 404)) return undefined
    throw err
  }
}

/** The downward API fields a kubelet resolves for env vars. */
function fieldValue(pod: Pod, fieldPath: string, podIP: string): string | undefined {
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath)
  if (labelOrAnnotation) return pod.metadata[labelOrAnnotation[1] as 'labels' | 'annotations']?.[labelOrAnnotation[2]!]
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.nodeName': pod.spec.nodeName,
    'status.podIP': podIP,
    'status.hostIP': '127.0.0.1',
  }
  return fields[fieldPath]
}

/** Expands `$(NAME)` from the variables defined so far; `$$` escapes, unknown names stay as written. */
export function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$'
    return name !== undefined && env[name] !== undefined ? env[name]! : match
  })
}
