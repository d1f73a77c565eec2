import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {hideSecretValues} from './inspect.js'

const VALUE = 'hunter2-secret-value'
const b64 = Buffer.from(VALUE).toString('base64')
const lastApplied = JSON.stringify({apiVersion: 'v1', kind: 'Secret', metadata: {name: 's'}, data: {password: b64}})

const cases: [string, object, (shown: any) => void][] = [
  ['data values become their decoded sizes', {kind: 'Secret', data: {password: b64}}, (s) => assert.equal(s.data, {password: `(hidden: ${VALUE.length} bytes)`})],
  ['stringData values become their sizes', {kind: 'Secret', stringData: {token: VALUE}}, (s) => assert.equal(s.stringData, {token: `(hidden: ${VALUE.length} bytes)`})],
  ["kubectl apply's copy of the Secret is hidden, other annotations kept", {kind: 'Secret', metadata: {name: 's', annotations: {'kubectl.kubernetes.io/last-applied-configuration': lastApplied, team: 'db'}}, data: {password: b64}}, (s) => {
    assert.equal(s.metadata.annotations, {'kubectl.kubernetes.io/last-applied-configuration': `(hidden: ${lastApplied.length} bytes)`, team: 'db'})
    assert.is(s.metadata.name, 's')
  }],
  ['other kinds are shown as they are', {kind: 'ConfigMap', metadata: {annotations: {'kubectl.kubernetes.io/last-applied-configuration': '{}'}}, data: {a: 'b'}}, (s) => assert.equal(s.data, {a: 'b'})],
]

for (const [name, object, check] of cases) {
  test(`hideSecretValues: ${name}`, () => {
    const shown = hideSecretValues(object)
    check(shown)
    if ((object as {kind: string}).kind === 'Secret') {
      const text = JSON.stringify(shown)
      assert.not.ok(text.includes(VALUE) || text.includes(b64), 'no value, plain or base64, is left')
    }
  })
}

test.run()
