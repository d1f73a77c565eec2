/**
 * Waiting for a namespace's workloads, as `kubectl rollout status` would for
 * each: every StatefulSet and Deployment has seen its latest spec and has all
 * its replicas updated and Ready. Meaningful only when a node runs the pods.
 */
import {setTimeout as sleep} from 'node:timers/promises'
import {AppsV1Api, type KubeConfig, type V1Deployment, type V1StatefulSet} from '@kubernetes/client-node'

/** Waits until every StatefulSet and Deployment in `namespace` is rolled out and Ready. */
export async function waitForWorkloads(admin: KubeConfig, namespace: string, opts: {timeoutMs?: number} = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000
  const apps = admin.makeApiClient(AppsV1Api)
  const deadline = Date.now() + timeoutMs
  let pending: string[] = []
  while (Date.now() < deadline) {
    const [statefulSets, deployments] = await Promise.all([
      apps.listNamespacedStatefulSet({namespace}),
      apps.listNamespacedDeployment({namespace}),
    ])
    pending = [
      ...statefulSets.items.filter((s) => !isRolledOut(s)).map((s) => `StatefulSet ${s.metadata?.name}`),
      ...deployments.items.filter((d) => !isRolledOut(d)).map((d) => `Deployment ${d.metadata?.name}`),
    ]
    if (pending.length === 0) return
    await sleep(250)
  }
  throw new Error(`workloads in ${namespace} not Ready within ${timeoutMs} ms: ${pending.join(', ')}`)
}

/** Whether the controller has acted on the latest spec and every wanted replica is updated and Ready. */
function isRolledOut(workload: V1StatefulSet | V1Deployment): boolean {
  const wanted = workload.spec?.replicas ?? 1
  const status = workload.status
  if (!status) return wanted === 0
  return (status.observedGeneration ?? 0) >= (workload.metadata?.generation ?? 0)
    && (status.updatedReplicas ?? 0) >= wanted
    && (status.readyReplicas ?? 0) >= wanted
    && (status.replicas ?? 0) === wanted
}
