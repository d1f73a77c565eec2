import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {diskError} from './disk.js'

const errno = (code: string, path?: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: raw message${path ? `, open '${path}'` : ''}`), {code, ...(path ? {path} : {})})

test('diskError: disk errors about the directory, however deeply wrapped, become one sentence with the fix', () => {
  const outcome = 'no archive was written'
  const cases: [string, unknown, string | undefined][] = [
    ['full, during a write (no path)', errno('ENOSPC'), 'The file system of /b is full (ENOSPC), so no archive was written; free space there or give another directory with -o.'],
    ['quota', errno('EDQUOT'), 'The disk quota of /b is used up (EDQUOT), so no archive was written; free space there or give another directory with -o.'],
    ['read-only lock', errno('EROFS', '/b/.kubesnap.lock'), '/b is on a read-only file system (EROFS), so no archive was written; give a writable directory with -o.'],
    ['no permission', errno('EACCES', '/b/.x.partial'), 'This user may not write in /b (EACCES), so no archive was written; fix its permissions or give another directory with -o.'],
    ['creating the directory\'s parent', errno('EACCES', '/'), 'This user may not write in /b (EACCES), so no archive was written; fix its permissions or give another directory with -o.'],
    ['wrapped by a volume copy', new KubesnapError('Could not copy the data of claim x: y; run the snapshot again.', {cause: new Error('y', {cause: errno('ENOSPC')})}), 'The file system of /b is full (ENOSPC), so no archive was written; free space there or give another directory with -o.'],
    ['another file (a kubeconfig)', errno('EACCES', '/etc/kube/config'), undefined],
    ['not a disk error', errno('ECONNREFUSED'), undefined],
    ['not an error', 'EROFS', undefined],
  ]
  for (const [name, err, expected] of cases) {
    const mapped = diskError(err, '/b', outcome)
    assert.is(mapped?.message, expected, name)
    if (mapped) assert.is(mapped.exitCode, 1, name)
  }
})

test.run()
