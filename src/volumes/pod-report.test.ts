import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parsePodReport, type PodReport} from './pod-report.js'

const sha = 'c'.repeat(64)
const fields = {uid: /^\d*$/, root: /^(\d+:\d+)?$/}

const rows: [string, string, PodReport | undefined][] = [
  ['hashed', `t: tar-exit=0 sha256=${sha}\n`, {tarExit: 0, sha256: sha, fields: {}}],
  ['unhashed', 't: tar-exit=2 unhashed\n', {tarExit: 2, fields: {}}],
  ['the last report line counts, tar\'s own lines around it do not', `t: tar-exit=1 unhashed\ntar: ./x: file changed as we read it\nt: tar-exit=0 sha256=${sha}\ntar: done\n`, {tarExit: 0, sha256: sha, fields: {}}],
  ['fields, in any order', `t: tar-exit=0 root=0:999 uid=999 sha256=${sha}`, {tarExit: 0, sha256: sha, fields: {root: '0:999', uid: '999'}}],
  ['an empty value (no `id` in the container)', 't: tar-exit=0 uid= unhashed', {tarExit: 0, fields: {uid: ''}}],
  ['no report line', 'tar: something\n', undefined],
  ['another script\'s tag', 'other: tar-exit=0 unhashed\n', undefined],
  ['a tag that only starts the same', 'tx: tar-exit=0 unhashed\n', undefined],
  ['no exit', `t: sha256=${sha}\n`, undefined],
  ['no hash and no unhashed', 't: tar-exit=0\n', undefined],
  ['a short hash', `t: tar-exit=0 sha256=${sha.slice(1)}\n`, undefined],
  ['an upper-case hash', `t: tar-exit=0 sha256=${sha.toUpperCase()}\n`, undefined],
  ['a field it does not know', 't: tar-exit=0 size=5 unhashed\n', undefined],
  ['a field twice', 't: tar-exit=0 uid=1 uid=2 unhashed\n', undefined],
  ['a value its pattern refuses', 't: tar-exit=0 uid=abc unhashed\n', undefined],
  ['a word that is no field', 't: tar-exit=0 garbage unhashed\n', undefined],
  ['a field named like an Object method', 't: tar-exit=0 toString=x unhashed\n', undefined],
  ['garbage', 't: garbage\n', undefined],
]

for (const [name, stderr, expected] of rows) {
  test(`parsePodReport: ${name}`, () => {
    assert.equal(parsePodReport(stderr, 't', fields), expected)
  })
}

test('parsePodReport: with no fields allowed, any field makes the line no report', () => {
  assert.is(parsePodReport('t: tar-exit=0 uid=1 unhashed\n', 't'), undefined)
  assert.equal(parsePodReport('t: tar-exit=0 unhashed\n', 't'), {tarExit: 0, fields: {}})
})

test.run()
