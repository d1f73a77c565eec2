import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {mapStorageClasses, parseStorageClassMap, storageClassUses, BETA_CLASS_ANNOTATION} from './storage-classes.js'

const PVC = {group: '', resource: 'persistentvolumeclaims'}
const STS = {group: 'apps', resource: 'statefulsets'}
const claim = (name: string, storageClassName?: string, annotations?: Record<string, string>) =>
  ({apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: {name, ...(annotations ? {annotations} : {})}, spec: {accessModes: ['ReadWriteOnce'], ...(storageClassName === undefined ? {} : {storageClassName})}})
const statefulSet = (...templates: ReturnType<typeof claim>[]) =>
  ({apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: {name: 'db'}, spec: {replicas: 1, volumeClaimTemplates: templates}})

test('parseStorageClassMap: OLD=NEW, repeated or comma-separated; malformed values and contradictions are usage errors', () => {
  const ok: Array<[string[], Record<string, string>]> = [
    [[], {}],
    [['standard=fast'], {standard: 'fast'}],
    [['standard=fast', 'slow=fast'], {standard: 'fast', slow: 'fast'}],
    [['standard=fast,gp2=gp3.csi.example.com'], {standard: 'fast', gp2: 'gp3.csi.example.com'}],
    [['standard=fast', 'standard=fast'], {standard: 'fast'}],
    [[' standard = fast '], {standard: 'fast'}],
  ]
  for (const [values, expected] of ok) assert.equal(parseStorageClassMap(values), expected, values.join(' '))
  const bad: Array<[string[], RegExp]> = [
    [['standard'], /"standard" is not OLD=NEW.*--map-storage-class standard=fast/],
    [['standard='], /is not OLD=NEW/],
    [['=fast'], /is not OLD=NEW/],
    [['a=b=c'], /is not OLD=NEW/],
    [['Standard=fast'], /is not OLD=NEW/],
    [['standard=fast', 'standard=slow'], /maps standard twice \(to fast and to slow\)/],
  ]
  for (const [values, message] of bad) {
    try {
      parseStorageClassMap(values)
      assert.unreachable(values.join(' '))
    } catch (err: any) {
      assert.match(err.message, message)
      assert.is(err.exitCode, 2, 'a usage error')
    }
  }
})

test('mapStorageClasses: claims and StatefulSet templates follow the map; others and unknown names stay; the input is untouched', () => {
  const map = {standard: 'fast'}
  const cases: Array<{name: string; type: {group: string; resource: string}; input: any; expected: any}> = [
    {name: 'a claim of a mapped class', type: PVC, input: claim('data', 'standard'), expected: claim('data', 'fast')},
    {name: 'a claim of another class', type: PVC, input: claim('data', 'gold'), expected: claim('data', 'gold')},
    {name: 'a claim of the default class (none named)', type: PVC, input: claim('data'), expected: claim('data')},
    {name: 'a claim with no dynamic provisioning ("")', type: PVC, input: claim('data', ''), expected: claim('data', '')},
    {name: 'the legacy annotation', type: PVC, input: claim('old', undefined, {[BETA_CLASS_ANNOTATION]: 'standard', keep: 'me'}), expected: claim('old', undefined, {[BETA_CLASS_ANNOTATION]: 'fast', keep: 'me'})},
    {name: 'each volumeClaimTemplate', type: STS, input: statefulSet(claim('data', 'standard'), claim('logs', 'gold'), claim('tmp')), expected: statefulSet(claim('data', 'fast'), claim('logs', 'gold'), claim('tmp'))},
    {name: 'a StatefulSet without templates', type: STS, input: {kind: 'StatefulSet', metadata: {name: 'web'}, spec: {replicas: 1}}, expected: {kind: 'StatefulSet', metadata: {name: 'web'}, spec: {replicas: 1}}},
    {name: 'another kind with the same field is not ours to touch', type: {group: 'example.com', resource: 'claims'}, input: claim('x', 'standard'), expected: claim('x', 'standard')},
  ]
  for (const c of cases) {
    const before = structuredClone(c.input)
    assert.equal(mapStorageClasses(c.input, c.type, map), c.expected, c.name)
    assert.equal(c.input, before, `${c.name}: input unchanged`)
  }
  const input = claim('data', 'standard')
  assert.is(mapStorageClasses(input, PVC, {}), input, 'an empty map is the identity')
})

test('storageClassUses: the classes a claim or a StatefulSet asks for, with where', () => {
  assert.equal(storageClassUses(claim('data', 'standard'), PVC), [{storageClass: 'standard', where: 'claim data'}])
  assert.equal(storageClassUses(claim('data'), PVC), [])
  assert.equal(storageClassUses(claim('data', ''), PVC), [])
  assert.equal(storageClassUses(claim('old', undefined, {[BETA_CLASS_ANNOTATION]: 'slow'}), PVC), [{storageClass: 'slow', where: 'claim old'}])
  assert.equal(storageClassUses(statefulSet(claim('data', 'standard'), claim('tmp')), STS), [{storageClass: 'standard', where: 'StatefulSet db\'s volumeClaimTemplate data'}])
  assert.equal(storageClassUses({kind: 'ConfigMap', metadata: {name: 'x'}}, {group: '', resource: 'configmaps'}), [])
})

test.run()
