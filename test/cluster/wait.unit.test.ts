import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {waitFor} from './wait.js'

test('waitFor: returns once the check turns true', async () => {
  let calls = 0
  await waitFor('the third call', () => ++calls === 3, {intervalMs: 1})
  assert.is(calls, 3)
})

test('waitFor: times out naming what it waited for and the detail', async () => {
  let calls = 0
  const err = await waitFor('never', () => (calls++, false), {timeoutMs: 30, intervalMs: 5, detail: () => `seen ${calls}`}).catch((e: Error) => e)
  assert.instance(err, Error)
  assert.match((err as Error).message, /^timed out after 30 ms waiting for never \(seen \d+\)$/)
  assert.ok(calls >= 2, 'checked again at the deadline')
})

test('waitFor: a throwing check fails the wait, unless retryErrors', async () => {
  let calls = 0
  const flaky = async () => {
    if (++calls < 3) throw new Error('not found')
    return true
  }
  const err = await waitFor('flaky', flaky, {intervalMs: 1}).catch((e: Error) => e)
  assert.is((err as Error).message, 'not found')
  calls = 0
  await waitFor('flaky', flaky, {intervalMs: 1, retryErrors: true})
  assert.is(calls, 3)
})

test.run()
