import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {apiFailure, ApiError} from './api.js'

const status = (code: number, reason: string, message: string) =>
  new ApiError('PATCH', '/apis/apps/v1/namespaces/shop/statefulsets/db', code, {kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message})

const FORBIDDEN_FIX = 'the identity needs patch on statefulsets.apps in shop: grant it in its Role and run again'

test('apiFailure: a refused API call is one sentence of what, why (the server\'s words) and what to do', () => {
  const cases: [string, unknown, string | undefined, string][] = [
    ['403 with the right to grant', status(403, 'Forbidden', 'statefulsets.apps "db" is forbidden: User "u" cannot patch resource "statefulsets" in API group "apps" in the namespace "shop"'), FORBIDDEN_FIX,
      'Could not restart StatefulSet/db (403 Forbidden: statefulsets.apps "db" is forbidden: User "u" cannot patch resource "statefulsets" in API group "apps" in the namespace "shop"); the identity needs patch on statefulsets.apps in shop: grant it in its Role and run again.'],
    ['403 without advice', status(403, 'Forbidden', 'forbidden.'), undefined, 'Could not restart StatefulSet/db (403 Forbidden: forbidden); fix what the server says and run again.'],
    ['404', status(404, 'NotFound', 'statefulsets.apps "db" not found'), FORBIDDEN_FIX, 'Could not restart StatefulSet/db (404 NotFound: statefulsets.apps "db" not found); fix what the server says and run again.'],
    ['409', status(409, 'Conflict', 'the object has been modified'), FORBIDDEN_FIX, 'Could not restart StatefulSet/db (409 Conflict: the object has been modified); something else changed it at the same time: run again.'],
    ['500 after retries', status(500, 'InternalError', 'etcdserver: request timed out'), FORBIDDEN_FIX, 'Could not restart StatefulSet/db (500 InternalError: etcdserver: request timed out); the API server kept failing after retries: check its health and run again.'],
    ['429 after retries', status(429, 'TooManyRequests', 'slow down'), undefined, 'Could not restart StatefulSet/db (429 TooManyRequests: slow down); the API server kept failing after retries: check its health and run again.'],
    ['no Status body', new ApiError('PATCH', '/x', 502, undefined), undefined, 'Could not restart StatefulSet/db (502: PATCH /x answered 502); the API server kept failing after retries: check its health and run again.'],
  ]
  for (const [name, err, forbidden, sentence] of cases) {
    const out = apiFailure(err, 'restart StatefulSet/db', forbidden)
    assert.instance(out, KubesnapError, name)
    assert.is((out as KubesnapError).exitCode, 1, name)
    assert.is(out.message, sentence, name)
  }
})

test('apiFailure: the client\'s own sentences and other errors pass through unchanged', () => {
  const unreachable = new KubesnapError('Cannot reach the Kubernetes API server at https://x (ECONNREFUSED); check that the cluster is up.')
  assert.is(apiFailure(unreachable, 'restart StatefulSet/db'), unreachable)
  const bug = new TypeError('x is undefined')
  assert.is(apiFailure(bug, 'restart StatefulSet/db'), bug)
})

test.run()
