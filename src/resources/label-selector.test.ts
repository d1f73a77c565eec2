import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {matchesLabels, parseLabelSelector} from './label-selector.js'

const labels = {app: 'db', tier: 'backend', env: 'prod'}
const cases: [string, boolean][] = [
  ['', true],
  ['app=db', true],
  ['app==db', true],
  ['app=web', false],
  ['app!=web', true],
  ['missing!=x', true],
  ['app=db,tier=backend', true],
  ['app=db,tier=frontend', false],
  ['env in (prod, staging)', true],
  ['env notin (prod)', false],
  ['env in (dev),app=db', false],
  ['tier', true],
  ['!tier', false],
  ['!legacy', true],
  ['app = db', true],
]
for (const [selector, expected] of cases) {
  test(`${JSON.stringify(selector)} ${expected ? 'matches' : 'does not match'}`, () => {
    assert.is(matchesLabels(parseLabelSelector(selector), labels), expected)
  })
}

for (const bad of ['app=(db)', 'env in prod', '=x']) {
  test(`${JSON.stringify(bad)} is a usage error`, () => {
    try {
      parseLabelSelector(bad)
      assert.unreachable()
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.is((err as KubesnapError).exitCode, 2)
    }
  })
}

test.run()
