/**
 * Application dumps and hooks over the exec API. A dump is a user's command
 * run as `sh -c COMMAND` in the first Ready pod of a workload; its stdout goes
 * compressed into the archive entry `dumps/<name>/part-*.dump.gz`, and its
 * load command (`extra.load`) reads the same bytes on stdin at restore. Hooks
 * are commands run the same way before and after the volume copy. Any of
 * them exiting non-zero fails the snapshot with its stderr in the message.
 */
import {PassThrough} from 'node:stream'
import {ArchiveError} from '../archive/errors.js'
import type {StreamEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import type {EntrySink} from '../archive/sink.js'
import type {KubeApi} from '../cluster/api.js'
import {ExecError, execInPod, V4_PROTOCOL, type ExecProtocol} from '../cluster/exec.js'
import {BUILTIN_TYPES, listObjects} from '../cluster/paging.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {formatBytes} from '../format.js'
import {DumpSyntaxError, formatTarget, parseTarget, planDumps, type DumpPlan, type DumpSpec, type DumpTarget, type HookSpec} from './spec.js'

export * from './spec.js'

/** planDumps for a command: a syntax error is a usage error (exit 2), raised before any API call. */
export function dumpPlanOfFlags(flags: Parameters<typeof planDumps>[0]): DumpPlan {
  try {
    return planDumps(flags)
  } catch (err) {
    if (err instanceof DumpSyntaxError) throw new KubesnapError(err.message, {exit: EXIT.usage})
    throw err
  }
}

/** The parts of a Pod read here. */
interface PodObject {
  metadata?: {name?: string; deletionTimestamp?: string}
  spec?: {containers?: Array<{name: string}>}
  status?: {phase?: string; conditions?: Array<{type: string; status: string}>}
}

/** A pod and container a command runs in. */
export interface ExecTarget {
  pod: string
  container: string
}

/** Running, not being deleted, and its Ready condition True. */
export function isPodReady(pod: PodObject): boolean {
  return pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp
    && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
}

interface LabelSelectorObject {
  matchLabels?: Record<string, string>
  matchExpressions?: Array<{key: string; operator: string; values?: string[]}>
}

/** A workload's spec.selector as a `labelSelector` query. */
export function selectorQuery(selector: LabelSelectorObject | undefined): string {
  const terms = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',')
    if (e.operator === 'In') terms.push(`${e.key} in (${values})`)
    else if (e.operator === 'NotIn') terms.push(`${e.key} notin (${values})`)
    else if (e.operator === 'Exists') terms.push(e.key)
    else if (e.operator === 'DoesNotExist') terms.push(`!${e.key}`)
  }
  return terms.join(',')
}

/** The workload a dump or hook names does not exist. */
export class WorkloadNotFoundError extends KubesnapError {}

const notFound = (err: unknown) => (err as {statusCode?: number})?.statusCode === 404

/**
 * The first Ready pod (by name) of the target workload, and the container to
 * run in; undefined when the workload has no Ready pod. Throws a one-sentence
 * error when the workload does not exist or has no such container.
 */
export async function findReadyPod(api: KubeApi, namespace: string, target: DumpTarget): Promise<ExecTarget | undefined> {
  const what = formatTarget({...target, container: undefined})
  let pods: PodObject[]
  try {
    if (target.kind === 'pod') {
      pods = [await api.get<PodObject>(`/api/v1/namespaces/${namespace}/pods/${target.name}`)]
    } else {
      const group = target.kind === 'statefulset' ? 'statefulsets' : 'deployments'
      const workload = await api.get<{spec?: {selector?: LabelSelectorObject}}>(`/apis/apps/v1/namespaces/${namespace}/${group}/${target.name}`)
      const labelSelector = selectorQuery(workload.spec?.selector)
      if (!labelSelector) throw new KubesnapError(`The ${what} in ${namespace} has no pod selector, so kubesnap cannot find its pods.`)
      pods = await listObjects<PodObject>(api, BUILTIN_TYPES.pods, {namespace, labelSelector})
    }
  } catch (err) {
    if (notFound(err)) throw new WorkloadNotFoundError(`There is no ${what} in namespace ${namespace}; name an existing workload (statefulset/NAME, deployment/NAME or pod/NAME).`, {cause: err})
    throw err
  }
  const ready = pods.filter(isPodReady).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
  const pod = ready[0]
  if (!pod) return undefined
  const containers = (pod.spec?.containers ?? []).map((c) => c.name)
  const container = target.container ?? containers[0]
  if (!container || !containers.includes(container)) {
    throw new KubesnapError(`Pod ${pod.metadata!.name} of ${what} has no container ${container ?? ''}; its containers are ${containers.join(', ') || 'none'}.`)
  }
  return {pod: pod.metadata!.name!, container}
}

async function requireReadyPod(api: KubeApi, namespace: string, target: DumpTarget, role: string): Promise<ExecTarget> {
  const found = await findReadyPod(api, namespace, target)
  if (!found) throw new KubesnapError(`The ${role} cannot run: ${formatTarget({...target, container: undefined})} in ${namespace} has no Ready pod; start it, or leave the ${role} out.`)
  return found
}

/**
 * `The command of dump db in pod ns/p, container c, exited with code 3: boom.`
 * → `its command in pod ns/p, container c exited with code 3: boom`. Command
 * lines are never in messages or progress (they may hold credentials): exec
 * labels name the dump or hook instead.
 */
function reasonOf(err: unknown): string {
  return messageOf(err).replace(/^The command (?:.*? )?in (pod \S+), (container \S+), /, 'its command in $1, $2 ').replace(/\.$/, '')
}

/** Runs a hook; throws a one-sentence KubesnapError with the command's stderr when it fails. */
export async function runHook(api: KubeApi, namespace: string, hook: HookSpec, which: 'pre-hook' | 'post-hook', signal?: AbortSignal): Promise<ExecTarget> {
  const at = await requireReadyPod(api, namespace, hook.target, which)
  try {
    const on = formatTarget({...hook.target, container: undefined})
    await execInPod(api, {namespace, pod: at.pod, container: at.container, command: ['sh', '-c', hook.command], signal, label: `of the ${which} on ${on}`})
  } catch (err) {
    throw new KubesnapError(`The ${which} on ${formatTarget({...hook.target, container: undefined})} failed, so no archive was written: ${reasonOf(err)}.`, {cause: err})
  }
  return at
}

/** What a dump entry records in `extra`. */
export interface DumpExtra {
  /** KIND/NAME of the workload, as given. */
  workload: string
  pod: string
  container: string
  command: string
  /** The load command restore runs, when one was given. */
  load?: string
  [key: string]: unknown
}

/**
 * Runs one dump and streams its stdout, gzip-compressed, into the archive.
 * The entry is kept only when the command exited 0 and every byte it wrote
 * arrived; otherwise it is cut off the archive and a one-sentence
 * KubesnapError (with the command's stderr) is thrown.
 */
export async function runDump(api: KubeApi, namespace: string, dump: DumpSpec & {load?: string}, sink: EntrySink, options: {signal?: AbortSignal} = {}): Promise<StreamEntry> {
  const at = await requireReadyPod(api, namespace, dump.target, `dump ${dump.name}`)
  const extra: DumpExtra = {
    workload: `${dump.target.kind}/${dump.target.name}`,
    pod: at.pod,
    container: at.container,
    command: dump.command,
    ...(dump.load ? {load: dump.load} : {}),
  }
  const abort = new AbortController()
  const stop = () => abort.abort()
  options.signal?.addEventListener('abort', stop, {once: true})
  let exec: ReturnType<typeof execInPod> | undefined
  try {
    return await sink.addStream({type: 'dump', name: dump.name, extra}, () => {
      const stdout = new PassThrough({highWaterMark: 256 * 1024})
      exec = execInPod(api, {
        namespace, pod: at.pod, container: at.container, command: ['sh', '-c', dump.command], stdout, signal: abort.signal,
        label: `of dump ${dump.name}`,
      })
      exec.catch(() => {}) // seen by confirm (or below): the stdout is destroyed on failure
      return stdout
    }, {
      compress: 'gzip',
      confirm: async (entry) => {
        const result = await exec!
        if (result.stdoutBytes !== entry.rawSize) {
          throw new Error(`its output lost bytes on the way to the archive (${result.stdoutBytes} sent, ${entry.rawSize} stored)`)
        }
        extra.stderr = result.stderr.trim().slice(-500) || undefined
      },
    })
  } catch (err) {
    // Prefer the exec's own error: it has the exit code and stderr, the writer's says "premature close".
    abort.abort()
    const execError = exec ? await exec.then(() => undefined, (e: unknown) => e) : undefined
    const cause = execError instanceof ExecError ? execError : err
    throw new KubesnapError(`Dump ${dump.name} failed, so no archive was written: ${reasonOf(cause)}.`, {cause})
  } finally {
    options.signal?.removeEventListener('abort', stop)
    abort.abort()
    await exec?.catch(() => {})
  }
}

/** How one dump's load went at restore. */
export interface DumpOutcome {
  name: string
  workload: string
  /** The load command, in a dry run's `planned` outcomes only: a result that may be logged never holds a command line. */
  load?: string
  bytes: number
  action: 'loaded' | 'planned' | 'skipped' | 'failed'
  pod?: string
  container?: string
  /** Why it was skipped or how it failed. */
  reason?: string
}

/** The dump entries with a load command, in archive order. */
export function loadableDumps(entries: Array<{type: string}>): StreamEntry[] {
  return entries.filter((e): e is StreamEntry => e.type === 'dump' && typeof (e as StreamEntry).extra?.load === 'string')
}

/** The workload a dump entry came from, as a target (the recorded container kept). */
export function entryTarget(entry: StreamEntry): DumpTarget {
  const extra = (entry.extra ?? {}) as Partial<DumpExtra>
  const target = parseTarget(String(extra.workload ?? ''), `dump ${entry.name}`)
  return extra.container ? {...target, container: extra.container} : target
}

/**
 * The pod-side command of a load: on v5 stdin ends when the archive's bytes
 * are sent, so LOAD reads it directly; on v4 it cannot end, so
 * `head -c N` hands LOAD exactly the dump's N bytes and then EOF.
 */
export function loadCommand(load: string, protocol: ExecProtocol, rawSize: number): string[] {
  if (protocol === V4_PROTOCOL) return ['sh', '-c', 'head -c "$1" | sh -c "$2"', 'kubesnap-load', String(rawSize), load]
  return ['sh', '-c', load]
}

/**
 * Streams each dump into its load command in the first Ready pod of its
 * workload. Never throws for one dump: a workload without a Ready pod is
 * `skipped`, a failing load `failed`, each with its reason.
 */
export async function loadDumps(options: {
  api: KubeApi
  namespace: string
  reader: ArchiveReader
  entries: StreamEntry[]
  onStatus?: (line: string) => void
}): Promise<DumpOutcome[]> {
  const {api, namespace} = options
  const outcomes: DumpOutcome[] = []
  for (const entry of options.entries) {
    const load = String(entry.extra!.load)
    const outcome: DumpOutcome = {name: entry.name, workload: String(entry.extra?.workload ?? ''), bytes: entry.rawSize, action: 'failed'}
    outcomes.push(outcome)
    try {
      const target = entryTarget(entry)
      const at = await findReadyPod(api, namespace, target).catch((err: unknown) => {
        // The recorded container may be gone from the restored workload: fall back to the first one.
        if (target.container && err instanceof KubesnapError && /has no container/.test(err.message)) return findReadyPod(api, namespace, {...target, container: undefined})
        throw err
      }).catch((err: unknown) => {
        if (err instanceof WorkloadNotFoundError) return undefined
        throw err
      })
      if (!at) {
        outcome.action = 'skipped'
        outcome.reason = `${outcome.workload} has no Ready pod in ${namespace}`
        continue
      }
      outcome.pod = at.pod
      outcome.container = at.container
      options.onStatus?.(`${entry.name}: loading in pod ${at.pod}, container ${at.container}`)
      // Which protocol the pod's node speaks decides how stdin ends: ask with a command that does nothing.
      const probe = await execInPod(api, {namespace, pod: at.pod, container: at.container, command: ['sh', '-c', ':']})
      const command = loadCommand(load, probe.protocol, entry.rawSize)
      const stdin = options.reader.readStream(entry)
      let readError: unknown
      stdin.on('error', (err) => (readError = err))
      try {
        const result = await execInPod(api, {
          namespace, pod: at.pod, container: at.container, command, stdin: {length: entry.rawSize, stream: stdin},
          label: `of the load of dump ${entry.name}`,
        })
        if (result.stdinBytes !== entry.rawSize) throw new Error(`the load command ended after reading ${result.stdinBytes} of ${entry.rawSize} bytes`)
      } catch (err) {
        // Damage found while reading says most; otherwise the command's own failure (its stderr)
        // does, not the "premature close" its early exit causes on our side of stdin.
        throw readError instanceof ArchiveError ? readError : err
      } finally {
        stdin.destroy()
      }
      outcome.action = 'loaded'
    } catch (err) {
      outcome.action = 'failed'
      outcome.reason = reasonOf(err)
    }
  }
  return outcomes
}

/**
 * The dry-run lines for a dump: how many bytes go into which command where.
 * The command is the archive's, run as is: shown whole (a script on its own
 * indented lines), since a dry run is where an operator reads what will run.
 */
export function describeDumpLoad(d: Pick<DumpOutcome, 'name' | 'bytes' | 'workload'> & {load: string}): string {
  const head = `${'dump'.padEnd(8)} ${d.name}: ${formatBytes(d.bytes)} into`
  if (!d.load.includes('\n')) return `${head} \`${d.load}\` in the first Ready pod of ${d.workload}`
  return [`${head} the first Ready pod of ${d.workload}, through this command:`, ...d.load.split('\n').map((line) => `${' '.repeat(11)}${line}`)].join('\n')
}

/**
 * Says, before a restore starts, that it runs commands stored in the archive
 * (the dumps' load commands), naming the dumps but not the commands, which may
 * carry credentials; returns undefined when it runs none.
 */
export function archivedCommandsNotice(entries: Array<{type: string}>): string | undefined {
  const dumps = loadableDumps(entries)
  if (dumps.length === 0) return undefined
  const names = dumps.map((d) => `${d.name} (${String(d.extra?.workload ?? 'its workload')})`)
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return `This restore runs ${dumps.length === 1 ? 'a command' : `${dumps.length} commands`} stored in the archive, in pods of the namespace: the load command${dumps.length === 1 ? '' : 's'} of dump${dumps.length === 1 ? '' : 's'} ${list}; kubesnap restore --dry-run shows them in full.`
}
