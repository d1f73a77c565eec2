/**
 * Which workloads a restore waits for, and when: pure decisions over the
 * outcomes of the phases before.
 */
import type {StreamEntry} from '../archive/manifest.js'
import {entryTarget} from '../dumps/index.js'
import type {ObjectOutcome} from './objects.js'
import type {RestartPlan} from './restart.js'
import {workloadKey, type WorkloadKind, type WorkloadRef} from '../volumes/workloads.js'
import type {VolumeOutcome} from './volumes.js'

/** What the waits are decided from: the outcomes so far. */
export interface TouchedWorkloads {
  restarted: RestartPlan[]
  volumes: VolumeOutcome[]
  outcomes: ObjectOutcome[]
}

/** The workload kind of a restored object's resource, if it is one restore waits for. */
function workloadKind(resource: string): WorkloadKind | undefined {
  return resource === 'statefulsets.apps' ? 'StatefulSet' : resource === 'deployments.apps' ? 'Deployment' : undefined
}

/** The StatefulSets and Deployments this restore created. */
function created(outcomes: ObjectOutcome[]): WorkloadRef[] {
  return outcomes.flatMap((o) => {
    const kind = workloadKind(o.resource)
    return kind && o.action === 'create' ? [{kind, name: o.name}] : []
  })
}

/**
 * The workloads the final wait watches, once each: restarted, scaled back
 * after a copy that restored their data, or created by this restore: what the
 * runbook needs to see running. Pure.
 */
export function workloadsToWait(run: TouchedWorkloads): WorkloadRef[] {
  const refs = new Map<string, WorkloadRef>()
  for (const r of run.restarted) refs.set(workloadKey(r), r)
  for (const v of run.volumes) if (v.scaled && v.action === 'restored') refs.set(workloadKey(v.scaled), v.scaled)
  for (const ref of created(run.outcomes)) refs.set(workloadKey(ref), ref)
  return [...refs.values()]
}

/**
 * The workloads whose rollout comes before loading `dumps`: those a dump loads
 * into that this restore created, scaled or restarted (the load needs them
 * running), once each, in the dumps' order. Pure.
 */
export function workloadsBeforeDumps(dumps: StreamEntry[], run: TouchedWorkloads): WorkloadRef[] {
  const touched = new Set([
    ...run.restarted.map((r) => workloadKey(r)),
    ...run.volumes.flatMap((v) => (v.scaled ? [workloadKey(v.scaled)] : [])),
    ...created(run.outcomes).map((ref) => workloadKey(ref)),
  ])
  const refs = new Map<string, WorkloadRef>()
  for (const e of dumps) {
    let target
    try {
      target = entryTarget(e)
    } catch {
      // An unreadable workload is reported by loadDumps.
      continue
    }
    const kind = target.kind === 'statefulset' ? 'StatefulSet' : target.kind === 'deployment' ? 'Deployment' : undefined
    if (kind && touched.has(`${kind}/${target.name}`)) refs.set(`${kind}/${target.name}`, {kind, name: target.name})
  }
  return [...refs.values()]
}
