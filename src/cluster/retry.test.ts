import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {isWrite, mayHaveApplied, shouldRetry, type AttemptFailure} from './retry.js'

test('shouldRetry and mayHaveApplied: reads are repeated, writes only when the server cannot have applied them', () => {
  const cases: Array<[string, AttemptFailure, boolean, boolean, string]> = [
    // method, failure, retry?, may have applied?, why
    ['GET', {status: 429}, true, false, 'throttled read'],
    ['GET', {status: 500}, true, false, 'a read is safe to repeat'],
    ['GET', {status: 503}, true, false, 'a read is safe to repeat'],
    ['GET', {status: 504}, true, false, 'a read is safe to repeat'],
    ['GET', {status: 404}, false, false, 'an answer, not a failure of the server'],
    ['GET', {status: 409}, false, false, 'an answer'],
    ['GET', {network: 'ECONNRESET', sent: true}, true, false, 'a dropped read'],
    ['GET', {network: 'ETIMEDOUT', sent: true}, true, false, 'a slow read'],
    ['GET', {network: 'ECONNREFUSED', sent: false}, false, false, 'a cluster that is down says so at once'],
    ['GET', {network: 'ERR_TLS_CERT_ALTNAME_INVALID', sent: false}, false, false, 'not a network error: retrying cannot help'],
    ['POST', {status: 429}, true, false, 'refused before it was handled'],
    ['POST', {status: 503}, false, true, 'the create may have committed before the 503'],
    ['POST', {status: 500}, false, true, 'may have committed'],
    ['POST', {status: 504}, false, true, 'may have committed'],
    ['POST', {status: 409}, false, false, 'an answer: it exists'],
    ['POST', {status: 422}, false, false, 'an answer: invalid'],
    ['POST', {network: 'ECONNREFUSED', sent: false}, true, false, 'never reached the server'],
    ['POST', {network: 'ENOTFOUND', sent: false}, true, false, 'never reached the server'],
    ['POST', {network: 'ECONNRESET', sent: false}, true, false, 'broke during the TLS handshake'],
    ['POST', {network: 'ECONNRESET', sent: true}, false, true, 'broke after the request went out'],
    ['POST', {network: 'ETIMEDOUT', sent: true}, false, true, 'no answer in time'],
    ['PUT', {status: 503}, false, true, 'may have been applied'],
    ['PATCH', {status: 502}, false, true, 'may have been applied'],
    ['PATCH', {status: 429}, true, false, 'refused before it was handled'],
    ['patch', {network: 'EPIPE', sent: true}, false, true, 'method names in any case'],
    ['DELETE', {status: 500}, false, true, 'may have been applied'],
    ['DELETE', {network: 'ECONNREFUSED', sent: false}, true, false, 'never reached the server'],
    ['POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {status: 503}, true, false, 'a review stores nothing: a read'],
    ['POST /apis/authentication.k8s.io/v1beta1/selfsubjectreviews', {network: 'ECONNRESET', sent: true}, true, false, 'a review stores nothing: a read'],
    ['POST /apis/authorization.k8s.io/v1/namespaces/x/localsubjectaccessreviews', {status: 503}, false, true, 'namespaced path: not the review pattern, treated as a write'],
    ['POST /api/v1/namespaces/x/secrets dryRun', {status: 503}, true, false, 'a dry run stores nothing: a read'],
    ['PATCH /api/v1/namespaces/x/secrets/s dryRun', {network: 'ECONNRESET', sent: true}, true, false, 'a dry run stores nothing: a read'],
  ]
  for (const [request, failure, retry, applied, why] of cases) {
    const [method, path = '', flag] = request.split(' ')
    const write = isWrite(method, path, flag === 'dryRun')
    assert.is(shouldRetry(write, failure), retry, `shouldRetry ${request} ${JSON.stringify(failure)}: ${why}`)
    assert.is(mayHaveApplied(write, failure), applied, `mayHaveApplied ${request} ${JSON.stringify(failure)}: ${why}`)
  }
})

test('isWrite: what can change what the cluster stores', () => {
  const cases: Array<[string, string, boolean, boolean]> = [
    ['GET', '/api/v1/namespaces/x/secrets', false, false],
    ['POST', '/api/v1/namespaces/x/secrets', false, true],
    ['POST', '/api/v1/namespaces/x/secrets', true, false],
    ['PATCH', '/apis/apps/v1/namespaces/x/statefulsets/db/scale', false, true],
    ['DELETE', '/api/v1/namespaces/x/pods/p', false, true],
    ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', false, false],
    ['POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', false, false],
    ['POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', false, false],
  ]
  for (const [method, path, dryRun, write] of cases) assert.is(isWrite(method, path, dryRun), write, `${method} ${path}${dryRun ? ' (dry run)' : ''}`)
})

test.run()
