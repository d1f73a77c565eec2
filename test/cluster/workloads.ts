/**
 * Waiting for a namespace's workloads, as `kubectl rollout status` would for
 * each (the rules of src/restore/restart.ts). Meaningful only when a node runs the pods.
 */
import {AppsV1Api, type KubeConfig, type V1Deployment, type V1StatefulSet} from '@kubernetes/client-node'
import {rolloutStatus} from '../../src/restore/restart.js'
import type {WorkloadKind, WorkloadObject} from '../../src/volumes/workloads.js'
import {waitFor} from './wait.js'

/** Waits until every StatefulSet and Deployment in `namespace` is rolled out and Ready. */
export async function waitForWorkloads(admin: KubeConfig, namespace: string, opts: {timeoutMs?: number} = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000
  const apps = admin.makeApiClient(AppsV1Api)
  let pending: string[] = []
  await waitFor(`workloads in ${namespace} to be Ready`, async () => {
    const [statefulSets, deployments] = await Promise.all([
      apps.listNamespacedStatefulSet({namespace}),
      apps.listNamespacedDeployment({namespace}),
    ])
    pending = [
      ...statefulSets.items.map((s) => waitingFor('StatefulSet', s)),
      ...deployments.items.map((d) => waitingFor('Deployment', d)),
    ].filter((w): w is string => w !== undefined)
    return pending.length === 0
  }, {timeoutMs, intervalMs: 250, detail: () => pending.join(', ')})
}

/** What a workload's rollout still waits for (kubesnap's own `kubectl rollout status` rules), or undefined when done. */
function waitingFor(kind: WorkloadKind, workload: V1StatefulSet | V1Deployment): string | undefined {
  const {done, waiting} = rolloutStatus(kind, workload as WorkloadObject)
  return done ? undefined : `${kind} ${workload.metadata?.name} (${waiting})`
}
