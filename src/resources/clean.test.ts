import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {cleanForRestore, isExplicitNodePort} from './clean.js'

const same = {sourceNamespace: 'shop', targetNamespace: 'shop'}
const moved = {sourceNamespace: 'shop', targetNamespace: 'shop-dr'}

/** An object as a server returns it: every server-set field present. */
function stored(kind: string, apiVersion: string, name: string, extra: Record<string, any> = {}) {
  return {
    apiVersion, kind,
    metadata: {
      name, namespace: 'shop', uid: 'u-1', resourceVersion: '42', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z',
      selfLink: `/x/${name}`, managedFields: [{manager: 'kubectl-create'}], ownerReferences: [{kind: 'X', name: 'y', uid: 'z'}],
      labels: {app: 'shop'}, annotations: {note: 'kept', 'deployment.kubernetes.io/revision': '7'},
      ...extra.metadata,
    },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'metadata')),
    status: {phase: 'Whatever'},
  }
}

test('metadata and status: server-set fields go, the user\'s stay, the namespace is the target', () => {
  const out: any = cleanForRestore(stored('ConfigMap', 'v1', 'cfg', {data: {a: '1'}}), {group: '', resource: 'configmaps'}, moved)
  assert.equal(out, {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {name: 'cfg', namespace: 'shop-dr', labels: {app: 'shop'}, annotations: {note: 'kept'}},
    data: {a: '1'},
  })
})

const serviceCases: {name: string; spec: any; managed?: any; applied?: any; expect: any}[] = [
  {
    name: 'a ClusterIP Service loses its allocated IPs',
    spec: {type: 'ClusterIP', clusterIP: '10.96.0.7', clusterIPs: ['10.96.0.7'], ports: [{port: 80, protocol: 'TCP'}]},
    expect: {type: 'ClusterIP', ports: [{port: 80, protocol: 'TCP'}]},
  },
  {
    name: 'a headless Service keeps clusterIP None',
    spec: {clusterIP: 'None', clusterIPs: ['None'], ports: [{port: 2181, protocol: 'TCP'}]},
    expect: {clusterIP: 'None', clusterIPs: ['None'], ports: [{port: 2181, protocol: 'TCP'}]},
  },
  {
    name: 'a NodePort Service keeps the nodePort its managedFields say a user set, drops the assigned one',
    spec: {type: 'NodePort', clusterIP: '10.96.0.9', ports: [{port: 80, protocol: 'TCP', nodePort: 30080}, {port: 443, protocol: 'TCP', nodePort: 31999}]},
    managed: [{manager: 'kubectl-create', fieldsV1: {'f:spec': {'f:ports': {'k:{"port":80,"protocol":"TCP"}': {'f:nodePort': {}, 'f:port': {}}, 'k:{"port":443,"protocol":"TCP"}': {'f:port': {}}}}}}],
    expect: {type: 'NodePort', ports: [{port: 80, protocol: 'TCP', nodePort: 30080}, {port: 443, protocol: 'TCP'}]},
  },
  {
    name: 'a nodePort in kubectl\'s last-applied configuration is kept',
    spec: {type: 'NodePort', ports: [{port: 80, protocol: 'TCP', nodePort: 30081}]},
    applied: {spec: {ports: [{port: 80, nodePort: 30081}]}},
    expect: {type: 'NodePort', ports: [{port: 80, protocol: 'TCP', nodePort: 30081}]},
  },
  {
    name: 'with no record of who set it, a nodePort counts as assigned',
    spec: {type: 'NodePort', ports: [{port: 80, protocol: 'TCP', nodePort: 30082}]},
    expect: {type: 'NodePort', ports: [{port: 80, protocol: 'TCP'}]},
  },
]

for (const c of serviceCases) {
  test(`Service: ${c.name}`, () => {
    const svc: any = stored('Service', 'v1', 'web', {spec: c.spec})
    if (c.managed) svc.metadata.managedFields = c.managed
    if (c.applied) svc.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] = JSON.stringify(c.applied)
    const out: any = cleanForRestore(svc, {group: '', resource: 'services'}, same)
    assert.equal(out.spec, c.expect)
  })
}

test('isExplicitNodePort defaults the protocol to TCP like the server', () => {
  const svc: any = {metadata: {managedFields: [{fieldsV1: {'f:spec': {'f:ports': {'k:{"port":53,"protocol":"TCP"}': {'f:nodePort': {}}}}}}]}}
  assert.ok(isExplicitNodePort(svc, {port: 53, nodePort: 30053}))
  assert.not.ok(isExplicitNodePort(svc, {port: 53, protocol: 'UDP', nodePort: 30053}))
})

test('PVC: the old volume binding and bind annotations go, the class and size stay', () => {
  const pvc: any = stored('PersistentVolumeClaim', 'v1', 'data', {
    metadata: {annotations: {'pv.kubernetes.io/bind-completed': 'yes', 'pv.kubernetes.io/bound-by-controller': 'yes', 'volume.beta.kubernetes.io/storage-provisioner': 'x', 'volume.kubernetes.io/selected-node': 'n1'}},
    spec: {accessModes: ['ReadWriteOnce'], storageClassName: 'standard', volumeName: 'pvc-123', resources: {requests: {storage: '1Gi'}}},
  })
  const out: any = cleanForRestore(pvc, {group: '', resource: 'persistentvolumeclaims'}, same)
  assert.equal(out.spec, {accessModes: ['ReadWriteOnce'], storageClassName: 'standard', resources: {requests: {storage: '1Gi'}}})
  assert.is(out.metadata.annotations, undefined)
})

test('PVC with --volumes csi: dataSource names its VolumeSnapshot, the old dataSource and dataSourceRef are replaced; other claims untouched', () => {
  const spec = {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}, volumeName: 'pvc-old', dataSource: {kind: 'PersistentVolumeClaim', name: 'seed'}, dataSourceRef: {kind: 'PersistentVolumeClaim', name: 'seed'}}
  const ctx = {...same, claimSnapshots: {home: 'home-kubesnap-3-20261121t030000z'}}
  const home: any = cleanForRestore(stored('PersistentVolumeClaim', 'v1', 'home', {spec}), {group: '', resource: 'persistentvolumeclaims'}, ctx)
  assert.equal(home.spec, {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: '1Gi'}}, dataSource: {apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'home-kubesnap-3-20261121t030000z'}})
  const other: any = cleanForRestore(stored('PersistentVolumeClaim', 'v1', 'cache', {spec}), {group: '', resource: 'persistentvolumeclaims'}, ctx)
  assert.equal(other.spec.dataSource, spec.dataSource)
  assert.is(other.spec.volumeName, undefined)
})

test('Secret: a service-account token loses its token and uid; other Secrets keep their data', () => {
  const token: any = stored('Secret', 'v1', 'zuul-token', {
    type: 'kubernetes.io/service-account-token',
    metadata: {annotations: {'kubernetes.io/service-account.name': 'zuul', 'kubernetes.io/service-account.uid': 'old-uid'}},
    data: {token: 'c2VjcmV0', 'ca.crt': 'Y2E=', namespace: 'c2hvcA=='},
  })
  const out: any = cleanForRestore(token, {group: '', resource: 'secrets'}, same)
  assert.is(out.data, undefined)
  assert.equal(out.metadata.annotations, {'kubernetes.io/service-account.name': 'zuul'})
  const opaque: any = cleanForRestore(stored('Secret', 'v1', 'db', {type: 'Opaque', data: {password: 'cA=='}}), {group: '', resource: 'secrets'}, same)
  assert.equal(opaque.data, {password: 'cA=='})
})

test('ServiceAccount: references to generated token Secrets go, others stay', () => {
  const sa: any = stored('ServiceAccount', 'v1', 'zuul', {secrets: [{name: 'zuul-token-ab12c'}, {name: 'zuul-token'}], imagePullSecrets: [{name: 'registry-pull'}]})
  const out: any = cleanForRestore(sa, {group: '', resource: 'serviceaccounts'}, same)
  assert.equal(out.secrets, [{name: 'zuul-token'}])
  assert.equal(out.imagePullSecrets, [{name: 'registry-pull'}])
  const only: any = cleanForRestore(stored('ServiceAccount', 'v1', 'default', {secrets: [{name: 'default-token-xyz12'}]}), {group: '', resource: 'serviceaccounts'}, same)
  assert.not.ok('secrets' in only)
})

test('Job: the controller-uid selector and labels go', () => {
  const job: any = stored('Job', 'batch/v1', 'migrate', {spec: {
    selector: {matchLabels: {'controller-uid': 'u-9'}},
    template: {metadata: {labels: {'controller-uid': 'u-9', 'job-name': 'migrate', app: 'shop'}}, spec: {containers: []}},
  }})
  const out: any = cleanForRestore(job, {group: 'batch', resource: 'jobs'}, same)
  assert.is(out.spec.selector, undefined)
  assert.equal(out.spec.template.metadata.labels, {'job-name': 'migrate', app: 'shop'})
})

test('RoleBinding: service accounts of the old namespace follow --to-namespace; others do not', () => {
  const rb: any = stored('RoleBinding', 'rbac.authorization.k8s.io/v1', 'ops', {
    roleRef: {kind: 'Role', name: 'ops', apiGroup: 'rbac.authorization.k8s.io'},
    subjects: [{kind: 'ServiceAccount', name: 'zuul', namespace: 'shop'}, {kind: 'ServiceAccount', name: 'mon', namespace: 'monitoring'}, {kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io'}],
  })
  const out: any = cleanForRestore(rb, {group: 'rbac.authorization.k8s.io', resource: 'rolebindings'}, moved)
  assert.equal(out.subjects.map((s: any) => s.namespace), ['shop-dr', 'monitoring', undefined])
  const kept: any = cleanForRestore(rb, {group: 'rbac.authorization.k8s.io', resource: 'rolebindings'}, same)
  assert.equal(kept.subjects.map((s: any) => s.namespace), ['shop', 'monitoring', undefined])
})

test('cleaning does not modify the stored object', () => {
  const svc: any = stored('Service', 'v1', 'web', {spec: {clusterIP: '10.0.0.1', ports: [{port: 1, nodePort: 30001}]}})
  const before = JSON.stringify(svc)
  cleanForRestore(svc, {group: '', resource: 'services'}, moved)
  assert.is(JSON.stringify(svc), before)
})

test.run()
