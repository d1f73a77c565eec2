import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {CheckedRestore} from './check.js'
import {countFailures, finishRestore, noOutcomes, summarizeRestore, wroteAnything, type RestoreOutcomes, type RestoreSummary, type RunEnd} from './summary.js'

const checked = (): CheckedRestore => ({
  namespace: 'shop-dr', entries: [], volumeEntries: [], volumesApproved: new Map(), claimSnapshots: {}, workloadsBefore: [],
  preconditions: {namespaceExists: true, targets: new Map(), problems: [], warnings: ['v1 not served']},
  withoutData: [{claim: 'logs', reason: 'data not copied: exec failed', failed: true} as CheckedRestore['withoutData'][number]],
})

const summary = (done: Partial<RestoreOutcomes> = {}, dryRun = false): RestoreSummary =>
  summarizeRestore({path: 'a.tar', dryRun, sourceNamespace: 'shop', checked: checked(), done: {...noOutcomes(), ...done}})

test('summarizeRestore: counts by action; warnings from the preconditions, the run, objects, volumes, claims without data, dumps, in that order', () => {
  const s = summary({
    outcomes: [{kind: 'Secret', resource: 'secrets', name: 'db', action: 'create', warning: 'read back'}, {kind: 'Secret', resource: 'secrets', name: 'x', action: 'failed', error: 'no'}],
    volumes: [{claim: 'data', bytes: 1, action: 'restored', target: 'helper', warnings: ['owners not kept']}],
    dumps: [{name: 'users', workload: 'statefulset/db', bytes: 1, action: 'skipped', reason: 'no Ready pod'}],
    warnings: ['stale helper removed'],
  })
  assert.equal(s.objects, {create: 1, update: 0, skip: 0, conflict: 0, failed: 1})
  assert.equal(s.warnings, [
    'v1 not served', 'stale helper removed', 'Secret/db: read back', 'owners not kept',
    'Claim logs is restored without data: the snapshot could not copy it (exec failed); its data can only come from another snapshot that holds it.',
    'Dump users was not loaded: no Ready pod.',
  ])
  assert.equal(Object.keys(s), ['status', 'dryRun', 'archive', 'sourceNamespace', 'namespace', 'namespaceCreated', 'objects', 'outcomes', 'volumes', 'withoutData', 'restarted', 'rollouts', 'dumps', 'warnings'], 'the JSON\'s key order')
  assert.is(summarizeRestore({path: 'a', dryRun: false, sourceNamespace: 's', checked: checked(), done: noOutcomes(), signature: {signed: true, fingerprint: 'SHA256:x', trusted: true}}).signature?.fingerprint, 'SHA256:x')
})

test('countFailures: failed and conflicting objects, failed volumes, workloads left at 0 (once), failed restarts, late rollouts, failed dumps', () => {
  const scaled = {kind: 'StatefulSet' as const, name: 'db', replicas: 2, scaledBack: false}
  assert.is(countFailures(summary()), 0)
  assert.is(countFailures(summary({
    outcomes: [{kind: 'S', resource: 's', name: 'a', action: 'failed'}, {kind: 'S', resource: 's', name: 'b', action: 'conflict'}, {kind: 'S', resource: 's', name: 'c', action: 'create'}],
    volumes: [{claim: 'd0', bytes: 1, action: 'failed', target: 'helper', scaled}, {claim: 'd1', bytes: 1, action: 'restored', target: 'helper', scaled}],
    restarted: [{kind: 'Deployment', name: 'web', reasons: [], error: 'not restarted'}],
    rollouts: [{kind: 'Deployment', name: 'web', ready: false}, {kind: 'StatefulSet', name: 'db', ready: true}],
    dumps: [{name: 'u', workload: 'w', bytes: 1, action: 'failed'}],
  })), 2 + 1 + 1 + 1 + 1 + 1)
})

test('wroteAnything and finishRestore: exit 1 only when nothing was written, else 3; a dry run is judged by what it would write', () => {
  const create = {outcomes: [{kind: 'Secret', resource: 'secrets', name: 'db', action: 'create' as const}]}
  const failed = {outcomes: [{kind: 'Secret', resource: 'secrets', name: 'db', action: 'failed' as const}]}
  const halfway = {outcomes: [...create.outcomes, ...failed.outcomes]}
  const rows: Array<[string, RestoreSummary, RunEnd, boolean, string, number]> = [
    ['all created', summary(create), {apiWrites: 1}, true, 'complete', 0],
    ['every write refused', summary(failed), {apiWrites: 0}, false, 'failed', 1],
    ['half-way', summary(halfway), {apiWrites: 1}, true, 'partial', 3],
    ['a phase threw after writes', summary(create), {apiWrites: 1, stopped: new Error('gone.')}, true, 'partial', 3],
    ['a phase threw before any write', summary(), {apiWrites: 0, stopped: new Error('gone')}, false, 'failed', 1],
    ['data copied by exec is a write', summary({volumes: [{claim: 'd', bytes: 1, action: 'failed', target: 'helper', copyStarted: true}]}), {apiWrites: 0}, true, 'partial', 3],
    ['a dump that failed part-way is a write', summary({dumps: [{name: 'u', workload: 'w', bytes: 1, action: 'failed'}]}), {apiWrites: 0}, true, 'partial', 3],
    ['interrupted after writes', summary(create), {apiWrites: 1, signal: 'SIGINT'}, true, 'interrupted', 3],
    ['interrupted before any write', summary(), {apiWrites: 0, signal: 'SIGTERM'}, false, 'interrupted', 1],
    ['a dry run that would fail half-way', summary(halfway, true), {apiWrites: 0}, true, 'partial', 3],
    ['a dry run that would write nothing but fail', summary(failed, true), {apiWrites: 0}, false, 'failed', 1],
    ['a dry run stopped by a signal wrote nothing', summary(halfway, true), {apiWrites: 0, signal: 'SIGINT'}, false, 'interrupted', 1],
  ]
  for (const [name, s, end, wrote, status, exit] of rows) {
    assert.is(wroteAnything(s, end), wrote, name)
    const finished = finishRestore(s, end)
    assert.equal([finished.summary.status, finished.exit], [status, exit], name)
    assert.is(finished.summary.error === undefined, end.stopped === undefined && end.signal === undefined, name)
  }
  assert.is(finishRestore(summary(create), {apiWrites: 1, stopped: new Error('gone.')}).summary.error,
    'The restore stopped: gone; the objects, volumes and workloads above are as listed: fix the cause, then restore again (existing objects are skipped).')
  assert.match(finishRestore(summary(), {apiWrites: 0, signal: 'SIGTERM'}).summary.error!, /^The restore was interrupted by SIGTERM and stopped there/)
})

test.run()
