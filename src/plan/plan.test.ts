import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {loadPlan, parsePlan, PlanError} from './plan.js'

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/kubesnap.yaml')

/** The problems parsePlan reports for a text, or [] when it accepts it. */
function problems(text: string): string[] {
  try {
    parsePlan(text, 'plan.yaml')
    return []
  } catch (err) {
    if (!(err instanceof PlanError)) throw err
    assert.is(err.exitCode, 2)
    return err.problems
  }
}

test('the documented example plan is valid, with paths relative to its file', async () => {
  const plan = await loadPlan(EXAMPLE)
  assert.is(plan.namespace, 'shop')
  assert.is(plan.output, '/var/backups/kubesnap')
  assert.equal(plan.selection, {excludeKinds: ['cronjobs']})
  assert.equal(plan.volumes, {strategy: 'tar', claims: {'cache-redis-0': 'none'}})
  assert.equal(plan.dumps, [{name: 'db', target: {kind: 'statefulset', name: 'mariadb', container: 'mariadb'}, command: 'mysqldump --single-transaction --all-databases', load: 'mysql'}])
  assert.equal(plan.hooks.pre, [{target: {kind: 'deployment', name: 'shop'}, command: 'touch /data/.frozen'}])
  assert.equal(plan.retention, {keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 12})
  assert.is(plan.encryption.recipients.length, 1)
  assert.is(plan.metrics.pushgateway, 'http://127.0.0.1:9091')
  assert.equal(plan.restore, {storageClassMap: {standard: 'fast'}, resourceModifiers: resolve(dirname(EXAMPLE), 'resource-modifiers.yaml')})
})

test('relative paths resolve against the plan directory, not the working directory', () => {
  const plan = parsePlan('version: 1\nnamespace: a\noutput: backups\nkubeconfig: ../kc\nencryption:\n  recipientsFile: keys/r.txt\n', '/etc/kubesnap/plan.yaml')
  assert.is(plan.output, '/etc/kubesnap/backups')
  assert.is(plan.kubeconfig, '/etc/kc')
  assert.equal(plan.encryption.recipientsFiles, ['/etc/kubesnap/keys/r.txt'])
})

test('copyTo: an s3:// location is kept as written, a directory resolves against the plan directory', () => {
  assert.is(parsePlan('version: 1\nnamespace: a\ncopyTo: s3://backups/kubesnap\n', '/etc/kubesnap/plan.yaml').copyTo, 's3://backups/kubesnap')
  assert.is(parsePlan('version: 1\nnamespace: a\ncopyTo: offsite\n', '/etc/kubesnap/plan.yaml').copyTo, '/etc/kubesnap/offsite')
  assert.is(parsePlan('version: 1\nnamespace: a\n', '/etc/kubesnap/plan.yaml').copyTo, undefined)
})

test('signWith and trust: key lines are checked and kept with their place, files resolve against the plan directory', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl backup@shop'
  const plan = parsePlan(`version: 1\nnamespace: a\nsignWith: keys/sign\ntrust:\n  - ${key}\n  - keys/team.pub\n`, '/etc/kubesnap/plan.yaml')
  assert.is(plan.signWith, '/etc/kubesnap/keys/sign')
  assert.equal(plan.trust, {keys: [{value: key, at: '/etc/kubesnap/plan.yaml:5:5'}], files: ['/etc/kubesnap/keys/team.pub']})
  assert.equal(parsePlan('version: 1\nnamespace: a\n', 'p.yaml').trust, {keys: [], files: []})
})

test('restore.storageClassMap: class names to class names, as --map-storage-class', () => {
  const plan = parsePlan('version: 1\nnamespace: a\nrestore:\n  storageClassMap:\n    standard: fast\n    gp2: gp3.csi.example.com\n', 'p.yaml')
  assert.equal(plan.restore.storageClassMap, {standard: 'fast', gp2: 'gp3.csi.example.com'})
  assert.equal(parsePlan('version: 1\nnamespace: a\n', 'p.yaml').restore, {storageClassMap: {}})
})

test('restore.resourceModifiers: a path relative to the plan, for restore --config', () => {
  assert.equal(parsePlan('version: 1\nnamespace: a\nrestore:\n  resourceModifiers: dr/modifiers.yaml\n', '/etc/kubesnap/plan.yaml').restore, {storageClassMap: {}, resourceModifiers: '/etc/kubesnap/dr/modifiers.yaml'})
  assert.equal(parsePlan('version: 1\nnamespace: a\n', 'p.yaml').restore, {storageClassMap: {}})
})

const cases: [string, string, string[]][] = [
  ['minimal', 'version: 1\nnamespace: shop\n', []],
  ['empty file', '', ['plan.yaml: the plan is empty; it needs at least "version: 1" and "namespace:".']],
  ['not YAML', 'version: 1\nnamespace: [shop\n', ['plan.yaml:3:1: ']],
  ['a list at the top', '- a\n', ['plan.yaml:1:1: the plan must be a mapping of keys to values, not a list.']],
  ['no version, no namespace', 'output: x\n', ['plan.yaml:1:1: the plan has no version; add "version: 1" as its first line.', 'plan.yaml:1:1: the plan has no namespace; add "namespace: NAME".']],
  ['a future version', 'version: 2\nnamespace: a\n', ['plan.yaml:1:10: version must be 1, not 2.']],
  ['bad namespace', 'version: 1\nnamespace: Shop_1\n', ['plan.yaml:2:12: namespace must be a namespace name (lowercase letters, digits and "-", at most 63), not "Shop_1".']],
  ['typo at the top', 'version: 1\nnamespace: a\nouptut: /x\n', ['plan.yaml:3:1: ouptut is not a plan setting; did you mean output?']],
  ['typo in restore', 'version: 1\nnamespace: a\nrestore:\n  resourceModifier: m.yaml\n', ['plan.yaml:4:3: restore.resourceModifier is not a plan setting; did you mean restore.resourceModifiers?']],
  ['typo below', 'version: 1\nnamespace: a\nretention:\n  keepdaily: 3\n', ['plan.yaml:4:3: retention.keepdaily is not a plan setting; did you mean retention.keepDaily?']],
  ['unknown key, no near match', 'version: 1\nnamespace: a\nmetrics:\n  statsd: x\n', ['plan.yaml:4:3: metrics.statsd is not a plan setting; the settings here are pushgateway.']],
  ['empty value', 'version: 1\nnamespace: a\noutput:\n', ['plan.yaml:3:1: output has no value; give one or remove the line.']],
  ['copyTo as a list', 'version: 1\nnamespace: a\ncopyTo: [s3://a/b]\n', ['plan.yaml:3:9: copyTo must be a non-empty string, not a list.']],
  ['typo of copyTo', 'version: 1\nnamespace: a\ncopyto: s3://a/b\n', ['plan.yaml:3:1: copyto is not a plan setting; did you mean copyTo?']],
  ['a word for a number', 'version: 1\nnamespace: a\nretention:\n  keepLast: three\n', ['plan.yaml:4:13: retention.keepLast must be a whole number of 0 or more, not "three".']],
  ['retention that keeps nothing', 'version: 1\nnamespace: a\nretention:\n  keepLast: 0\n', ['plan.yaml:4:3: retention keeps nothing; give at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly above 0, or remove it.']],
  ['a strategy that does not exist', 'version: 1\nnamespace: a\nvolumes:\n  strategy: rsync\n  claims:\n    data: snapshot\n', ['plan.yaml:4:13: volumes.strategy must be one of tar, csi, none, not "rsync".', 'plan.yaml:6:11: volumes.claims.data must be one of tar, csi, none, not "snapshot".']],
  ['kinds as a string', 'version: 1\nnamespace: a\nselection:\n  includeKinds: secrets\n', ['plan.yaml:4:17: selection.includeKinds must be a list (lines starting with "- "), not "secrets".']],
  ['a dump without command, a bad workload', 'version: 1\nnamespace: a\ndumps:\n  - name: db\n    workload: mariadb\n', ['plan.yaml:5:15: dumps[0].workload must be KIND/NAME with KIND statefulset, deployment or pod (e.g. statefulset/mariadb), not "mariadb".', 'plan.yaml:4:5: dumps[0] has no command; a dump needs name, workload and command.']],
  ['two dumps with one name', 'version: 1\nnamespace: a\ndumps:\n  - {name: db, workload: sts/db, command: a}\n  - {name: db, workload: sts/db, command: b}\n', ['plan.yaml:5:5: dumps[1]: the dump name db is used twice; give each dump its own name.']],
  ['container inside workload', 'version: 1\nnamespace: a\nhooks:\n  pre:\n    - workload: sts/db,container=x\n      command: sync\n', ['plan.yaml:5:17: hooks.pre[0].workload must be KIND/NAME (e.g. statefulset/mariadb); give the container with its own "container:" key.']],
  ['trust: an rsa key, a cut key, not a list', 'version: 1\nnamespace: a\ntrust:\n  - ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n', ['plan.yaml:4:5: trust[0]: kubesnap signs with ssh-ed25519 keys only; give an ssh-ed25519 public key.', 'plan.yaml:5:5: trust[1]: the ssh-ed25519 public key is malformed (cut short).']],
  ['trust as a string', 'version: 1\nnamespace: a\ntrust: keys.pub\n', ['plan.yaml:3:8: trust must be a list (lines starting with "- "), not "keys.pub".']],
  ['pushgateway without scheme', 'version: 1\nnamespace: a\nmetrics:\n  pushgateway: pushgw:9091\n', ['plan.yaml:4:16: metrics.pushgateway must be an http:// or https:// URL, not "pushgw:9091".']],
  ['storageClassMap not a mapping', 'version: 1\nnamespace: a\nrestore:\n  storageClassMap: standard=fast\n', ['plan.yaml:4:20: restore.storageClassMap must map old StorageClass names to new ones (e.g. "standard: fast"), not "standard=fast".']],
  ['storageClassMap bad names', 'version: 1\nnamespace: a\nrestore:\n  storageClassMap:\n    Standard: fast\n    slow: Fast_1\n', ['plan.yaml:5:5: restore.storageClassMap: "Standard" is not a StorageClass name; use the archived class\'s name.', 'plan.yaml:6:11: restore.storageClassMap.slow must be a StorageClass name (lowercase letters, digits, "-" and "."), not "Fast_1".']],
  ['a key twice', 'version: 1\nnamespace: a\nnamespace: b\n', ['plan.yaml:3:1: ']],
]

for (const [name, text, expected] of cases) {
  test(`plan problems: ${name}`, () => {
    const got = problems(text)
    assert.is(got.length, expected.length, got.join('\n'))
    // A YAML syntax message comes from the parser: check its place, and that it says so and what to do.
    expected.forEach((e, i) => (e.endsWith(': ') ? assert.ok(got[i].startsWith(`${e}the file is not valid YAML (`) && got[i].endsWith('); fix its syntax.'), got[i]) : assert.is(got[i], e)))
  })
}

test('several problems make one error listing each; one problem is the message itself', () => {
  try {
    parsePlan('version: 1\nnamespace: a\nouptut: x\nretention: 3\n', 'p.yaml')
    assert.unreachable()
  } catch (err) {
    assert.instance(err, PlanError)
    assert.is((err as Error).message.split('\n')[0], 'p.yaml has 2 problems; fix them and run again:')
  }
  try {
    parsePlan('version: 1\nnamespace: a\nouptut: x\n', 'p.yaml')
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'p.yaml:3:1: ouptut is not a plan setting; did you mean output?')
  }
})

test('a missing plan file is a usage error that says what to give', async () => {
  try {
    await loadPlan('/nonexistent/kubesnap.yaml')
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'The plan /nonexistent/kubesnap.yaml does not exist; give the path of a kubesnap.yaml with --config.')
    assert.is((err as {exitCode: number}).exitCode, 2)
  }
})

test.run()
