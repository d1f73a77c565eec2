/**
 * When a failed request to the API server is sent again. A read can always be
 * repeated; a write (POST, PUT, PATCH, DELETE) only when the server cannot
 * have applied it, or a create that committed before a lost answer would come
 * back as 409 AlreadyExists and be reported as someone else's object.
 */

/** How one attempt of a request failed. */
export type AttemptFailure =
  /** The server (or a proxy in front of it) answered with this HTTP status. */
  | {status: number}
  /** The connection failed (an errno code such as ECONNREFUSED); `sent`: whether any byte of the request may have reached the server. */
  | {network: string; sent: boolean}

/** Methods that change nothing on the server. */
const READS = new Set(['GET', 'HEAD'])

/** Answers of a busy or broken server, after which a read is worth repeating. */
const RETRIABLE_STATUS = new Set([429, 500, 502, 503, 504])

/** Connection errors (as opposed to TLS or programming errors). */
export const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE'])

/** The review APIs (access, rules, who am I): a POST there answers a question and stores nothing. */
const REVIEWS = /^\/apis\/(authorization|authentication)\.k8s\.io\/[^/]+\/[a-z]+reviews$/

/**
 * Whether a request can change what the cluster stores: every POST, PUT,
 * PATCH and DELETE but those to a review API, and none with `dryRun`.
 */
export function isWrite(method: string, path: string, dryRun = false): boolean {
  return !dryRun && !READS.has(method.toUpperCase()) && !REVIEWS.test(path)
}

/**
 * Whether to send a request again after `failure`; `write` is isWrite of the
 * request (a dry run is no write). 429 is the apiserver's
 * max-in-flight and priority-and-fairness refusal, answered before the request
 * is handled: any method. Other 5xx, and connections that broke after the
 * request went out, leave a write's fate unknown: reads only. A write whose
 * connection never carried it (refused, unreachable, no TLS session yet) is
 * repeated. A refused read is not: the first request of a run to a cluster
 * that is down should say so at once.
 */
export function shouldRetry(write: boolean, failure: AttemptFailure): boolean {
  const read = !write
  if ('status' in failure) return failure.status === 429 || (read && RETRIABLE_STATUS.has(failure.status))
  if (!NETWORK_CODES.has(failure.network)) return false
  if (read) return failure.network !== 'ECONNREFUSED'
  return !failure.sent
}

/**
 * Whether a write that failed with `failure` may still have been applied (its
 * answer lost): a 5xx other than 429, or a connection that broke after the
 * request went out. The caller reads the object back before it reports.
 */
export function mayHaveApplied(write: boolean, failure: AttemptFailure): boolean {
  if (!write) return false
  if ('status' in failure) return failure.status >= 500
  return failure.sent
}
