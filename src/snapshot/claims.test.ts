import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {ClaimObject} from '../volumes/index.js'
import {partitionClaims} from './claims.js'

/** A claim as listed: bound to a volume, or pending. */
function claim(name: string, bound = true): ClaimObject {
  return bound ? {metadata: {name}, spec: {volumeName: `pv-${name}`}, status: {phase: 'Bound'}} : {metadata: {name}, spec: {}, status: {phase: 'Pending'}}
}

test('partitionClaims: by the plan\'s per-claim strategy, else the run\'s; unbound and none are left out with a reason', () => {
  const unbound = 'data not copied: the claim is not bound to a volume'
  const none = 'data not copied: its volume strategy is none'
  const cases: Array<[string, ClaimObject[], {strategy: 'tar' | 'csi' | 'none'; claims: Record<string, 'tar' | 'csi' | 'none'>}, {tar: string[]; csi: string[]; none: string[]; bound: number; skipped: Array<[string, string]>; warnings: number}]> = [
    ['no claims', [], {strategy: 'tar', claims: {}}, {tar: [], csi: [], none: [], bound: 0, skipped: [], warnings: 0}],
    ['all tar, sorted', [claim('b'), claim('a')], {strategy: 'tar', claims: {}}, {tar: ['a', 'b'], csi: [], none: [], bound: 2, skipped: [], warnings: 0}],
    ['--volumes csi', [claim('a')], {strategy: 'csi', claims: {}}, {tar: [], csi: ['a'], none: [], bound: 1, skipped: [], warnings: 0}],
    ['--volumes none', [claim('a')], {strategy: 'none', claims: {}}, {tar: [], csi: [], none: ['a'], bound: 1, skipped: [['a', none]], warnings: 0}],
    ['an unbound claim has no data', [claim('p', false), claim('a')], {strategy: 'tar', claims: {}}, {tar: ['a'], csi: [], none: [], bound: 1, skipped: [['p', unbound]], warnings: 0}],
    ['the plan chooses per claim', [claim('db'), claim('cache'), claim('logs')], {strategy: 'tar', claims: {db: 'csi', cache: 'none'}},
      {tar: ['logs'], csi: ['db'], none: ['cache'], bound: 3, skipped: [['cache', none]], warnings: 0}],
    ['the plan names a claim the snapshot does not hold', [claim('a')], {strategy: 'tar', claims: {gone: 'csi'}}, {tar: ['a'], csi: [], none: [], bound: 1, skipped: [], warnings: 1}],
    ['unbound ones first, then none', [claim('z'), claim('p', false)], {strategy: 'none', claims: {}}, {tar: [], csi: [], none: ['z'], bound: 1, skipped: [['p', unbound], ['z', none]], warnings: 0}],
  ]
  for (const [name, claims, volumes, want] of cases) {
    const got = partitionClaims(claims, volumes)
    assert.equal({tar: got.tar, csi: got.csi, none: got.none, bound: got.bound}, {tar: want.tar, csi: want.csi, none: want.none, bound: want.bound}, name)
    assert.equal(got.skipped.map((s) => [s.name, s.reason]), want.skipped, name)
    assert.ok(got.skipped.every((s) => s.kind === 'PersistentVolumeClaim' && s.resource === 'persistentvolumeclaims' && s.failed === undefined), `${name}: left out on purpose, not failures`)
    assert.is(got.warnings.length, want.warnings, name)
  }
  assert.equal(partitionClaims([claim('a')], {strategy: 'tar', claims: {gone: 'csi'}}).warnings, ['The plan sets a volume strategy for claim gone, which this snapshot does not hold.'])
})

test.run()
