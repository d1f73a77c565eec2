import {generateHybridIdentity} from 'age-encryption'
import {execFileSync, spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable, Transform, Writable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {pipeline} from 'node:stream/promises'
import {inspect} from 'node:util'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {ageKeys, runAge} from './age-keys.test.js'
import {ageCipher, ageDecrypt, loadIdentities, parseRecipients, type AgeIdentities} from './crypto.js'
import {ArchiveError} from './errors.js'
import {isStreamEntry, type ManifestEntry, type ObjectEntry, type StreamEntry} from './manifest.js'
import {openArchive} from './reader.js'
import {chunked, recipeArchive, removeDir, SAMPLE_OBJECTS, tempDir, writerOptions} from './sample.test.js'
import {verifyArchive} from './verify.js'
import {createArchiveWriter} from './writer.js'

const objectEntries = (entries: readonly ManifestEntry[]) => entries.filter((e): e is ObjectEntry => !isStreamEntry(e))
const streamEntry = (entries: readonly ManifestEntry[], name: string) => entries.find((e): e is StreamEntry => isStreamEntry(e) && e.name === name)!

/** Recipients for all three test keys: age, ssh-ed25519, ssh-rsa. */
async function allRecipients() {
  const k = ageKeys()
  return parseRecipients([k.agePublic], [`${k.ed25519}.pub`, `${k.rsa}.pub`])
}

async function encrypt(data: Buffer, chunks = true): Promise<Buffer> {
  const cipher = ageCipher(await allRecipients())
  return buffer((chunks ? chunked(data) : Readable.from([data])).pipe(cipher.encrypt()))
}

/** Runs `input` through a fresh decrypt transform; resolves with the plaintext. */
async function decrypt(identities: AgeIdentities, input: Buffer, archivePath?: string): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(chunked(input), ageDecrypt(identities, archivePath)(), new Writable({write: (c, _e, cb) => (out.push(c), cb())}))
  return Buffer.concat(out)
}

/** The error a promise rejects with (or fails the test). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

// Sizes around the 64 KiB chunk boundary, where STREAM's last-chunk rule bites.
const SIZES = [0, 1, 1000, 65_535, 65_536, 65_537, 3 * 65_536, 200_000]

test('round trip through our transforms, every size around the chunk boundary', async () => {
  const k = ageKeys()
  const identities = await loadIdentities([k.ageKey])
  for (const size of SIZES) {
    const data = randomBytes(size)
    const sealed = await encrypt(data)
    assert.is(sealed.subarray(0, 22).toString(), 'age-encryption.org/v1\n')
    assert.ok((await decrypt(identities, sealed)).equals(data), `${size} bytes`)
  }
})

test('our files decrypt with the age CLI: age -d -i key.txt, id_ed25519, id_rsa (streamed and encryptBuffer)', async () => {
  const k = ageKeys()
  const cipher = ageCipher(await allRecipients())
  for (const size of [0, 65_536, 200_000]) {
    const data = randomBytes(size)
    for (const sealed of [await encrypt(data), await cipher.encryptBuffer(data)]) {
      for (const key of [k.ageKey, k.ed25519, k.rsa]) {
        const {code, stdout, stderr} = await runAge(['-d', '-i', key], sealed)
        assert.is(code, 0, stderr)
        assert.ok(stdout.equals(data), `${size} bytes with ${key}`)
      }
    }
  }
})

test('files the age CLI made decrypt with our identities: age -r age1…, age -R id_ed25519.pub / id_rsa.pub', async () => {
  const k = ageKeys()
  for (const size of [0, 5, 65_536, 150_000]) {
    const data = randomBytes(size)
    const cases: [string[], string][] = [
      [['-r', k.agePublic], k.ageKey],
      [['-R', `${k.ed25519}.pub`], k.ed25519],
      [['-R', `${k.rsa}.pub`], k.rsa],
      [['-R', `${k.rsaPem}.pub`], k.rsaPem],
    ]
    for (const [args, key] of cases) {
      const {code, stdout} = await runAge(args, data)
      assert.is(code, 0)
      assert.ok((await decrypt(await loadIdentities([key]), stdout)).equals(data), `${size} bytes, ${args.join(' ')}`)
    }
  }
})

test('the wrong key: one clear sentence naming the archive, and the problem for --json', async () => {
  const k = ageKeys()
  const sealed = await encrypt(Buffer.from('secret'))
  const err = await rejection(decrypt(await loadIdentities([k.otherAgeKey]), sealed, '/backups/A.kubesnap.tar'))
  assert.instance(err, ArchiveError)
  assert.is((err as ArchiveError).problem, 'no matching identity')
  assert.is(err.message, 'None of the identities given can decrypt /backups/A.kubesnap.tar; use --identity with the key matching one of its recipients.')
  const bare = await rejection(decrypt(await loadIdentities([k.otherAgeKey]), sealed))
  assert.match(bare.message, /^None of the identities given can decrypt this age file;/)
  // Several identities, the right one last: it is found.
  const both = await loadIdentities([k.otherAgeKey, k.rsa])
  assert.is((await decrypt(both, sealed)).toString(), 'secret')
})

test('a flipped byte anywhere (header, nonce, payload, last tag) or a cut fails; nothing unauthenticated comes out', async () => {
  const k = ageKeys()
  const identities = await loadIdentities([k.ed25519])
  const data = randomBytes(3 * 65_536 + 100)
  const sealed = await encrypt(data)
  const headerEnd = sealed.indexOf('\n', sealed.indexOf('\n---') + 1) + 1
  const offsets = {'a stanza': 40, 'the MAC': headerEnd - 5, 'the nonce': headerEnd + 3, 'the first chunk': headerEnd + 16 + 10, 'the last tag': sealed.length - 1}
  for (const [where, offset] of Object.entries(offsets)) {
    const damaged = Buffer.from(sealed)
    damaged[offset] ^= 0x01
    const out: Buffer[] = []
    const err = await rejection(pipeline(Readable.from([damaged]), ageDecrypt(identities, 'A.tar')(), new Writable({write: (c, _e, cb) => (out.push(c), cb())})))
    assert.instance(err, ArchiveError, where)
    assert.ok(['decryption failed', 'no matching identity'].includes((err as ArchiveError).problem), where)
    const emitted = Buffer.concat(out)
    assert.ok(data.subarray(0, emitted.length).equals(emitted), `only authenticated plaintext before the error (${where})`)
  }
  const cuts = {'mid-chunk': sealed.length - 50, 'at a chunk boundary': headerEnd + 16 + 3 * (65_536 + 16), 'in the header': 30}
  for (const [where, length] of Object.entries(cuts)) {
    const err = await rejection(decrypt(identities, sealed.subarray(0, length), 'A.tar'))
    assert.instance(err, ArchiveError, where)
    assert.is((err as ArchiveError).problem, 'decryption failed', where)
  }
  const plain = await rejection(decrypt(identities, Buffer.from('{"kind":"Secret"}'), 'A.tar'))
  assert.match(plain.message, /An encrypted entry of A.tar is not age-encrypted/)
})

test('a 64 MiB stream: through the age CLI and back, with flat memory and backpressure', async () => {
  const k = ageKeys()
  const identities = await loadIdentities([k.ageKey])
  const cipher = ageCipher(await parseRecipients([k.agePublic], []))
  const total = 64 * 1024 * 1024
  const block = randomBytes(1024 * 1024)
  const source = () => {
    let sent = 0
    return new Readable({
      read() {
        if (sent === total) return this.push(null)
        sent += 256 * 1024
        // Vary the content per chunk so a chunk replayed or dropped would change the hash.
        this.push(Buffer.concat([Buffer.from(String(sent).padStart(16)), block.subarray(16, 256 * 1024)]))
      },
    })
  }
  const expected = createHash('sha256')
  await pipeline(source(), new Writable({write: (c, _e, cb) => (expected.update(c), cb())}))

  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  const sample = new Transform({
    transform(chunk, _e, cb) {
      peak = Math.max(peak, process.memoryUsage().rss)
      cb(null, chunk)
    },
  })
  // Our encryption → age -d → our decryption of what age re-encrypts: both directions on one big stream.
  const age = spawn('age', ['-d', '-i', k.ageKey], {stdio: ['pipe', 'pipe', 'inherit']})
  const reencrypt = spawn('age', ['-r', k.agePublic], {stdio: ['pipe', 'pipe', 'inherit']})
  const hash = createHash('sha256')
  await Promise.all([
    pipeline(source(), cipher.encrypt(), sample, age.stdin),
    pipeline(age.stdout, reencrypt.stdin),
    pipeline(reencrypt.stdout, ageDecrypt(identities)(), new Writable({write: (c, _e, cb) => (hash.update(c), cb())})),
  ])
  assert.is(hash.digest('hex'), expected.digest('hex'))
  const growth = (peak - before) / 1024 / 1024
  assert.ok(growth < 40, `RSS grew ${growth.toFixed(1)} MiB while 64 MiB streamed`)

  // A slow consumer: the source is read only a few chunks ahead of it.
  let pulled = 0
  let consumed = 0
  let maxAhead = 0
  const counted = source().on('data', (c: Buffer) => (pulled += c.length))
  await pipeline(
    counted,
    cipher.encrypt(),
    new Writable({
      highWaterMark: 64 * 1024,
      write(c: Buffer, _e, cb) {
        consumed += c.length
        maxAhead = Math.max(maxAhead, pulled - consumed)
        if (consumed < 8 * 1024 * 1024) setTimeout(cb, 0)
        else cb()
      },
    }),
  )
  assert.ok(maxAhead < 2 * 1024 * 1024, `the source ran ${maxAhead} bytes ahead of the consumer`)
})

test('parseRecipients: flags and recipients files (comments, blank lines, duplicates)', async () => {
  const k = ageKeys()
  const file = join(k.dir, 'recipients.txt')
  await writeFile(file, `# team\n\n${k.agePublic}\n  ${await readFile(`${k.ed25519}.pub`, 'utf8')}\n# old key\n${await readFile(`${k.rsa}.pub`, 'utf8')}`)
  const recipients = await parseRecipients([k.agePublic], [file])
  assert.equal(recipients.map((r) => r.text.split(' ')[0].slice(0, 4)), ['age1', 'ssh-', 'ssh-'])
  assert.not.ok(recipients.some((r) => r.text.includes('test@kubesnap')), 'comments are not part of the key')
  assert.equal(await parseRecipients([], []), [])
})

test('parseRecipients errors name the flag value or FILE:LINE, and never echo a secret key', async () => {
  const k = ageKeys()
  const secret = (await readFile(k.ageKey, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!
  const file = (name: string, text: string) => {
    const path = join(k.dir, name)
    return writeFile(path, text).then(() => path)
  }
  const badChecksum = k.agePublic.slice(0, -1) + (k.agePublic.endsWith('q') ? 'p' : 'q')
  const cases: [string[], string[], RegExp][] = [
    [[secret], [], /^--encrypt-to \(value not shown\): this is an age secret key \(AGE-SECRET-KEY-1…\), not a recipient: give its public key, which age-keygen -y KEYFILE prints/],
    [[], [await file('r1.txt', `${k.agePublic}\n# x\n${secret}\n`)], /r1\.txt:3: this is an age secret key/],
    [[badChecksum], [], /^--encrypt-to "age1.{20}…": not a valid age1… recipient \(bad checksum or length\)\.$/],
    [[], [await file('r2.txt', '\n\nhello world\n')], /r2\.txt:3: not a recipient: expected age1…, ssh-ed25519 … or ssh-rsa …\.$/],
    [[], [await file('r3.txt', await readFile(`${k.ecdsa}.pub`, 'utf8'))], /r3\.txt:1: ssh key type ecdsa-sha2-nistp256 cannot be an age recipient/],
    [[], [await file('r4.txt', '# nobody\n\n')], /r4\.txt has no recipients/],
    [[], [k.ed25519], /id_ed25519 is a private key, not a recipients file: give its public key \(for ssh, the \.pub file\)\./],
    [['age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t'], [], /age plugin recipients \(age1yubikey1…\) need age-plugin-yubikey/],
    [['age1pq1qqqq'], [], /post-quantum and tag recipients/],
    [[], [join(k.dir, 'missing.txt')], /^The recipients file .*missing\.txt does not exist; check the path\.$/],
  ]
  for (const [args, files, message] of cases) {
    const err = await rejection(parseRecipients(args, files))
    assert.instance(err, KubesnapError)
    assert.match(err.message, message)
    assert.not.ok(err.message.includes(secret.slice(16, 40)), 'the secret key is not echoed')
  }
})

test('loadIdentities: age-keygen files and ssh keys; errors name the file and hold no key material', async () => {
  const k = ageKeys()
  const secret = (await readFile(k.ageKey, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!
  // A post-quantum key (age-encryption reads those) next to an X25519 one in the same file.
  const mixed = join(k.dir, 'mixed.txt')
  await writeFile(mixed, `# pq\n${await generateHybridIdentity()}\n${secret}\n`)
  const identities = await loadIdentities([k.ageKey, k.ed25519, k.rsa, k.rsaPem, mixed])
  assert.is(identities.size, 6)
  assert.is((await decrypt(await loadIdentities([mixed]), await encrypt(Buffer.from('pq')))).toString(), 'pq')
  assert.not.ok(inspect(identities, {depth: 10}).includes(secret.slice(16)))
  assert.not.ok(JSON.stringify(identities).includes(secret.slice(16)))
  const file = (name: string, text: string) => {
    const path = join(k.dir, name)
    return writeFile(path, text).then(() => path)
  }
  const broken = secret.slice(0, -2) + (secret.endsWith('Q') ? 'PP' : 'QQ')
  const cases: [string, RegExp][] = [
    [k.ed25519Protected, /id_protected is protected by a passphrase; kubesnap reads only unencrypted identity files: decrypt a copy with ssh-keygen -p or use an age identity\.$/],
    [k.ecdsa, /id_ecdsa: ssh key type ecdsa-sha2-nistp256 cannot be an age recipient or identity/],
    [`${k.ed25519}.pub`, /id_ed25519\.pub:1: this is an ssh public key, not an identity: give the private key file \(without \.pub\)\.$/],
    [await file('i1.txt', `# created: now\n${broken}\n`), /i1\.txt:2: not a valid AGE-SECRET-KEY-1… identity \(bad checksum or length\)\.$/],
    [await file('i2.txt', `# x\n\n${k.agePublic}\n`), /i2\.txt:3: this is a public key \(a recipient\), not an identity/],
    [await file('i3.txt', 'password123\n'), /i3\.txt:1: not an age identity/],
    [await file('i4.txt', '# empty\n'), /i4\.txt has no identities/],
    [await file('i5.age', 'age-encryption.org/v1\n-> X25519 abc\n'), /i5\.age is an age-encrypted identity file/],
    [k.dir, /^The identity file .* is a directory, not a file; check the path\.$/],
  ]
  for (const [path, message] of cases) {
    const err = await rejection(loadIdentities([path]))
    assert.instance(err, KubesnapError, path)
    assert.match(err.message, message)
    assert.not.ok(err.message.includes(broken.slice(16, 40)) || err.message.includes('password123'), 'no key material in the message')
  }
})

test('an encrypted archive: objects and volume come back through the reader; verify needs no key', async () => {
  const k = ageKeys()
  const dir = await tempDir()
  try {
    const writer = await createArchiveWriter(writerOptions(dir, {cipher: ageCipher(await allRecipients())}))
    for (const o of SAMPLE_OBJECTS) await writer.addObject(o.meta, o.json)
    const volume = randomBytes(300_000)
    await writer.addStream({type: 'volume', name: 'data'}, chunked(volume))
    const {path, manifest} = await writer.finish()
    assert.ok(streamEntry(manifest.entries, 'data').parts.length > 1, 'the volume spans several parts')
    assert.ok(objectEntries(manifest.entries).every((e) => e.path.endsWith('.json.age')))
    assert.is((await verifyArchive(path)).ok, true)

    for (const key of [k.ageKey, k.ed25519, k.rsa]) {
      const archive = await openArchive(path, {decrypt: ageDecrypt(await loadIdentities([key]), path)})
      for (const entry of objectEntries(manifest.entries)) {
        assert.is((await archive.readObject(entry)).toString(), SAMPLE_OBJECTS.find((o) => o.meta.name === entry.name)!.json)
      }
      assert.ok((await buffer(archive.readStream(streamEntry(manifest.entries, 'data')))).equals(volume))
    }
    const wrong = await openArchive(path, {decrypt: ageDecrypt(await loadIdentities([k.otherAgeKey]), path)})
    const err = await rejection(wrong.readObject(objectEntries(manifest.entries)[0]))
    assert.is(err.message, `None of the identities given can decrypt ${path}; use --identity with the key matching one of its recipients.`)
  } finally {
    await removeDir(dir)
  }
})

test('the README recipe: tar x, age -d each member, cat parts | age -d | gunzip | tar x', async () => {
  const k = ageKeys()
  const dir = await tempDir()
  try {
    let secret!: ObjectEntry
    const cipher = ageCipher(await parseRecipients([k.agePublic], []))
    const {src, path, out, dest} = await recipeArchive(dir, {cipher}, async (writer) => {
      secret = await writer.addObject(SAMPLE_OBJECTS[0].meta, SAMPLE_OBJECTS[0].json)
    })
    const sh = (script: string) => execFileSync('sh', ['-c', script], {cwd: out, env: {...process.env, KEY: k.ageKey, ARCHIVE: path, DEST: dest}})
    sh('tar xf "$ARCHIVE"')
    assert.is(sh(`age -d -i "$KEY" ${secret.path}`).toString(), SAMPLE_OBJECTS[0].json)
    sh('cat volumes/data/part-*.tar.gz.age | age -d -i "$KEY" | gunzip | tar xf - -C "$DEST"')
    execFileSync('diff', ['-r', src, dest])
  } finally {
    await removeDir(dir)
  }
})

test.run()
