import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {ClaimCopyError, decideClaimFailure, type ClaimFailureContext} from './failure.js'

const output = '/var/backups/kubesnap'
const usual: ClaimFailureContext = {volumesRequired: false, archiveOpen: true, output}

/** An errno error as fs raises it. */
function errno(code: string, path?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed${path ? `, write '${path}'` : ''}`), {code, ...(path ? {path} : {})})
}

const cut = new ClaimCopyError('data', 'stream cut after 50000 bytes (attempt 2 of 2)',
  'Could not copy the data of claim data: stream cut after 50000 bytes (attempt 2 of 2); run the snapshot again, or leave volume data out with --volumes none.')
const helperLate = new KubesnapError('Helper pod ns/kubesnap-data for claim data did not start within 120 s (Pending); check the claim\'s node and quota, then try again.')
/** The writer's error for a stream the disk refused, wrapped as copyVolume wraps it. */
const full = new ClaimCopyError('data', 'Writing volume data into the archive failed: ENOSPC', 'Could not copy…', {
  cause: new Error('Writing volume data into the archive failed: ENOSPC', {cause: errno('ENOSPC')}),
})

test('decideClaimFailure: the claim\'s own failures are left out; the archive\'s and --volumes-required stop the run', () => {
  const cases: Array<[string, unknown, ClaimFailureContext, 'skip' | 'volumes required' | 'archive closed' | 'disk']> = [
    ['a stream cut on every attempt', cut, usual, 'skip'],
    ['a helper pod that never starts', helperLate, usual, 'skip'],
    ['any other error of the claim', new Error('exec refused: 403'), usual, 'skip'],
    ['--volumes-required', cut, {...usual, volumesRequired: true}, 'volumes required'],
    ['the archive was removed by a signal', cut, {...usual, archiveOpen: false}, 'archive closed'],
    ['the output disk is full', full, usual, 'disk'],
    ['a full disk beats --volumes-required', full, {...usual, volumesRequired: true}, 'disk'],
    ['a read-only output directory', errno('EROFS', `${output}/.x.partial`), usual, 'disk'],
    ['an errno about a path elsewhere is the claim\'s', errno('EACCES', '/etc/kubeconfig'), usual, 'skip'],
  ]
  for (const [what, err, context, expected] of cases) {
    const decision = decideClaimFailure('data', err, context)
    assert.is(decision.action === 'skip' ? 'skip' : decision.why, expected, what)
  }
})

test('decideClaimFailure: a skipped claim is recorded as failed with its bare reason, and warned about with the fix', () => {
  const decision = decideClaimFailure('data', cut, usual)
  assert.equal(decision.action === 'skip' && decision.skipped, {
    kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: 'data', failed: true,
    reason: 'data not copied: stream cut after 50000 bytes (attempt 2 of 2)',
  })
  assert.is(decision.action === 'skip' && decision.warning,
    'Could not copy the data of claim data: stream cut after 50000 bytes (attempt 2 of 2); run the snapshot again, or leave volume data out with --volumes none.'
    + ' The snapshot is partial: it keeps the objects and the other volumes, without the data of claim data (--volumes-required fails the run instead).')
  const other = decideClaimFailure('data', helperLate, usual)
  assert.is(other.action === 'skip' && other.skipped.reason, 'data not copied: Helper pod ns/kubesnap-data for claim data did not start within 120 s (Pending); check the claim\'s node and quota, then try again')
})

test.run()
