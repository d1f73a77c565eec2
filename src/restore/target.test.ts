import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {restoreTarget} from './target.js'

test('restoreTarget: the namespace the user named, never one only a file name or the archive chose against it', () => {
  const file = '/b/jenkins-000099-20261121T163000Z.kubesnap.tar'
  const cases: [string, Parameters<typeof restoreTarget>[0], string | RegExp][] = [
    ['--to-namespace wins', {archived: 'sf', path: file, namespace: 'jenkins', toNamespace: 'sf-dr'}, 'sf-dr'],
    ['-n the archive\'s namespace', {archived: 'sf', path: file, namespace: 'sf'}, 'sf'],
    ['a true name, no -n', {archived: 'jenkins', path: file}, 'jenkins'],
    ['any other file name, no -n', {archived: 'sf', path: '/b/backup.tar'}, 'sf'],
    ['-n another namespace (--latest -n jenkins picked it, or a path)', {archived: 'sf', path: file, namespace: 'jenkins'}, /^The archive .* holds namespace sf, not jenkins; to restore it into jenkins, pass --to-namespace jenkins\.$/],
    ['--to-namespace that Kubernetes cannot have', {archived: 'sf', path: file, toNamespace: 'SF_dr'}, /^--to-namespace "SF_dr" is not a valid Kubernetes namespace name; use at most 63 lowercase/],
    ['a file named for another namespace, no -n', {archived: 'sf', path: file}, /is named for namespace jenkins, but it holds namespace sf; say where to restore it: -n sf or --to-namespace NAMESPACE\.$/],
  ]
  for (const [name, input, expected] of cases) {
    if (typeof expected === 'string') {
      assert.is(restoreTarget(input), expected, name)
      continue
    }
    try {
      restoreTarget(input)
      assert.unreachable(name)
    } catch (err) {
      assert.instance(err, KubesnapError, name)
      assert.is((err as KubesnapError).exitCode, 2, name)
      assert.match((err as Error).message, expected, name)
    }
  }
})

test.run()
