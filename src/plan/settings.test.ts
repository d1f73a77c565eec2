import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {parsePlan} from './plan.js'
import {snapshotSettings, strategyOf} from './settings.js'

const PLAN_KEY = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'
const plan = parsePlan(`version: 1
namespace: shop
context: prod
output: backups
selection: {includeKinds: [secrets]}
volumes: {strategy: csi, claims: {cache: none, data: tar}, snapshotClass: fast}
dumps: [{name: db, workload: sts/db, command: dump}]
retention: {keepDaily: 7}
encryption: {recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]}
metrics: {pushgateway: http://127.0.0.1:9091}
signWith: keys/signing-key
`, '/etc/kubesnap/shop.yaml')

test('no plan, no flags: the defaults', () => {
  const s = snapshotSettings({})
  assert.equal(s.connection, {kubeconfig: undefined, context: undefined, namespace: undefined})
  assert.is(s.output, '.')
  assert.equal(s.volumes, {strategy: 'tar', claims: {}, helperImage: 'busybox:1.36', snapshotClass: undefined, snapshotTimeoutSeconds: 300, helperAsRoot: false, required: false, compression: 'gzip'})
  assert.equal(s.dumps, {dumps: [], preHooks: [], postHooks: []})
  assert.is(s.prune, undefined)
  assert.is(s.pushgateway, undefined)
})

test('the plan fills what flags leave out', () => {
  const s = snapshotSettings({}, plan)
  assert.equal(s.connection, {kubeconfig: undefined, context: 'prod', namespace: 'shop'})
  assert.is(s.output, '/etc/kubesnap/backups')
  assert.equal(s.includeKinds, ['secrets'])
  assert.equal([strategyOf(s.volumes, 'cache'), strategyOf(s.volumes, 'data'), strategyOf(s.volumes, 'other')], ['none', 'tar', 'csi'])
  assert.is(s.volumes.snapshotClass, 'fast')
  assert.is(s.dumps.dumps[0].name, 'db')
  assert.is(s.prune, undefined, 'retention applies only with --prune')
  assert.equal(s.encryption, {recipients: [PLAN_KEY], recipientsFiles: []})
  assert.is(s.pushgateway, 'http://127.0.0.1:9091')
  assert.is(s.signWith, '/etc/kubesnap/keys/signing-key')
})

test('flags win over the plan; --volumes drops the per-claim choices', () => {
  const s = snapshotSettings({namespace: 'other', output: '/tmp/x', volumes: 'tar', 'include-kinds': ['configmaps'], dump: ['web=deploy/web:dump'], 'encrypt-to': ['age1flag']}, plan)
  assert.is(s.connection.namespace, 'other')
  assert.is(s.output, '/tmp/x')
  assert.equal(s.volumes.claims, {})
  assert.is(strategyOf(s.volumes, 'cache'), 'tar')
  assert.equal(s.includeKinds, ['configmaps'])
  assert.equal(s.dumps.dumps.map((d) => d.name), ['web'])
  assert.equal(s.encryption, {recipients: ['age1flag'], recipientsFiles: []})
  assert.is(snapshotSettings({'sign-with': '/k'}, plan).signWith, '/k')
  assert.is(snapshotSettings({}).signWith, undefined)
})

test('volumes required: from --volumes-required or the plan\'s volumes.required', () => {
  const strict = parsePlan('version: 1\nnamespace: shop\nvolumes: {required: true}\n', '/etc/kubesnap/shop.yaml')
  assert.is(snapshotSettings({}).volumes.required, false)
  assert.is(snapshotSettings({}, plan).volumes.required, false)
  assert.is(snapshotSettings({}, strict).volumes.required, true)
  assert.is(snapshotSettings({'volumes-required': true}, plan).volumes.required, true)
  assert.throws(() => parsePlan('version: 1\nnamespace: shop\nvolumes: {required: sometimes}\n', '/p.yaml'), /volumes\.required/)
})

test('volume compression: gzip by default, from --compression over the plan\'s volumes.compression', () => {
  const none = parsePlan('version: 1\nnamespace: shop\nvolumes: {compression: none}\n', '/etc/kubesnap/shop.yaml')
  assert.is(snapshotSettings({}).volumes.compression, 'gzip')
  assert.is(snapshotSettings({}, none).volumes.compression, 'none')
  assert.is(snapshotSettings({compression: 'gzip'}, none).volumes.compression, 'gzip')
  assert.throws(() => parsePlan('version: 1\nnamespace: shop\nvolumes: {compression: zstd}\n', '/p.yaml'), /volumes\.compression must be one of gzip, none, not "zstd"/)
})

test('--prune takes --keep-* over the plan\'s retention, and needs one of them', () => {
  assert.equal(snapshotSettings({prune: true}, plan).prune, {keepDaily: 7})
  assert.equal(snapshotSettings({prune: true, 'keep-last': 2}, plan).prune, {keepLast: 2})
  assert.throws(() => snapshotSettings({prune: true}), /--prune needs a retention policy/)
  assert.throws(() => snapshotSettings({'keep-last': 2}), /apply with --prune/)
})

test('copyTo comes from the plan, and may not be the place the snapshot is written to', () => {
  const withCopy = (copyTo: string, output = 'backups') => parsePlan(`version: 1\nnamespace: shop\noutput: ${output}\ncopyTo: ${copyTo}\n`, '/etc/kubesnap/shop.yaml')
  assert.is(snapshotSettings({}, withCopy('s3://backups/kubesnap')).copyTo, 's3://backups/kubesnap')
  assert.is(snapshotSettings({output: '/var/backups'}, withCopy('/mnt/offsite')).copyTo, '/mnt/offsite')
  assert.is(snapshotSettings({}).copyTo, undefined)
  const same: Array<[string, {output?: string}, string?]> = [
    ['backups', {}],
    ['/etc/kubesnap/backups/', {}],
    ['/var/b', {output: '/var/b/.'}],
    ['s3://bkp/p/', {}, 's3://bkp/p'],
    ['s3://bkp/p', {output: 's3://bkp/p/'}],
  ]
  for (const [copyTo, flags, output] of same) {
    try {
      snapshotSettings(flags, withCopy(copyTo, output))
      assert.unreachable(`${copyTo} was taken`)
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.is((err as KubesnapError).exitCode, 2)
      assert.match((err as Error).message, /^The plan's copyTo \(.+\) is where the snapshot is written; give copyTo another directory or s3:\/\/ location\.$/)
    }
  }
  assert.is(snapshotSettings({}, withCopy('s3://bkp/p2', 's3://bkp/p')).copyTo, 's3://bkp/p2')
})

test.run()
