import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {KubernetesObject} from '@kubernetes/client-node'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {loadFixtureDocuments} from '../../fixtures/index.js'
import {PlanError} from '../plan/plan.js'
import {applyResourceModifiers, compileGlob, loadResourceModifiers, ModifierError, parseResourceModifiers, patchValue} from './modifiers.js'

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/resource-modifiers.yaml')

/** The problems a file is refused for, or [] when it is accepted. */
function problems(text: string): string[] {
  try {
    parseResourceModifiers(text, 'mods.yaml')
    return []
  } catch (err) {
    if (!(err instanceof PlanError)) throw err
    assert.is(err.exitCode, 2)
    return err.problems
  }
}

const pvc = (name: string, labels: Record<string, string>, storageClassName: string): KubernetesObject =>
  ({apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name, namespace: 'bar', labels}, spec: {storageClassName, resources: {requests: {storage: '1Gi'}}}} as KubernetesObject)
const withSpec = (o: KubernetesObject, spec: object): KubernetesObject => ({...o, spec: {...(o as {spec: object}).spec, ...spec}} as KubernetesObject)
const deployment = (name: string): KubernetesObject => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name, namespace: 'foo'},
  spec: {template: {spec: {containers: [{name: 'app', image: 'registry.old/app:1'}]}}},
} as KubernetesObject)
const pod = (annotations: Record<string, string>): KubernetesObject =>
  ({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'p', namespace: 'ns1', annotations}, spec: {containers: [{name: 'c', image: 'busybox'}]}} as KubernetesObject)
const configMap = (labels: Record<string, string>): KubernetesObject =>
  ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cm', namespace: 'fake', labels}, data: {mode: 'prod'}} as KubernetesObject)

// Velero's documented examples (site/content/docs/main/restore-resource-modifiers.md), one row each way.
const TEMPLATE = `version: v1
resourceModifierRules:
- conditions:
     groupResource: persistentvolumeclaims
     resourceNameRegex: "^mysql.*$"
     namespaces:
     - bar
     - foo
     labelSelector:
        matchLabels:
           foo: bar
  patches:
  - operation: replace
    path: "/spec/storageClassName"
    value: "premium"
  - operation: remove
    path: "/metadata/labels/test"
`
const TEST_OP = `version: v1
resourceModifierRules:
- conditions:
    groupResource: persistentvolumeclaims
    resourceNameRegex: ".*"
    namespaces:
    - bar
    - foo
  patches:
  - operation: test
    path: "/spec/storageClassName"
    value: "premium"
  - operation: replace
    path: "/spec/storageClassName"
    value: "standard"
`
const OTHER = `version: v1
resourceModifierRules:
- conditions:
    groupResource: deployments.apps
    resourceNameRegex: "^test-.*$"
    namespaces:
    - bar
    - foo
  patches:
    # Dealing with complex values by escaping the yaml
  - operation: add
    path: "/spec/template/spec/containers/0"
    value: "{\\"name\\": \\"nginx\\", \\"image\\": \\"nginx:1.14.2\\", \\"ports\\": [{\\"containerPort\\": 80}]}"
    # Copy Operator
  - operation: copy
    from: "/spec/template/spec/containers/0"
    path: "/spec/template/spec/containers/1"
`
const MERGE = `version: v1
resourceModifierRules:
- conditions:
    groupResource: pods
    namespaces:
    - ns1
  mergePatches:
  - patchData: |
      {
        "metadata": {
          "annotations": {
            "foo": null
          }
        }
      }
`
const MATCHES = (groupResource: string) => `version: v1
resourceModifierRules:
- conditions:
    groupResource: ${groupResource}
    matches:
    - path: "/spec/storageClassName"
      value: "premium"
  mergePatches:
  - patchData: |
      {
        "metadata": {
          "annotations": {
            "foo": null
          }
        }
      }
`
const WILDCARD = (groupResource: string) => `version: v1
resourceModifierRules:
- conditions:
    groupResource: "${groupResource}"
    namespaces: [fake]
  mergePatches:
  - patchData: '{"metadata":{"labels":{"a":"c"}}}'
`

const nginx = {name: 'nginx', image: 'nginx:1.14.2', ports: [{containerPort: 80}]}
const annotated = (o: KubernetesObject, annotations?: Record<string, string>): KubernetesObject => {
  const metadata = {...o.metadata}
  if (annotations) metadata.annotations = annotations
  else delete metadata.annotations
  return {...o, metadata}
}

/** [name, file, object, {groupResource, source namespace}, expected object, rules applied] */
const cases: [string, string, KubernetesObject, [string, string], KubernetesObject, number[]][] = [
  ['template: a matching claim gets premium and loses label test', TEMPLATE, pvc('mysql-0', {foo: 'bar', test: 'x'}, 'standard'), ['persistentvolumeclaims', 'bar'],
    pvc('mysql-0', {foo: 'bar'}, 'premium'), [0]],
  ['template: another namespace is left alone', TEMPLATE, pvc('mysql-0', {foo: 'bar', test: 'x'}, 'standard'), ['persistentvolumeclaims', 'baz'],
    pvc('mysql-0', {foo: 'bar', test: 'x'}, 'standard'), []],
  ['template: a name the regex does not match is left alone', TEMPLATE, pvc('pg-0', {foo: 'bar', test: 'x'}, 'standard'), ['persistentvolumeclaims', 'foo'],
    pvc('pg-0', {foo: 'bar', test: 'x'}, 'standard'), []],
  ['template: labels the selector does not match are left alone', TEMPLATE, pvc('mysql-0', {foo: 'baz', test: 'x'}, 'standard'), ['persistentvolumeclaims', 'bar'],
    pvc('mysql-0', {foo: 'baz', test: 'x'}, 'standard'), []],
  ['template: another resource is left alone', TEMPLATE, pvc('mysql-0', {foo: 'bar', test: 'x'}, 'standard'), ['persistentvolumes', 'bar'],
    pvc('mysql-0', {foo: 'bar', test: 'x'}, 'standard'), []],
  ['test operation: premium becomes standard', TEST_OP, pvc('data', {}, 'premium'), ['persistentvolumeclaims', 'foo'], pvc('data', {}, 'standard'), [0]],
  ['test operation fails: the rule is skipped, not an error', TEST_OP, pvc('data', {}, 'fast'), ['persistentvolumeclaims', 'foo'], pvc('data', {}, 'fast'), []],
  ['other examples: escaped JSON value added, then copied', OTHER, deployment('test-web'), ['deployments.apps', 'foo'],
    withSpec(deployment('test-web'), {template: {spec: {containers: [nginx, nginx, {name: 'app', image: 'registry.old/app:1'}]}}}), [0]],
  ['other examples: name not matching', OTHER, deployment('web'), ['deployments.apps', 'foo'], deployment('web'), []],
  ['merge patch: annotation foo removed', MERGE, pod({foo: 'x', keep: 'y'}), ['pods', 'ns1'], pod({keep: 'y'}), [0]],
  ['merge patch: another namespace', MERGE, pod({foo: 'x'}), ['pods', 'ns2'], pod({foo: 'x'}), []],
  ['matches: premium claim loses annotation foo', MATCHES('persistentvolumeclaims'), annotated(pvc('d', {}, 'premium'), {foo: 'x'}), ['persistentvolumeclaims', 'any'],
    annotated(pvc('d', {}, 'premium'), {}), [0]],
  ['matches: another class is left alone', MATCHES('persistentvolumeclaims'), annotated(pvc('d', {}, 'fast'), {foo: 'x'}), ['persistentvolumeclaims', 'any'],
    annotated(pvc('d', {}, 'fast'), {foo: 'x'}), []],
  // The docs' own matches example names persistentvolumeclaims.storage.k8s.io; claims are in the core group, so as in Velero it matches none.
  ['matches: the docs\' groupResource matches no core claim', MATCHES('persistentvolumeclaims.storage.k8s.io'), annotated(pvc('d', {}, 'premium'), {foo: 'x'}), ['persistentvolumeclaims', 'any'],
    annotated(pvc('d', {}, 'premium'), {foo: 'x'}), []],
  ['wildcard * matches a core type', WILDCARD('*'), configMap({a: 'b'}), ['configmaps', 'fake'], configMap({a: 'c'}), [0]],
  ['wildcard * does not match a grouped type', WILDCARD('*'), configMap({a: 'b'}), ['deployments.apps', 'fake'], configMap({a: 'b'}), []],
  ['wildcard *.apps matches the apps group', WILDCARD('*.apps'), configMap({a: 'b'}), ['fake.apps', 'fake'], configMap({a: 'c'}), [0]],
  ['wildcard *.apps does not match batch', WILDCARD('*.apps'), configMap({a: 'b'}), ['jobs.batch', 'fake'], configMap({a: 'b'}), []],
  ['wildcard *.* matches every one-word group', WILDCARD('*.*'), configMap({a: 'b'}), ['jobs.batch', 'fake'], configMap({a: 'c'}), [0]],
  ['wildcard ** matches a dotted group', WILDCARD('**'), configMap({a: 'b'}), ['ingresses.networking.k8s.io', 'fake'], configMap({a: 'c'}), [0]],
  ['a rule that changes nothing is not counted', WILDCARD('*'), configMap({a: 'c'}), ['configmaps', 'fake'], configMap({a: 'c'}), []],
  ['conditions see the object before any rule; patches add up', `version: v1
resourceModifierRules:
- conditions: {groupResource: configmaps, matches: [{path: /metadata/labels/a, value: b}]}
  patches: [{operation: replace, path: /metadata/labels/a, value: c}]
- conditions: {groupResource: configmaps, matches: [{path: /metadata/labels/a, value: b}]}
  patches: [{operation: add, path: /data/replicas, value: "3"}, {operation: add, path: /data/text, value: "\\"3\\""}]
- conditions: {groupResource: configmaps, matches: [{path: /metadata/labels/a, value: c}]}
  patches: [{operation: add, path: /data/never, value: x}]
`, configMap({a: 'b'}), ['configmaps', 'fake'], {...configMap({a: 'c'}), data: {mode: 'prod', replicas: 3, text: '3'}} as KubernetesObject, [0, 1]],
  ['matchExpressions', `version: v1
resourceModifierRules:
- conditions:
    groupResource: configmaps
    labelSelector:
      matchExpressions:
      - {key: a, operator: In, values: [b, x]}
      - {key: gone, operator: DoesNotExist}
  mergePatches: [{patchData: "data: {mode: dr}"}]
`, configMap({a: 'b'}), ['configmaps', 'fake'], {...configMap({a: 'b'}), data: {mode: 'dr'}} as KubernetesObject, [0]],
]

for (const [name, file, input, [groupResource, namespace], expected, applied] of cases) {
  test(`modifiers: ${name}`, () => {
    const before = structuredClone(input)
    const result = applyResourceModifiers(parseResourceModifiers(file, 'mods.yaml'), input, {groupResource, namespace})
    assert.equal(result.object, expected)
    assert.equal(result.applied, applied)
    assert.equal(input, before, 'the input object is not changed')
  })
}

test('the README\'s example file changes the shop fixture as it says, and nothing else', async () => {
  const mods = await loadResourceModifiers(EXAMPLE)
  const resources: Record<string, string> = {Deployment: 'deployments.apps', ConfigMap: 'configmaps', Service: 'services'}
  const changed: string[] = []
  for (const object of await loadFixtureDocuments('shop')) {
    const groupResource = resources[object.kind!] ?? `${object.kind!.toLowerCase()}s`
    const {object: after, applied} = applyResourceModifiers(mods, object, {groupResource, namespace: 'shop'})
    if (applied.length === 0) {
      assert.equal(after, object)
      continue
    }
    changed.push(`${object.kind}/${object.metadata!.name} ${applied.join(',')}`)
    const a = after as any
    if (object.kind === 'Deployment') assert.equal(a.spec.template.spec.containers.map((c: any) => c.image), ['registry.dr.example/library/busybox:1.36', 'gcr.io/distroless/static:nonroot'])
    if (object.kind === 'ConfigMap') assert.equal(a.data, {...(object as any).data, DATABASE_HOST: 'db.dr.example'})
    if (object.kind === 'Service') assert.equal(a.metadata.labels, {...object.metadata!.labels, site: 'dr'})
  }
  assert.equal(changed.sort(), ['ConfigMap/web-config 1', 'Deployment/web 0', 'Service/web 2'])
  // From another namespace, the deployment rule does not apply.
  const web = (await loadFixtureDocuments('shop')).find((o) => o.kind === 'Deployment')!
  assert.equal(applyResourceModifiers(mods, web, {groupResource: 'deployments.apps', namespace: 'shop-dr'}).applied, [])
})

test('a patch whose path does not exist fails with the rule named, not silently', () => {
  const mods = parseResourceModifiers(TEMPLATE, 'mods.yaml')
  try {
    applyResourceModifiers(mods, pvc('mysql-0', {foo: 'bar'}, 'standard'), {groupResource: 'persistentvolumeclaims', namespace: 'bar'})
    assert.unreachable('should have thrown')
  } catch (err) {
    assert.instance(err, ModifierError)
    assert.is((err as Error).message, 'resourceModifierRules[0] patches[1] (remove /metadata/labels/test) cannot be applied: the path does not exist in this object; add a test operation or a matches condition so the rule only applies where the path exists')
  }
})

test('a value one object received is not changed by the patches after it, for the next object', () => {
  const mods = parseResourceModifiers(`version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps}
  patches:
  - {operation: add, path: /spec/template/spec/containers/0, value: {name: sidecar, image: a}}
  - {operation: replace, path: /spec/template/spec/containers/0/image, value: b}
  - {operation: add, path: /spec/template/spec/containers/0/args, value: [x]}
`, 'mods.yaml')
  for (const name of ['one', 'two']) {
    const {object} = applyResourceModifiers(mods, deployment(name), {groupResource: 'deployments.apps', namespace: 'foo'})
    assert.equal((object as any).spec.template.spec.containers[0], {name: 'sidecar', image: 'b', args: ['x']})
  }
  assert.equal(mods.rules[0].patches![0], {op: 'add', path: '/spec/template/spec/containers/0', value: {name: 'sidecar', image: 'a'}})
})

test('patch values are read as Velero reads its string field', () => {
  const rows: [unknown, unknown][] = [
    ['premium', 'premium'], ['"3"', '3'], ['3', 3], [3, 3], ['1.5e3', 1500], ['true', true], ['False', false], [true, true],
    ['null', null], ['', ''], [null, ''], ['{"a": [1]}', {a: [1]}], ['[1, 2]', [1, 2]], ['"null"', 'null'], ['1.2.3', '1.2.3'],
    [{a: 1}, {a: 1}], ['a "quoted" word', 'a "quoted" word'],
  ]
  for (const [raw, value] of rows) assert.equal(patchValue(raw), value, JSON.stringify(raw))
})

test('globs as gobwas/glob reads them (Velero\'s groupResource and namespaces)', () => {
  const rows: [string, string | undefined, string, boolean][] = [
    ['*', '.', 'configmaps', true], ['*', '.', 'deployments.apps', false], ['*.apps', '.', 'deployments.apps', true],
    ['*.*', '.', 'ingresses.networking.k8s.io', false], ['**', '.', 'ingresses.networking.k8s.io', true],
    ['{deployments,statefulsets}.apps', '.', 'statefulsets.apps', true], ['{deployments,statefulsets}.apps', '.', 'replicasets.apps', false],
    ['config?aps', '.', 'configmaps', true], ['[cs]*', '.', 'secrets', true], ['[!cs]*', '.', 'secrets', false],
    ['shop-*', undefined, 'shop-dr', true], ['shop-*', undefined, 'shop', false], ['a\\*', undefined, 'a*', true], ['a\\*', undefined, 'ab', false],
    ['shop', undefined, 'shop-dr', false],
  ]
  for (const [glob, sep, subject, matches] of rows) assert.is(compileGlob(glob, sep).test(subject), matches, `${glob} ${subject}`)
  assert.throws(() => compileGlob('{a,b'), /not closed/)
  assert.throws(() => compileGlob('[ab'), /not closed/)
})

const refusals: [string, string, string[]][] = [
  ['not YAML', 'version: v1\nresourceModifierRules: [\n', ['mods.yaml:3:1: the file is not valid YAML']],
  ['a list', '- a\n', ['mods.yaml:1:1: the file must be a mapping with version: v1 and resourceModifierRules, as Velero\'s resource modifiers are.']],
  ['no version', 'resourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: remove, path: /x}]\n', ['mods.yaml:1:1: the file has no version; add "version: v1" as its first line.']],
  ['version v2', 'version: v2\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: remove, path: /x}]\n', ['mods.yaml:1:10: version "v2" is not supported; use version: v1.']],
  ['no rules', 'version: v1\nresourceModifierRules: []\n', ['mods.yaml:2:24: resourceModifierRules must be a non-empty list of rules (lines starting with "- conditions:").']],
  ['unknown key, a typo', 'version: v1\nresourceModifierRule: []\n', ['mods.yaml:2:1: resourceModifierRule is not a resource-modifier field; did you mean resourceModifierRules?', 'mods.yaml:1:1: resourceModifierRules must be a non-empty list of rules (lines starting with "- conditions:").']],
  ['unknown key, no near match', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods, color: red}\n  patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:3:37: resourceModifierRules[0].conditions.color is not a resource-modifier field; the fields here are groupResource, resourceNameRegex, namespaces, labelSelector, matches.']],
  ['strategic patches, named with the rule', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: remove, path: /x}]\n- conditions: {groupResource: pods}\n  strategicPatches:\n  - patchData: "{}"\n',
    ['mods.yaml:7:3: resourceModifierRules[1] uses strategicPatches, which kubesnap does not apply: a strategic merge needs each type\'s schema (which lists merge by which key) and a guess would silently corrupt lists; write it as patches (JSON Patch, e.g. replace /spec/template/spec/containers/0/image) or mergePatches.']],
  ['two kinds of patch', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: remove, path: /x}]\n  mergePatches: [{patchData: "{}"}]\n',
    ['mods.yaml:3:3: resourceModifierRules[0] has patches and mergePatches; a rule takes only one of patches, mergePatches and strategicPatches, so split it into two rules.']],
  ['no patch', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n', ['mods.yaml:3:3: resourceModifierRules[0] has no patches; give patches (JSON Patch) or mergePatches (JSON merge patch).']],
  ['no groupResource', 'version: v1\nresourceModifierRules:\n- conditions: {namespaces: [a]}\n  patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:3:15: resourceModifierRules[0].conditions.groupResource must name the resource as kubectl does (e.g. persistentvolumeclaims, deployments.apps, *.apps), not nothing.']],
  ['no conditions', 'version: v1\nresourceModifierRules:\n- patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:3:3: resourceModifierRules[0].conditions is missing; give at least groupResource (e.g. deployments.apps, or * for every core type).']],
  ['bad regex', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods, resourceNameRegex: "(a"}\n  patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:3:56: resourceModifierRules[0].conditions.resourceNameRegex is not a valid regular expression (Invalid regular expression: /(a/: Unterminated group); fix it, e.g. "^mysql-.*$".']],
  ['bad glob', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: "{a,b"}\n  patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:3:31: resourceModifierRules[0].conditions.groupResource "{a,b" is not a valid glob (a "{" is not closed); fix the pattern.']],
  ['operation in capitals', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: Replace, path: /x, value: a}]\n',
    ['mods.yaml:4:25: resourceModifierRules[0].patches[0].operation "Replace" must be written in lowercase: replace.']],
  ['unknown operation', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: merge, path: /x, value: a}]\n',
    ['mods.yaml:4:25: resourceModifierRules[0].patches[0].operation must be one of add, remove, replace, move, copy, test, not "merge".']],
  ['path not a pointer', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: remove, path: spec.x}]\n',
    ['mods.yaml:4:39: resourceModifierRules[0].patches[0].path must be a JSON pointer such as /spec/replicas, not "spec.x".']],
  ['replace without value', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: replace, path: /x}]\n',
    ['mods.yaml:4:13: resourceModifierRules[0].patches[0] (replace) has no value; give one (in quotes as Velero reads it, e.g. "premium", "3", "{\\"a\\": 1}").']],
  ['copy without from', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: copy, path: /x}]\n',
    ['mods.yaml:4:13: resourceModifierRules[0].patches[0] (copy) needs from, a JSON pointer to the value to copy, not nothing.']],
  ['value that is broken JSON', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: add, path: /x, value: "{a"}]\n',
    ['mods.yaml:4:47: resourceModifierRules[0].patches[0].value starts like JSON but is not valid JSON']],
  ['merge patch that is not a mapping', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  mergePatches: [{patchData: "[1]"}]\n',
    ['mods.yaml:4:30: resourceModifierRules[0].mergePatches[0].patchData must be a mapping such as {"metadata": {"labels": {"tier": "dr"}}}, not a list.']],
  ['label operator', 'version: v1\nresourceModifierRules:\n- conditions:\n    groupResource: pods\n    labelSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}\n  patches: [{operation: remove, path: /x}]\n',
    ['mods.yaml:5:40: resourceModifierRules[0].conditions.labelSelector.matchExpressions[0] uses Exists, which takes no values; remove them.']],
  ['every problem at once', 'version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  patches: [{operation: Add, path: /x, value: a}]\n- conditions: {}\n  patches: [{operation: remove, path: x}]\n', [
    'mods.yaml:4:25: resourceModifierRules[0].patches[0].operation "Add" must be written in lowercase: add.',
    'mods.yaml:5:15: resourceModifierRules[1].conditions.groupResource must name the resource as kubectl does (e.g. persistentvolumeclaims, deployments.apps, *.apps), not nothing.',
    'mods.yaml:6:39: resourceModifierRules[1].patches[0].path must be a JSON pointer such as /spec/replicas, not "x".',
  ]],
]

for (const [name, file, expected] of refusals) {
  test(`refused: ${name}`, () => {
    const got = problems(file)
    assert.is(got.length, expected.length, got.join('\n'))
    got.forEach((p, i) => assert.ok(p.startsWith(expected[i]), `${p}\n  expected to start with\n${expected[i]}`))
  })
}

test('one problem is the message itself; several are listed under the file name', () => {
  try {
    parseResourceModifiers('version: v1\nresourceModifierRules:\n- conditions: {}\n  patches: [{operation: remove, path: x}]\n', 'mods.yaml')
  } catch (err) {
    assert.match((err as Error).message, /^mods\.yaml has 2 problems; fix them and run again:\n {2}mods\.yaml:3:15: /)
  }
})

test.run()
