/**
 * A small level-triggered controller loop: list, then watch from the list's
 * resourceVersion, and hand every object to a reconcile function, one call at a
 * time per object. When the watch ends (the apiserver closes watches every few
 * minutes, or answers 410 Gone when the version is too old) it lists again, and
 * a periodic resync re-reconciles everything, so a missed event only delays
 * work, never loses it.
 */
import https from 'node:https'
import {createInterface} from 'node:readline'
import type {KubeConfig} from '@kubernetes/client-node'

/** The least of an object the loop needs. */
export interface KubeObject {
  metadata?: {name?: string; namespace?: string; uid?: string; resourceVersion?: string}
}

/** What one controller watches and what it does with each object. */
export interface InformerSpec<T extends KubeObject> {
  /** For log lines. */
  name: string
  kubeconfig: KubeConfig
  /** The collection's URL path, e.g. `/api/v1/persistentvolumeclaims` (all namespaces). */
  path: string
  /** Lists the collection; the list's resourceVersion starts the watch. */
  list: () => Promise<{items: T[]; metadata?: {resourceVersion?: string}}>
  /** Brings the world in line with `object`; throwing schedules a retry. */
  reconcile: (object: T) => Promise<void>
  /** Called once an object is gone from the API (optional). */
  deleted?: (object: T) => Promise<void>
  /** How often everything is reconciled again, in ms (default 5000). */
  resyncMs?: number
  log: (line: string) => void
}

/** A running controller loop. */
export interface Informer {
  /** Reconciles the object with this key (`ns/name` or `name`) again, with its last seen state. */
  requeue(key: string): void
  /** Resolves once the first list has been reconciled; rejects if that first list fails (the loop goes on retrying until stopped). */
  synced: Promise<void>
  stop(): Promise<void>
}

/**
 * Waits until every informer of a controller has synced, then returns what
 * stops them all; stops them all when one fails to sync.
 */
export async function syncAll(informers: Informer[]): Promise<{stop(): Promise<void>}> {
  const stop = async () => {
    await Promise.all(informers.map((i) => i.stop()))
  }
  try {
    await Promise.all(informers.map((i) => i.synced))
  } catch (err) {
    await stop()
    throw err
  }
  return {stop}
}

const RETRY_MS = 500
const MAX_RETRY_MS = 8000

/** Starts a controller loop as described by `spec`. */
export function startInformer<T extends KubeObject>(spec: InformerSpec<T>): Informer {
  const resyncMs = spec.resyncMs ?? 5000
  const latest = new Map<string, T>()
  const queue = new Map<string, {running: boolean; again: boolean}>()
  const inFlight = new Set<Promise<void>>()
  const failures = new Map<string, number>()
  let stopped = false
  let abortWatch: AbortController | undefined
  let resyncTimer: NodeJS.Timeout | undefined
  const retryTimers = new Set<NodeJS.Timeout>()

  /** Runs `work` for `key` now or right after the run already going for it. */
  function schedule(key: string, work: () => Promise<void>): void {
    const state = queue.get(key) ?? {running: false, again: false}
    queue.set(key, state)
    if (state.running) {
      state.again = true
      return
    }
    state.running = true
    const run = (async () => {
      do {
        state.again = false
        try {
          await work()
          failures.delete(key)
        } catch (err) {
          if (stopped) break
          // Back off per object, so one that cannot be reconciled yet (a snapshot not ready) does not flood the apiserver.
          const failed = (failures.get(key) ?? 0) + 1
          failures.set(key, failed)
          const delay = Math.min(RETRY_MS * 2 ** (failed - 1), MAX_RETRY_MS)
          spec.log(`${spec.name}: ${key}: ${describe(err)}; retrying in ${delay} ms`)
          const timer = setTimeout(() => {
            retryTimers.delete(timer)
            if (!stopped) requeue(key)
          }, delay)
          timer.unref()
          retryTimers.add(timer)
        }
      } while (state.again && !stopped)
      state.running = false
      queue.delete(key)
    })()
    inFlight.add(run)
    void run.finally(() => inFlight.delete(run))
  }

  function requeue(key: string): void {
    const object = latest.get(key)
    if (object !== undefined && !stopped) schedule(key, () => spec.reconcile(latest.get(key) ?? object))
  }

  function upsert(object: T): void {
    const key = keyOf(object)
    latest.set(key, object)
    requeue(key)
  }

  function remove(object: T): void {
    const key = keyOf(object)
    latest.delete(key)
    if (spec.deleted && !stopped) schedule(key, () => spec.deleted!(object))
  }

  /** Lists, reconciles what it finds and forgets what is gone; returns the list's version. */
  async function relist(): Promise<string | undefined> {
    const list = await spec.list()
    const seen = new Set<string>()
    for (const object of list.items) {
      seen.add(keyOf(object))
      upsert(object)
    }
    for (const [key, object] of latest) if (!seen.has(key)) remove(object)
    return list.metadata?.resourceVersion
  }

  /** Watches from `resourceVersion` until the stream ends; resolves then, whatever the reason. */
  async function watchFrom(resourceVersion: string | undefined): Promise<void> {
    const url = new URL(spec.kubeconfig.getCurrentCluster()!.server + spec.path)
    url.searchParams.set('watch', 'true')
    url.searchParams.set('allowWatchBookmarks', 'true')
    if (resourceVersion) url.searchParams.set('resourceVersion', resourceVersion)
    const options: https.RequestOptions = {}
    await spec.kubeconfig.applyToHTTPSOptions(options)
    const abort = new AbortController()
    abortWatch = abort
    if (stopped) return
    await new Promise<void>((resolve) => {
      const request = https.get(url, {...options, signal: abort.signal}, (response) => {
        if (response.statusCode !== 200) {
          spec.log(`${spec.name}: watch refused: HTTP ${response.statusCode}`)
          response.resume()
          resolve()
          return
        }
        const lines = createInterface({input: response, crlfDelay: Infinity})
        lines.on('line', (line) => {
          let event: {type?: string; object?: T}
          try {
            event = JSON.parse(line) as {type?: string; object?: T}
          } catch {
            return
          }
          if (event.type === 'ADDED' || event.type === 'MODIFIED') upsert(event.object!)
          else if (event.type === 'DELETED') remove(event.object!)
          else if (event.type === 'ERROR') {
            // Usually 410 Gone: our version is too old. Relisting is the cure.
            request.destroy()
          }
        })
        lines.on('close', () => resolve())
        // Aborted by stop() or cut by the apiserver: either way, relist.
        lines.on('error', () => resolve())
        response.on('error', () => resolve())
      })
      // A watch waits for events forever: it must not keep the test process alive by itself.
      request.on('socket', (socket) => socket.unref())
      request.on('error', (err) => {
        if (!stopped) spec.log(`${spec.name}: watch ended: ${describe(err)}`)
        resolve()
      })
      request.on('close', () => resolve())
    })
  }

  let settleSynced: ((err?: unknown) => void) | undefined
  const synced = new Promise<void>((resolve, reject) => {
    settleSynced = (err) => (err === undefined ? resolve() : reject(err))
  })
  // A caller that never awaits `synced` must not crash the process with an unhandled rejection.
  synced.catch(() => {})

  const loop = (async () => {
    while (!stopped) {
      try {
        const version = await relist()
        if (settleSynced) {
          // Starting means "caught up": callers (and tests) may rely on existing objects being handled.
          await Promise.allSettled([...inFlight])
          settleSynced()
          settleSynced = undefined
        }
        await watchFrom(version)
      } catch (err) {
        if (settleSynced) {
          settleSynced(new Error(`${spec.name}: cannot list ${spec.path}: ${describe(err)}`, {cause: err}))
          settleSynced = undefined
        }
        if (!stopped) spec.log(`${spec.name}: list failed: ${describe(err)}`)
      }
      // Not a hot loop when the apiserver is down or refuses us.
      if (!stopped) await sleep(RETRY_MS)
    }
  })()

  resyncTimer = setInterval(() => {
    for (const key of latest.keys()) requeue(key)
  }, resyncMs)
  // Like the watch, the timers alone must not keep the process alive.
  resyncTimer.unref()

  return {
    requeue,
    synced,
    async stop() {
      stopped = true
      clearInterval(resyncTimer)
      for (const timer of retryTimers) clearTimeout(timer)
      abortWatch?.abort()
      await loop
      await Promise.allSettled([...inFlight])
    },
  }
}

/** Returns the queue key of an object: `namespace/name`, or `name` for cluster-scoped ones. */
export function keyOf(object: KubeObject): string {
  const {namespace, name} = object.metadata ?? {}
  return namespace ? `${namespace}/${name}` : `${name}`
}

/** Returns an error's most useful one-line description, including an API Status message. */
export function describe(err: unknown): string {
  const e = err as {code?: number; body?: unknown; message?: string}
  if (typeof e?.code === 'number' && e.body !== undefined) {
    let body = e.body
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body)
      } catch {
        // Not JSON: keep the text.
      }
    }
    const message = (body as {message?: string})?.message ?? String(body)
    return `HTTP ${e.code}: ${message}`
  }
  return e?.message ?? String(err)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
