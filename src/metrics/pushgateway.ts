/**
 * Pushes one snapshot run's outcome to a Prometheus Pushgateway, so that cron
 * runs on a bastion host can be alerted on ("no success for 26 h", "last run
 * failed") without anything scraping the host.
 *
 * Metrics go to the group `job="kubesnap", namespace="<ns>"` with POST, which
 * replaces only the metrics of the same names in that group: a failed run does
 * not push `kubesnap_last_success_timestamp_seconds`, so the previous success
 * stays visible next to the failure.
 */
import pRetry, {AbortError} from 'p-retry'
import {KubesnapError, messageOf} from '../errors.js'

/** What one snapshot run did, as the snapshot command knows it at the end. */
export interface RunMetrics {
  namespace: string
  /** 'success' (exit 0), 'partial' (exit 3: some types could not be listed or some claims' data could not be copied), 'failed' (anything else). */
  status: RunStatus
  startedAt: Date
  finishedAt: Date
  /** Archive file size in bytes (0 when failed). */
  bytes: number
  objects: number
  volumes: number
  exitCode: number
}

export type RunStatus = 'success' | 'partial' | 'failed'

/** Every status, so that each run sets the others to 0 and `kubesnap_status{status="failed"} == 1` is an alert. */
export const RUN_STATUSES: readonly RunStatus[] = ['success', 'partial', 'failed']

/** The Pushgateway job all kubesnap runs push under. */
export const JOB = 'kubesnap'

export interface PushOptions {
  /** Deadline for the whole push, retries included; default 10 s. A slow gateway must not hold up a finished snapshot. */
  timeoutMs?: number
  /** Attempts after the first on dropped connections and 5xx; default 2. */
  retries?: number
  /** Shortest wait before a retry; default 200 ms. */
  minRetryDelayMs?: number
  /** The transport; tests inject one. Defaults to the global fetch. */
  fetch?: typeof fetch
}

/**
 * Renders a run as Prometheus text exposition format 0.0.4, all gauges.
 * `kubesnap_last_success_timestamp_seconds` is there only when the run
 * succeeded: a partial archive lacks types or volume data, so it does not count as a success.
 */
export function formatRunMetrics(metrics: RunMetrics): string {
  const finished = seconds(metrics.finishedAt)
  // A clock stepped back during the run would give a negative duration; none is more honest.
  const duration = Math.max(0, (metrics.finishedAt.getTime() - metrics.startedAt.getTime()) / 1000)
  const lines: string[] = []
  const gauge = (name: string, help: string, samples: [labels: string, value: number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`)
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${formatValue(value)}`)
  }
  gauge('kubesnap_last_run_timestamp_seconds', 'When the last snapshot run finished, successful or not, in Unix seconds.', [['', finished]])
  if (metrics.status === 'success') {
    gauge('kubesnap_last_success_timestamp_seconds', 'When the last fully successful snapshot run finished, in Unix seconds.', [['', finished]])
  }
  gauge('kubesnap_duration_seconds', 'How long the last snapshot run took.', [['', duration]])
  gauge('kubesnap_archive_bytes', 'Size of the archive the last snapshot run wrote (0 when it failed).', [['', metrics.bytes]])
  gauge('kubesnap_objects', 'Objects stored by the last snapshot run.', [['', metrics.objects]])
  gauge('kubesnap_volumes', 'Volumes stored by the last snapshot run.', [['', metrics.volumes]])
  gauge('kubesnap_exit_code', 'Exit code of the last snapshot run (0 success, 3 partial).', [['', metrics.exitCode]])
  gauge('kubesnap_status', 'Outcome of the last snapshot run: 1 for its status, 0 for the others.',
    RUN_STATUSES.map((status) => [`{status="${status}"}`, status === metrics.status ? 1 : 0]))
  return lines.join('\n') + '\n'
}

/**
 * Pushes a run's metrics to the Pushgateway at `url` (its base URL, optionally
 * with a path prefix and `user:password@` for basic auth), retrying dropped
 * connections and 5xx answers. Throws a KubesnapError sentence that never
 * shows the credentials; the snapshot command reports it as a warning.
 */
export async function pushRunMetrics(url: string, metrics: RunMetrics, options: PushOptions = {}): Promise<void> {
  const target = pushTarget(url, metrics.namespace)
  const timeoutMs = options.timeoutMs ?? 10_000
  const doFetch = options.fetch ?? fetch
  const body = formatRunMetrics(metrics)
  const deadline = AbortSignal.timeout(timeoutMs)
  const headers: Record<string, string> = {'content-type': 'text/plain; version=0.0.4; charset=utf-8'}
  if (target.authorization) headers.authorization = target.authorization
  const failed = `Pushing metrics to ${target.redacted} failed`

  try {
    await pRetry(
      async () => {
        const res = await doFetch(target.url, {method: 'POST', headers, body, signal: deadline})
        if (res.ok) {
          // Drained so the connection goes back to the pool instead of lingering.
          await res.arrayBuffer().catch(() => undefined)
          return
        }
        const detail = firstLine(await res.text().catch(() => ''))
        const err = new KubesnapError(`${failed}: HTTP ${res.status}${detail ? ` ${detail}` : ''}; check the --pushgateway URL.`)
        // 4xx is the gateway refusing this push (bad path, inconsistent metrics, auth): trying again gives the same answer.
        throw res.status >= 500 ? err : new AbortError(err)
      },
      {retries: options.retries ?? 2, minTimeout: options.minRetryDelayMs ?? 200, maxTimeout: 2000, factor: 2, randomize: true, signal: deadline},
    )
  } catch (err) {
    if (err instanceof KubesnapError) throw err
    if (deadline.aborted) {
      throw new KubesnapError(`${failed}: no answer within ${timeoutMs / 1000} s; check that the Pushgateway is up and the --pushgateway URL.`, {cause: err})
    }
    // fetch was given a URL without credentials, so its errors cannot show them.
    const cause = (err as {cause?: NodeJS.ErrnoException}).cause
    throw new KubesnapError(`${failed}: ${cause?.code ?? cause?.message ?? messageOf(err)}; check that the Pushgateway is up and the --pushgateway URL.`, {cause: err})
  }
}

/** Where to push: the group URL without credentials, the Authorization header they make, and the URL fit for messages. */
export interface PushTarget {
  url: string
  authorization?: string
  /** The base URL with any `user:password@` replaced by `***@`. */
  redacted: string
}

/** Builds the group URL `<base>/metrics/job/kubesnap/namespace/<ns>` from the user's base URL. */
export function pushTarget(base: string, namespace: string): PushTarget {
  let parsed: URL
  try {
    parsed = new URL(base)
  } catch {
    // The input is not echoed: it may hold a password.
    throw new KubesnapError('The --pushgateway URL is not a valid URL; give the Pushgateway\'s base URL, e.g. http://127.0.0.1:9091.')
  }
  if (!namespace) throw new Error('pushTarget needs a namespace')
  let authorization: string | undefined
  if (parsed.username || parsed.password) {
    const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`
    authorization = `Basic ${Buffer.from(credentials).toString('base64')}`
    // fetch refuses URLs with credentials, and its error would quote the password.
    parsed.username = ''
    parsed.password = ''
  }
  parsed.search = ''
  parsed.hash = ''
  const redacted = authorization ? parsed.href.replace('://', '://***@') : parsed.href
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new KubesnapError(`The --pushgateway URL ${redacted} is not http or https; give the Pushgateway's base URL, e.g. http://127.0.0.1:9091.`)
  }
  if (/\/metrics(\/|$)/.test(parsed.pathname)) {
    throw new KubesnapError(`The --pushgateway URL ${redacted} already has a /metrics path; give the Pushgateway's base URL, kubesnap adds /metrics/job/${JOB}/namespace/<namespace>.`)
  }
  // A base with a path prefix (behind a proxy) keeps it; a trailing slash or none makes no difference.
  parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/metrics/job/${encodeURIComponent(JOB)}/namespace/${encodeURIComponent(namespace)}`
  return {url: parsed.href, authorization, redacted}
}

function seconds(date: Date): number {
  return date.getTime() / 1000
}

/** Go's ParseFloat, which the Pushgateway uses, reads JS numbers as printed, but not JS's spelling of infinity. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** The first non-empty line of an error body, short enough for one sentence. */
function firstLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? ''
  return line.length > 200 ? `${line.slice(0, 200)}…` : line
}
