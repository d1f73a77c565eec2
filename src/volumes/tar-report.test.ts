import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ownersNotKept, parseUntarReport, type MemberOwner} from './tar-in.js'
import {unreadablePaths} from './tar-out.js'

test('unreadablePaths: what busybox and GNU tar say they could not read, in order, once each', () => {
  // busybox 1.35 tar as uid 65534 over a 0600 file and a 0700 directory of other owners (measured).
  const busybox = "tar: can't open './b': Permission denied\ntar: ./priv: Permission denied\ntar: error exit delayed from previous errors\n"
  assert.equal(unreadablePaths(busybox), ['./b', './priv'])
  const gnu = 'tar: ./pgdata/base/1: Cannot open: Permission denied\ntar: ./pgdata: Cannot savedir: Permission denied\ntar: Exiting with failure status due to previous errors\n'
  assert.equal(unreadablePaths(gnu), ['./pgdata/base/1', './pgdata'])
  assert.equal(unreadablePaths("tar: can't open 'a b': Permission denied\ntar: can't open 'a b': Permission denied\n"), ['a b'])
  assert.equal(unreadablePaths('tar: ./x: file changed as we read it\n'), [])
  assert.equal(unreadablePaths(''), [])
})

test('parseUntarReport: exit, ids and hash; old report lines without ids still read', () => {
  const sha = 'a'.repeat(64)
  assert.equal(parseUntarReport(`kubesnap-untar: tar-exit=0 uid=999 gids=999,5 sha256=${sha}\n`), {tarExit: 0, sha256: sha, uid: 999, gids: [999, 5]})
  assert.equal(parseUntarReport('kubesnap-untar: tar-exit=2 uid=0 gids=0 unhashed\n'), {tarExit: 2, uid: 0, gids: [0]})
  assert.equal(parseUntarReport('kubesnap-untar: tar-exit=0 uid= gids= unhashed\n'), {tarExit: 0}, 'no id in the container')
  assert.equal(parseUntarReport(`kubesnap-untar: tar-exit=0 sha256=${sha}\n`), {tarExit: 0, sha256: sha})
  assert.is(parseUntarReport('kubesnap-untar: garbage\n'), undefined)
})

test('ownersNotKept: root keeps every owner; anyone else only its own uid with its own groups', () => {
  const owners: MemberOwner[] = [
    {uid: 999, gid: 999, members: 10, example: './pgdata/PG_VERSION'},
    {uid: 999, gid: 5, members: 2, example: './pgdata/log'},
    {uid: 0, gid: 0, members: 1, example: './'},
  ]
  assert.equal(ownersNotKept(owners, 0, [0]), {members: 0})
  assert.equal(ownersNotKept(owners, 999, [999, 5]), {members: 1, first: owners[2]})
  assert.equal(ownersNotKept(owners, 999, [999]), {members: 3, first: owners[1]})
  assert.equal(ownersNotKept(owners, 1000650000, [0, 1000650000]), {members: 13, first: owners[0]})
})

test.run()
