import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {restoreResult, scaleCommand, type RestoreFacts} from './result.js'

test('restoreResult: exit 1 only when nothing was written; 3 once anything was and something failed', () => {
  const cases: Array<[string, RestoreFacts, string, number]> = [
    ['all restored', {wrote: true, failures: 0}, 'complete', 0],
    ['everything existed already (all skipped)', {wrote: false, failures: 0}, 'complete', 0],
    ['some objects failed, others created', {wrote: true, failures: 2}, 'partial', 3],
    ['every create refused (403): nothing written', {wrote: false, failures: 5}, 'failed', 1],
    ['the namespace POST failed: the run stopped before any write', {wrote: false, failures: 0, stopped: true}, 'failed', 1],
    ['a phase threw after objects were created', {wrote: true, failures: 0, stopped: true}, 'partial', 3],
    ['Ctrl-C after the scale-down', {wrote: true, failures: 1, interrupted: true}, 'interrupted', 3],
    ['Ctrl-C before the first write', {wrote: false, failures: 0, interrupted: true}, 'interrupted', 1],
    ['a dry run that would write and predicts failures', {wrote: true, failures: 1}, 'partial', 3],
  ]
  for (const [name, facts, status, exit] of cases) assert.equal(restoreResult(facts), {status, exit}, name)
})

test('scaleCommand: the exact kubectl command that puts a workload back', () => {
  assert.is(scaleCommand('shop', {kind: 'StatefulSet', name: 'db'}, 3), 'kubectl scale -n shop statefulset/db --replicas=3')
  assert.is(scaleCommand('shop', {kind: 'Deployment', name: 'web'}, 1), 'kubectl scale -n shop deployment/web --replicas=1')
})

test.run()
