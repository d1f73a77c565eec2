import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readUserFile, whyUnreadable} from './errors.js'

test('whyUnreadable: the error code in words, else the system\'s own words', () => {
  const rows: [string, unknown, string][] = [
    ['missing', Object.assign(new Error('ENOENT: no such file or directory'), {code: 'ENOENT'}), 'does not exist'],
    ['a file where a directory should be on the way', Object.assign(new Error('ENOTDIR: not a directory'), {code: 'ENOTDIR'}), 'does not exist'],
    ['no permission', Object.assign(new Error('EACCES: permission denied'), {code: 'EACCES'}), 'is not readable by this user'],
    ['not permitted', Object.assign(new Error('EPERM: operation not permitted'), {code: 'EPERM'}), 'is not readable by this user'],
    ['a directory', Object.assign(new Error('EISDIR: illegal operation on a directory'), {code: 'EISDIR'}), 'is a directory, not a file'],
    ['anything else', Object.assign(new Error('EIO: i/o error, read'), {code: 'EIO'}), 'cannot be read (EIO: i/o error, read)'],
    ['not an Error', 'boom', 'cannot be read (boom)'],
  ]
  for (const [name, err, expected] of rows) assert.is(whyUnreadable(err), expected, name)
})

test('readUserFile: the text, or one usage error (exit 2) in the caller\'s sentence', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-read-'))
  try {
    await writeFile(join(dir, 'plan.yaml'), 'version: 1\n')
    await writeFile(join(dir, 'big'), 'x'.repeat(2000))
    await symlink(join(dir, 'gone'), join(dir, 'dangling'))
    const sentence = (why: string) => `The file ${why}; give another.`
    assert.is(await readUserFile(join(dir, 'plan.yaml'), sentence), 'version: 1\n')
    assert.is(await readUserFile(join(dir, 'big'), sentence), 'x'.repeat(2000), 'no limit unless asked')
    const rows: [string, string, number | undefined, string][] = [
      ['missing', join(dir, 'nope'), undefined, 'The file does not exist; give another.'],
      ['a link to nothing', join(dir, 'dangling'), undefined, 'The file does not exist; give another.'],
      ['under a file', join(dir, 'plan.yaml', 'x'), undefined, 'The file does not exist; give another.'],
      ['a directory', dir, undefined, 'The file is a directory, not a file; give another.'],
      ['a device', '/dev/null', undefined, 'The file is not a file; give another.'],
      ['over the limit', join(dir, 'big'), 1024, 'The file is 2000 bytes, too large to be one; give another.'],
    ]
    for (const [name, path, maxBytes, expected] of rows) {
      try {
        await readUserFile(path, sentence, {maxBytes})
        assert.unreachable(name)
      } catch (err) {
        assert.is((err as Error).message, expected, name)
        assert.is((err as {exitCode: number}).exitCode, 2, name)
      }
    }
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test.run()
