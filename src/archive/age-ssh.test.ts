import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {inspect} from 'node:util'
import {Stanza} from 'age-encryption'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ageKeys, runAge} from './age-keys.test.js'
import {parseSshIdentity, parseSshRecipient, sshTag, SshKeyError, SshEd25519Identity, SshRsaIdentity} from './age-ssh.js'

const pub = (path: string) => readFileSync(`${path}.pub`, 'utf8')
const priv = (path: string) => readFileSync(path, 'utf8')

/** The stanza lines (`-> …`) of an age file's header. */
function stanzaLines(file: Buffer): string[] {
  const text = file.subarray(0, file.indexOf('\n---')).toString('latin1')
  return text.split('\n').filter((l) => l.startsWith('-> '))
}

/** Parses a header's stanzas the plain way, for feeding identities. */
function stanzasOf(file: Buffer): Stanza[] {
  const lines = file.subarray(0, file.indexOf('\n---') + 1).toString('latin1').split('\n')
  const stanzas: Stanza[] = []
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].startsWith('-> ')) continue
    let body = ''
    for (let j = i + 1; ; j++) {
      body += lines[j]
      if (lines[j].length < 64) break
    }
    stanzas.push(new Stanza(lines[i].slice(3).split(' '), Buffer.from(body, 'base64')))
  }
  return stanzas
}


/** The SshKeyError `run` throws, its message matching `message`. */
function sshKeyError(name: string, run: () => unknown, message: RegExp): SshKeyError {
  try {
    run()
  } catch (err) {
    assert.instance(err, SshKeyError, name)
    assert.match((err as Error).message, message, name)
    return err as SshKeyError
  }
  return assert.unreachable(name) as never
}

test('ssh tags are what the age CLI writes: the first 4 bytes of sha256 of the wire key', async () => {
  const k = ageKeys()
  for (const key of [k.ed25519, k.rsa]) {
    const recipient = parseSshRecipient(pub(key))
    const {code, stdout} = await runAge(['-R', `${key}.pub`], Buffer.from('x'))
    assert.is(code, 0)
    const [line] = stanzaLines(stdout)
    assert.is(line.split(' ')[2], sshTag(recipient.wire), key)
  }
})

test('recipients wrap and identities unwrap a file key, for ed25519 and rsa (OpenSSH and PEM files)', () => {
  const k = ageKeys()
  for (const key of [k.ed25519, k.rsa, k.rsaPem]) {
    const recipient = parseSshRecipient(pub(key))
    const identity = parseSshIdentity(priv(key))
    assert.is(identity.recipient, recipient.toString(), 'the identity knows its public key')
    const fileKey = randomBytes(16)
    const stanzas = recipient.wrapFileKey(fileKey)
    assert.is(stanzas.length, 1)
    assert.ok(Buffer.from(identity.unwrapFileKey(stanzas)!).equals(fileKey), key)
  }
})

test('stanzas the age CLI wrote open with our identities', async () => {
  const k = ageKeys()
  const {stdout} = await runAge(['-R', `${k.ed25519}.pub`, '-R', `${k.rsa}.pub`], Buffer.from('hello'))
  const stanzas = stanzasOf(stdout)
  assert.equal(stanzas.map((s) => s.args[0]), ['ssh-ed25519', 'ssh-rsa'])
  const a = parseSshIdentity(priv(k.ed25519)).unwrapFileKey(stanzas)
  const b = parseSshIdentity(priv(k.rsa)).unwrapFileKey(stanzas)
  assert.is(a?.length, 16)
  assert.ok(Buffer.from(a!).equals(Buffer.from(b!)), 'both stanzas wrap the same file key')
})

test('an identity returns null for stanzas of other keys, and throws for a damaged stanza of its own', () => {
  const k = ageKeys()
  const fileKey = randomBytes(16)
  const ed = parseSshIdentity(priv(k.ed25519))
  const rsa = parseSshIdentity(priv(k.rsa))
  const toRsa = parseSshRecipient(pub(k.rsaPem)).wrapFileKey(fileKey)
  const toEd = parseSshRecipient(pub(k.ed25519)).wrapFileKey(fileKey)
  assert.is(ed.unwrapFileKey(toRsa), null)
  assert.is(rsa.unwrapFileKey(toRsa), null, 'another rsa key: the tag differs')
  assert.is(rsa.unwrapFileKey(toEd), null)
  // Flip a bit of the first byte: a damaged body, whatever its random first byte was.
  const flipFirst = (body: Uint8Array) => {
    const copy = Buffer.from(body)
    copy[0] ^= 1
    return copy
  }
  const damaged = toEd.map((s) => new Stanza(s.args, flipFirst(s.body)))
  assert.throws(() => ed.unwrapFileKey(damaged), /does not open/)
  const rsaOwn = parseSshRecipient(pub(k.rsa)).wrapFileKey(fileKey).map((s) => new Stanza(s.args, flipFirst(s.body)))
  assert.throws(() => rsa.unwrapFileKey(rsaOwn), /does not open/)
  assert.throws(() => ed.unwrapFileKey([new Stanza(['ssh-ed25519', 'AAAA'], new Uint8Array(32))]), /invalid ssh-ed25519 stanza/)
})

test('key types age cannot use are named in the error', () => {
  const k = ageKeys()
  const cases: [string, () => unknown, RegExp][] = [
    ['ecdsa public key', () => parseSshRecipient(pub(k.ecdsa)), /ssh key type ecdsa-sha2-nistp256 cannot be an age recipient/],
    ['sk- public key', () => parseSshRecipient('sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t me'), /ssh key type sk-ssh-ed25519@openssh.com cannot/],
    ['ssh-dss public key', () => parseSshRecipient('ssh-dss AAAAB3NzaC1kc3M='), /ssh key type ssh-dss cannot/],
    ['ecdsa private key', () => parseSshIdentity(priv(k.ecdsa)), /ssh key type ecdsa-sha2-nistp256 cannot/],
    ['1024-bit rsa', () => parseSshRecipient(pub(k.rsa1024)), /has 1024 bits; age needs at least 2048/],
    ['1024-bit rsa identity', () => parseSshIdentity(priv(k.rsa1024)), /has 1024 bits/],
    ['EC PEM', () => parseSshIdentity('-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n'), /ECDSA keys cannot be age identities/],
  ]
  for (const [name, run, message] of cases) assert.is(sshKeyError(name, run, message).reason, 'unsupported', name)
})

test('a passphrase-protected key is recognized (OpenSSH and PEM)', () => {
  const k = ageKeys()
  const pemEncrypted = '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n'
  for (const text of [priv(k.ed25519Protected), pemEncrypted, '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n']) {
    try {
      parseSshIdentity(text)
      assert.unreachable()
    } catch (err) {
      assert.instance(err, SshKeyError)
      assert.is((err as SshKeyError).reason, 'passphrase')
    }
  }
})

test('malformed keys fail with a reason and no key material', () => {
  const k = ageKeys()
  const text = priv(k.ed25519)
  const body = text.split('\n').slice(1, -2).join('')
  const cut = `-----BEGIN OPENSSH PRIVATE KEY-----\n${Buffer.from(body, 'base64').subarray(0, 150).toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`
  const [type, blob] = pub(k.ed25519).split(' ')
  const cases: [string, () => unknown, RegExp][] = [
    ['cut short', () => parseSshIdentity(cut), /cut short/],
    ['not PEM', () => parseSshIdentity('hello'), /not a PEM private key/],
    ['bad base64', () => parseSshRecipient(`${type} ${blob.slice(0, -3)}!!!`), /not valid base64/],
    ['no key', () => parseSshRecipient('ssh-ed25519'), /not valid base64/],
    ['type mismatch', () => parseSshRecipient(`ssh-rsa ${blob}`), /says it is of another type/],
  ]
  for (const [name, run, message] of cases) assert.not.ok(sshKeyError(name, run, message).message.includes(body.slice(0, 20)), 'no key material')
})

test('identities hold key objects only: inspecting one shows no key', () => {
  const k = ageKeys()
  const ed = parseSshIdentity(priv(k.ed25519))
  const rsa = parseSshIdentity(priv(k.rsa))
  assert.instance(ed, SshEd25519Identity)
  assert.instance(rsa, SshRsaIdentity)
  const shown = inspect([ed, rsa], {depth: 10, showHidden: true}) + JSON.stringify([ed, rsa])
  // The private section holds seed ‖ public key: the seed is the 32 bytes before the last copy of the public key.
  const data = Buffer.from(priv(k.ed25519).split('\n').slice(1, -2).join(''), 'base64')
  const publicKey = Buffer.from(pub(k.ed25519).split(' ')[1], 'base64').subarray(-32)
  const seed = data.subarray(data.lastIndexOf(publicKey) - 32, data.lastIndexOf(publicKey))
  assert.is(seed.length, 32)
  for (const form of ['hex', 'base64'] as const) assert.not.ok(shown.includes(seed.toString(form).slice(0, 16)), form)
  assert.not.ok(shown.includes('-----BEGIN'))
})

test.run()
