import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {addNeeds, noNeeds, podSpecOf, targetProblems, type TargetFacts, type TargetNeeds} from './preflight.js'

const PVC = {group: '', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim'}
const STS = {group: 'apps', resource: 'statefulsets', kind: 'StatefulSet'}
const CRON = {group: 'batch', resource: 'cronjobs', kind: 'CronJob'}
const SVC = {group: '', resource: 'services', kind: 'Service'}

/** The needs of softwarefactory-like objects: a claim, a StatefulSet with a template, a CronJob with a pull secret, a NodePort Service. */
function needs(): TargetNeeds {
  const n = noNeeds()
  addNeeds(n, {metadata: {name: 'logs'}, spec: {storageClassName: 'standard'}} as any, PVC)
  addNeeds(n, {metadata: {name: 'zookeeper'}, spec: {template: {spec: {serviceAccountName: 'zk'}}, volumeClaimTemplates: [{metadata: {name: 'data'}, spec: {storageClassName: 'standard'}}]}} as any, STS)
  addNeeds(n, {metadata: {name: 'backup'}, spec: {jobTemplate: {spec: {template: {spec: {serviceAccountName: 'default', imagePullSecrets: [{name: 'registry'}]}}}}}} as any, CRON)
  addNeeds(n, {metadata: {name: 'gateway'}, spec: {type: 'NodePort', ports: [{port: 80, nodePort: 30080}, {port: 443}]}} as any, SVC)
  n.restored.serviceAccounts.add('zk')
  n.restored.secrets.add('registry')
  return n
}

const everything = (): TargetFacts => ({storageClasses: new Set(['standard', 'fast']), serviceAccounts: new Map(), secrets: new Map(), nodePorts: new Map()})
const ctx = {namespace: 'sf-dr', assignNodePorts: false, sameCluster: false}

test('addNeeds: classes of claims and templates, accounts other than default, pull secrets, chosen node ports', () => {
  const n = needs()
  assert.equal(n.storageClasses.map((u) => `${u.storageClass}: ${u.where}`), ['standard: claim logs', 'standard: StatefulSet zookeeper\'s volumeClaimTemplate data'])
  assert.equal(n.serviceAccounts, [{name: 'zk', by: 'StatefulSet zookeeper'}])
  assert.equal(n.pullSecrets, [{name: 'registry', by: 'CronJob backup'}])
  assert.equal(n.nodePorts, [{port: 30080, service: 'gateway'}])
  assert.is(podSpecOf({spec: {x: 1}} as any, {group: '', resource: 'pods'})?.x, 1)
  assert.is(podSpecOf({spec: {}} as any, {group: '', resource: 'configmaps'}), undefined)
})

test('targetProblems: each mismatch named once with what fixes it; what the identity cannot see is a warning', () => {
  const cases: Array<{name: string; needs?: (n: TargetNeeds) => void; facts?: (f: TargetFacts) => void; ctx?: Partial<typeof ctx>; problems: RegExp[]; warnings: RegExp[]}> = [
    {name: 'all there', problems: [], warnings: []},
    {
      name: 'a class the target lacks: one problem naming every user, the flag and what the cluster has',
      facts: (f) => (f.storageClasses = new Set(['fast'])),
      problems: [/^StorageClass standard \(claim logs, StatefulSet zookeeper's volumeClaimTemplate data\) does not exist in this cluster: map it with --map-storage-class standard=NEW \(this cluster has fast\)\.$/],
      warnings: [],
    },
    {
      name: 'StorageClasses not readable, another cluster: a warning that says so',
      facts: (f) => (f.storageClasses = undefined),
      problems: [],
      warnings: [/may not list StorageClasses.*cannot tell whether StorageClass standard exists here.*--map-storage-class OLD=NEW/],
    },
    {name: 'StorageClasses not readable, the same cluster: nothing to say', facts: (f) => (f.storageClasses = undefined), ctx: {sameCluster: true}, problems: [], warnings: []},
    {
      name: 'an account left out by the selection',
      needs: (n) => {
        n.restored.serviceAccounts.clear()
        n.leftOut.serviceAccounts.add('zk')
      },
      facts: (f) => f.serviceAccounts.set('zk', false),
      problems: [/^ServiceAccount zk \(used by StatefulSet zookeeper\) is neither restored nor present in sf-dr: the archive has it but the selection leaves it out: add --resource serviceaccount\/zk/],
      warnings: [],
    },
    {
      name: 'a pull secret the archive lacks',
      needs: (n) => n.restored.secrets.clear(),
      facts: (f) => f.secrets.set('registry', false),
      problems: [/^image-pull Secret registry \(used by CronJob backup\) is neither restored nor present in sf-dr: the archive does not have it: create it in sf-dr first \(kubectl -n sf-dr create secret docker-registry registry …\)\.$/],
      warnings: [],
    },
    {name: 'a pull secret not restored but present', needs: (n) => n.restored.secrets.clear(), facts: (f) => f.secrets.set('registry', true), problems: [], warnings: []},
    {name: 'a pull secret not readable', needs: (n) => n.restored.secrets.clear(), facts: (f) => f.secrets.set('registry', undefined), problems: [], warnings: [/may not read image-pull Secret registry in sf-dr \(CronJob backup uses it\)/]},
    {
      name: 'a chosen node port taken by another Service',
      facts: (f) => f.nodePorts!.set(30080, 'sf/gateway'),
      problems: [/^Service gateway chose node port 30080, which sf\/gateway holds in this cluster: free it, or pass --assign-node-ports/],
      warnings: [],
    },
    {name: 'the port held by the Service itself', facts: (f) => f.nodePorts!.set(30080, 'sf-dr/gateway'), problems: [], warnings: []},
    {name: 'a taken port with --assign-node-ports', facts: (f) => f.nodePorts!.set(30080, 'sf/gateway'), ctx: {assignNodePorts: true}, problems: [], warnings: []},
    {name: 'node ports not visible (namespace-only identity)', facts: (f) => (f.nodePorts = undefined), problems: [], warnings: []},
    {
      name: 'all at once',
      needs: (n) => n.restored.secrets.clear(),
      facts: (f) => {
        f.storageClasses = new Set()
        f.secrets.set('registry', false)
        f.nodePorts!.set(30080, 'other/web')
      },
      problems: [/^StorageClass standard .*no StorageClass\)\.$/, /^image-pull Secret registry/, /^Service gateway chose node port 30080/],
      warnings: [],
    },
  ]
  for (const c of cases) {
    const n = needs()
    c.needs?.(n)
    const f = everything()
    c.facts?.(f)
    const result = targetProblems(n, f, {...ctx, ...c.ctx})
    assert.is(result.problems.length, c.problems.length, `${c.name}: ${result.problems.join(' | ')}`)
    c.problems.forEach((p, i) => assert.match(result.problems[i], p, c.name))
    assert.is(result.warnings.length, c.warnings.length, `${c.name}: ${result.warnings.join(' | ')}`)
    c.warnings.forEach((w, i) => assert.match(result.warnings[i], w, c.name))
  }
})

test.run()
