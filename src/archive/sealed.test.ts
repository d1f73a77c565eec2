/**
 * Sealed fields: in an encrypted archive the writer keeps a stream entry's
 * command lines and stderr out of the plain manifest (an armored age file in
 * `extra.sealed`), the reader opens them with an identity, the `age` CLI opens
 * them by hand, and a damaged or foreign sealed field is refused.
 */
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ageKeys} from './age-keys.test.js'
import {ageCipher, ageDecrypt, loadIdentities, parseRecipients} from './crypto.js'
import {ArchiveError} from './errors.js'
import type {StreamEntry} from './manifest.js'
import {openArchive} from './reader.js'
import {removeDir, tempDir, writerOptions} from './sample.test.js'
import {decryptWith, sealEntry, unsealEntry} from './sealed.js'
import {createArchiveWriter} from './writer.js'

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8')
const EXTRA = {workload: 'statefulset/db', pod: 'db-0', container: 'db', command: 'PGPASSWORD=hunter2 pg_dump -Fc', load: 'pg_restore -d app', stderr: 'warning: hunter2'}

/** Writes an archive with one dump carrying EXTRA; returns its path and the manifest text as stored. */
async function dumpArchive(dir: string, encrypted: boolean): Promise<{path: string; text: string}> {
  const k = ageKeys()
  const recipients = await parseRecipients([k.agePublic], [])
  const writer = await createArchiveWriter(writerOptions(dir, encrypted ? {cipher: ageCipher(recipients), recipients: recipients.map((r) => r.text)} : {}))
  await writer.addStream({type: 'dump', name: 'db', extra: {...EXTRA}}, Readable.from([Buffer.from('dump bytes')]))
  const {path} = await writer.finish()
  const reader = await openArchive(path)
  const text = (await readFile(path)).subarray(reader.trailer.manifestOffset, reader.trailer.manifestOffset + reader.trailer.manifestSize).toString()
  return {path, text}
}

test('a plain archive keeps extra as given; an encrypted one seals command, load and stderr', async () => {
  const dir = await tempDir()
  try {
    const plain = await dumpArchive(`${dir}/plain`, false)
    assert.equal(((await openArchive(plain.path)).manifest.entries[0] as StreamEntry).extra, EXTRA)

    const sealed = await dumpArchive(`${dir}/sealed`, true)
    assert.not.ok(sealed.text.includes('hunter2') || sealed.text.includes('pg_restore') || sealed.text.includes('pg_dump'), 'no command line or stderr in the stored manifest')
    const entry = (await openArchive(sealed.path)).manifest.entries[0] as StreamEntry
    assert.equal(Object.keys(entry.extra!).sort(), ['container', 'pod', 'sealed', 'workload'])
    assert.match(String(entry.extra!.sealed), /^-----BEGIN AGE ENCRYPTED FILE-----\n/)

    // By hand, with the README's recipe: tar, node, age -d.
    const block = /```sh\n(A=\S+ DUMP=db\n(?:(?!```)[\s\S])*?age -d -i key\.txt[^\n]*\n)```/.exec(README)
    assert.ok(block, 'the README has the sealed-fields recipe')
    const script = block[1].replace(/^A=\S+/, `A=${JSON.stringify(sealed.path)}`).replace('key.txt', JSON.stringify(ageKeys().ageKey))
    const byHand = spawnSync('sh', ['-c', script], {encoding: 'utf8'})
    assert.is(byHand.status, 0, byHand.stderr)
    assert.equal(JSON.parse(byHand.stdout), {command: EXTRA.command, load: EXTRA.load, stderr: EXTRA.stderr})

    // A reader with the identity sees extra as in a plain archive.
    const reader = await openArchive(sealed.path, {decrypt: ageDecrypt(await loadIdentities([ageKeys().ageKey]))})
    await reader.unseal()
    assert.equal((reader.manifest.entries[0] as StreamEntry).extra, EXTRA)
  } finally {
    await removeDir(dir)
  }
})

test('sealEntry leaves entries without sealed fields alone', async () => {
  const cipher = ageCipher(await parseRecipients([ageKeys().agePublic], []))
  const volume = {type: 'volume', name: 'data', compression: 'gzip', parts: [], offset: 0, size: 0, sha256: '', rawSize: 0, rawSha256: '', extra: {mountPath: '/data'}} as StreamEntry
  assert.is(await sealEntry(volume, (d) => cipher.encryptBuffer(d)), volume)
})

test('unsealEntry refuses what it cannot open or what holds other fields, as a damaged archive', async () => {
  const recipients = await parseRecipients([ageKeys().agePublic], [])
  const cipher = ageCipher(recipients)
  const decrypt = decryptWith(ageDecrypt(await loadIdentities([ageKeys().ageKey])))
  const base = {type: 'dump', name: 'db', compression: 'gzip', parts: [], offset: 0, size: 0, sha256: '', rawSize: 0, rawSha256: ''} as unknown as StreamEntry
  /** An armored age file of `text` to the test key, as the writer would seal it. */
  const armored = async (text: string) => {
    const entry = await sealEntry({...base, extra: {command: 'x'}}, () => cipher.encryptBuffer(Buffer.from(text)))
    return String((entry as StreamEntry).extra!.sealed)
  }
  const cases: Array<[string, string, RegExp]> = [
    ['not armor', 'hello', /are not an ASCII-armored age file/],
    ['a JSON list', await armored('["x"]'), /are not a JSON object/],
    ['not JSON', await armored('{'), /are not a JSON object/],
    ['damaged', (await armored('{}')).replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA'), /cannot be decrypted/],
    ['another field', await armored('{"workload":"deployment/evil"}'), /hold "workload", which is not a sealed field/],
    ['a number', await armored('{"load":1}'), /hold "load", which is not a sealed field/],
  ]
  for (const [what, sealed, message] of cases) {
    try {
      await unsealEntry({...base, extra: {sealed}}, decrypt, 'A.kubesnap.tar')
      assert.unreachable(what)
    } catch (err) {
      assert.instance(err, ArchiveError, what)
      assert.match((err as Error).message, message, what)
      assert.match((err as Error).message, /sealed fields of dump db in A\.kubesnap\.tar/, what)
    }
  }
})

test.run()
