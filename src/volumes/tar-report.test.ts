import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {execa} from 'execa'
import {mkdtemp, mkdir, rm, stat, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {FIXUP_SCRIPT, fixupInput, ownersNotKept, parseUntarReport, type MemberOwner} from './tar-in.js'
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

test('parseUntarReport: the mount root as it ended up', () => {
  const sha = 'b'.repeat(64)
  assert.equal(parseUntarReport(`kubesnap-untar: tar-exit=0 uid=999 gids=999 root=0:999:2777 sha256=${sha}\n`), {tarExit: 0, sha256: sha, uid: 999, gids: [999], root: {uid: 0, gid: 999, mode: 0o2777}})
  assert.equal(parseUntarReport('kubesnap-untar: tar-exit=0 uid=999 gids=999 root= unhashed\n'), {tarExit: 0, uid: 999, gids: [999]}, 'no stat in the container')
})

test('the fixup script (busybox sh, xargs, chmod): one command per member, names with spaces and a leading dash', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-fixup-'))
  try {
    await mkdir(join(dir, '-dash dir', 'deep'), {recursive: true})
    await symlink('nowhere', join(dir, 'link'))
    const members = [{arg: '750', path: './-dash dir/deep'}, {arg: '700', path: '-dash dir'}]
    const input = fixupInput(members)
    assert.equal(input.toString('latin1').split('\0'), ['750', './-dash dir/deep', '700', './-dash dir', ''])
    const r = await execa('busybox', ['sh', '-c', FIXUP_SCRIPT, 'kubesnap-fixup', dir, String(input.length), 'chmod'], {input: Buffer.concat([input, Buffer.from('ignored past N')])})
    assert.is(r.exitCode, 0, r.stderr)
    assert.is((await stat(join(dir, '-dash dir'))).mode & 0o7777, 0o700)
    assert.is((await stat(join(dir, '-dash dir', 'deep'))).mode & 0o7777, 0o750)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test.run()
