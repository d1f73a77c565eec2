import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {diffFields} from './apply.js'

const secret = (password: string, lastApplied: string) => ({
  apiVersion: 'v1', kind: 'Secret', metadata: {name: 'db', annotations: {'kubectl.kubernetes.io/last-applied-configuration': lastApplied, team: 'db'}},
  data: {password: Buffer.from(password).toString('base64')},
})

test('a restore plan reports changed Secret values, and kubectl\'s copy of them, without showing them', () => {
  const lines = diffFields(secret('new-value', '{"data":{"password":"bmV3"}}'), secret('old-value', '{"data":{"password":"b2xk"}}'))
  assert.equal(lines, [
    'metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: changed (value hidden)',
    'data.password: changed (value hidden)',
  ])
})

test('other annotations of a Secret, and every field of other kinds, are shown', () => {
  const want = {...secret('v', '{}'), metadata: {name: 'db', annotations: {team: 'web'}}}
  assert.equal(diffFields(want, secret('v', '{}')), ['metadata.annotations.team: "db" → "web"'])
  const cm = (v: string) => ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'c', annotations: {'kubectl.kubernetes.io/last-applied-configuration': v}}})
  assert.equal(diffFields(cm('{"a":1}'), cm('{}')), ['metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: "{}" → "{\\"a\\":1}"'])
})

test.run()
