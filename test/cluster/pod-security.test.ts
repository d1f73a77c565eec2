/**
 * Pod security in the test control plane is real admission: in a restricted
 * namespace the namespace-only user's (and the controllers') pods are refused
 * or mutated by v1.20's PodSecurityPolicy plugin, while ordinary test
 * namespaces admit what they always did. The `shop` fixture runs under it.
 */
import {lstat} from 'node:fs/promises'
import {join} from 'node:path'
import {ApiException, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Pod, type V1PodSpec} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {describe} from './documents.js'
import {PSP_ANNOTATION, sharedCluster, type TestCluster} from './index.js'
import {ENFORCE_LABEL, podSecurityRoleName} from './podsecurity.js'

let cluster: TestCluster
let restricted: string
let privileged: string

test.before(async () => {
  cluster = await sharedCluster()
  restricted = await cluster.createNamespace({prefix: 'psp-restricted', security: 'restricted'})
  privileged = await cluster.createNamespace({prefix: 'psp-privileged'})
})

test.after(async () => {
  await Promise.all([restricted, privileged].filter(Boolean).map((ns) => cluster.deleteNamespace(ns)))
})

/** A value as JSON has it: the client's model classes compare unequal to plain objects. */
const plain = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)) as T)

/** A busybox pod named `name` with `spec` merged in (its one container is `main`, changed by `container`). */
function pod(name: string, spec: Partial<V1PodSpec> = {}, container: Partial<V1PodSpec['containers'][number]> = {}): V1Pod {
  return {
    metadata: {name},
    spec: {containers: [{name: 'main', image: 'busybox:1.36', command: ['sleep', 'infinity'], ...container}], ...spec},
  }
}

/** Creates `body` in `namespace` as `kc`; the created pod, or the refusal's message. */
async function create(kc: KubeConfig, namespace: string, body: V1Pod): Promise<{pod?: V1Pod; refused?: string}> {
  try {
    return {pod: plain(await kc.makeApiClient(CoreV1Api).createNamespacedPod({namespace, body}))}
  } catch (err) {
    if (err instanceof ApiException && err.code === 403) return {refused: describe(err)}
    throw err
  }
}

/** A pod the restricted policy has nothing to add to: non-root ids, RuntimeDefault, no escalation, no capabilities. */
function compliant(name: string): V1Pod {
  return pod(name, {
    securityContext: {
      runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, supplementalGroups: [1000],
      seccompProfile: {type: 'RuntimeDefault'},
    },
    volumes: [{name: 'scratch', emptyDir: {}}],
  }, {
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}},
    volumeMounts: [{name: 'scratch', mountPath: '/scratch'}],
  })
}

test('restricted namespace: labelled, and bound to the restricted policy only', async () => {
  const core = cluster.admin().makeApiClient(CoreV1Api)
  const ns = await core.readNamespace({name: restricted})
  assert.is(ns.metadata?.labels?.[ENFORCE_LABEL], 'restricted')
  const plain = await core.readNamespace({name: privileged})
  assert.is(plain.metadata?.labels?.[ENFORCE_LABEL], undefined)
})

test('an unknown pod security level is refused before anything is created', async () => {
  try {
    await cluster.createNamespace({prefix: 'psp-baseline', security: 'baseline' as never})
    assert.unreachable('a namespace was created')
  } catch (err) {
    assert.match((err as Error).message, /unknown pod security "baseline" .*use one of: privileged, restricted/)
  }
})

test('restricted namespace: the user\'s root pod is refused by the PodSecurityPolicy plugin', async () => {
  const {refused} = await create(cluster.user(), restricted, pod('root', {securityContext: {runAsUser: 0}}))
  assert.ok(refused, 'refused')
  assert.match(refused!, 'PodSecurityPolicy: unable to admit pod')
  assert.match(refused!, 'running with the root UID is forbidden')
})

test('restricted namespace: a hostPath pod is refused', async () => {
  const body = compliant('host-path')
  body.spec!.volumes = [{name: 'scratch', hostPath: {path: '/etc'}}]
  const {refused} = await create(cluster.user(), restricted, body)
  assert.ok(refused, 'refused')
  assert.match(refused!, 'hostPath volumes are not allowed to be used')
})

test('restricted namespace: a privileged container is refused', async () => {
  const body = compliant('privileged')
  body.spec!.containers[0].securityContext!.privileged = true
  const {refused} = await create(cluster.user(), restricted, body)
  assert.match(refused ?? '', 'Privileged containers are not allowed')
})

test('restricted namespace: a pod without securityContext is admitted, made non-root, unprivileged and capability-free', async () => {
  const {pod: admitted, refused} = await create(cluster.user(), restricted, pod('plain'))
  assert.is(refused, undefined)
  assert.is(admitted?.metadata?.annotations?.[PSP_ANNOTATION], 'restricted')
  const podContext = admitted?.spec?.securityContext ?? {}
  const context = admitted?.spec?.containers[0].securityContext ?? {}
  // MustRunAsNonRoot sets runAsNonRoot where the pod leaves the user open (the kubelet then refuses uid 0).
  assert.ok(context.runAsNonRoot === true || podContext.runAsNonRoot === true, `runAsNonRoot in ${JSON.stringify({podContext, context})}`)
  assert.is(context.allowPrivilegeEscalation, false)
  assert.equal(context.capabilities?.drop, ['ALL'])
  // MustRunAs ranges 1-65535: the first id of the range.
  assert.is(podContext.fsGroup, 1)
  assert.equal(podContext.supplementalGroups, [1])
  assert.is(podContext.seccompProfile?.type, 'RuntimeDefault')
})

test('restricted namespace: a compliant pod is admitted as a privileged namespace admits it', async () => {
  const inRestricted = await create(cluster.user(), restricted, compliant('compliant'))
  const inPrivileged = await create(cluster.user(), privileged, compliant('compliant'))
  assert.is(inRestricted.refused, undefined)
  assert.is(inPrivileged.refused, undefined)
  const [a, b] = [inRestricted.pod!, inPrivileged.pod!]
  assert.is(a.metadata?.annotations?.[PSP_ANNOTATION], 'restricted')
  assert.is(b.metadata?.annotations?.[PSP_ANNOTATION], 'privileged')
  // The privileged policy changes nothing, so equal security contexts mean restricted changed nothing either.
  assert.equal(a.spec?.securityContext, b.spec?.securityContext)
  assert.equal(a.spec?.containers.map((c) => c.securityContext), b.spec?.containers.map((c) => c.securityContext))
  assert.equal(a.spec?.securityContext, compliant('x').spec?.securityContext)
  assert.equal(a.spec?.containers[0].securityContext, compliant('x').spec?.containers[0].securityContext)
  const others = (p: V1Pod) => Object.entries(p.metadata?.annotations ?? {}).filter(([key]) => key !== PSP_ANNOTATION)
  assert.equal(others(a), others(b))
})

test('restricted namespace: the admin (system:masters) may still use the privileged policy', async () => {
  const {pod: admitted, refused} = await create(cluster.admin(), restricted, pod('admin-root', {securityContext: {runAsUser: 0}}))
  assert.is(refused, undefined)
  assert.is(admitted?.metadata?.annotations?.[PSP_ANNOTATION], 'privileged')
})

test('privileged namespace: the user\'s root pod is admitted unchanged, as before pod security', async () => {
  const {pod: admitted, refused} = await create(cluster.user(), privileged, pod('root', {securityContext: {runAsUser: 0}}, {securityContext: {privileged: true}}))
  assert.is(refused, undefined)
  assert.is(admitted?.metadata?.annotations?.[PSP_ANNOTATION], 'privileged')
  assert.equal(admitted?.spec?.securityContext, {runAsUser: 0})
  assert.equal(admitted?.spec?.containers[0].securityContext, {privileged: true})
})

// kubesnap's default Role has no escalate or bind (only `kubesnap rbac --restore-rbac` adds them), so
// the namespace-only user of a restricted namespace cannot leave its policy.
test('restricted namespace: the user cannot bind itself the privileged policy', async () => {
  const rbac = cluster.user().makeApiClient(RbacAuthorizationV1Api)
  const body = {
    metadata: {name: 'escalate'},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: podSecurityRoleName('privileged')},
    subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: cluster.userName}],
  }
  let refused = ''
  try {
    await rbac.createNamespacedRoleBinding({namespace: restricted, body})
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 403)) throw err
    refused = describe(err)
  }
  // What the binding would buy: a root pod in the restricted namespace.
  const root = await create(cluster.user(), restricted, pod('escaped', {securityContext: {runAsUser: 0}}))
  assert.ok(refused, `the binding was created; then a root pod was ${root.refused ? 'still refused' : `admitted with policy ${root.pod?.metadata?.annotations?.[PSP_ANNOTATION]}`}`)
  assert.ok(root.refused, 'a root pod is still refused')
})

test('shop fixture: loads in a restricted namespace; every pod passed the restricted policy', async () => {
  const ns = await cluster.createNamespace({prefix: 'shop', fixture: 'shop'})
  try {
    const core = cluster.admin().makeApiClient(CoreV1Api)
    assert.is((await core.readNamespace({name: ns})).metadata?.labels?.[ENFORCE_LABEL], 'restricted')
    const pods = plain((await core.listNamespacedPod({namespace: ns})).items)
    const byApp = (app: string) => pods.filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === app)
    assert.equal(byApp('db').map((p) => p.metadata?.name), ['db-0'])
    assert.is(byApp('web').length, 1)
    for (const p of pods) {
      // Created by the StatefulSet and ReplicaSet controllers: they, too, only get restricted here.
      assert.is(p.metadata?.annotations?.[PSP_ANNOTATION], 'restricted', `${p.metadata?.name}`)
      if (cluster.nodeName) assert.ok(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), `${p.metadata?.name} Ready`)
    }
    const db = byApp('db')[0].spec!
    assert.equal(
      {...db.securityContext, seccompProfile: db.securityContext?.seccompProfile?.type},
      {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, supplementalGroups: [999], fsGroupChangePolicy: 'OnRootMismatch', seccompProfile: 'RuntimeDefault'},
    )
    assert.equal(db.containers[0].securityContext, {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ['ALL']}})
    const web = byApp('web')[0].spec!
    assert.is(web.securityContext?.runAsUser, 1000)
    const metrics = web.containers.find((c) => c.name === 'metrics')
    assert.is(metrics?.image, 'gcr.io/distroless/static:nonroot')
    assert.is(metrics?.securityContext?.runAsUser, 65532)
    assert.ok(web.containers.every((c) => c.securityContext?.readOnlyRootFilesystem === true), 'read-only root file systems')

    if (cluster.storageClass) {
      // The seed trees were written onto the claims with their owners.
      const dirOf = async (claim: string) => {
        const pvc = await core.readNamespacedPersistentVolumeClaim({name: claim, namespace: ns})
        return (await core.readPersistentVolume({name: pvc.spec!.volumeName!})).spec!.hostPath!.path
      }
      const data = await dirOf('data-db-0')
      const owner = async (path: string) => {
        const stats = await lstat(path)
        return `${(stats.mode & 0o7777).toString(8).padStart(4, '0')} ${stats.uid}:${stats.gid}`
      }
      assert.is(await owner(data), '2770 999:999', 'the volume root, as OnRootMismatch expects it')
      assert.is(await owner(join(data, 'pgdata')), '0700 999:999')
      assert.is(await owner(join(data, 'pgdata/global/pg_control')), '0600 999:999')
      const uploads = await dirOf('web-uploads')
      assert.is(await owner(join(uploads, 'invoices/2024/INV-2024-0001.pdf')), '0640 1000:1000')
    }
  } finally {
    await cluster.deleteNamespace(ns)
  }
})

test.run()
