import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {ageKeys} from './age-keys.test.js'
import {BLOCK, encodeTrailer, parseTrailerBody} from './layout.js'
import {
  armorSshSignature,
  checkSignature,
  dearmorSshSignature,
  decodeSshSignature,
  encodeSshSignature,
  fingerprint,
  loadSigningKey,
  loadTrustedKeys,
  parseTrustLine,
  SIGNATURE_NAMESPACE,
  type TrustedKey,
} from './sign.js'

const pub = (path: string) => readFileSync(`${path}.pub`, 'utf8').trim()
const message = Buffer.from('{"format":"kubesnap-archive"}\n')

/** Runs ssh-keygen with `input` on stdin; returns its exit code and output. */
function sshKeygen(args: string[], input: Buffer = Buffer.alloc(0)): {code: number | null; out: string} {
  const r = spawnSync('ssh-keygen', args, {input})
  return {code: r.status, out: `${r.stdout}${r.stderr}`}
}

/** Writes an allowed_signers file trusting `keyPath`'s public key for principal backups. */
function allowedSigners(keyPath: string, options = ''): string {
  const file = join(ageKeys().dir, `allowed-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, `backups ${options ? `${options} ` : ''}${pub(keyPath)}\n`)
  return file
}

async function trusted(keyPath: string): Promise<TrustedKey[]> {
  return loadTrustedKeys([`${keyPath}.pub`])
}

test("kubesnap's signature is byte for byte what ssh-keygen -Y sign writes, and ssh-keygen -Y verify accepts it", async () => {
  const {ed25519, dir} = ageKeys()
  const signer = await loadSigningKey(ed25519)
  const sig = armorSshSignature(signer.sign(message))
  // Ed25519 is deterministic: the same key, namespace, hash and message give the same signature.
  const file = join(dir, 'message')
  writeFileSync(file, message)
  execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', ed25519, '-n', SIGNATURE_NAMESPACE, file], {stdio: 'ignore'})
  assert.is(sig, readFileSync(`${file}.sig`, 'utf8'))
  writeFileSync(join(dir, 'ours.sig'), sig)
  const ok = sshKeygen(['-Y', 'verify', '-f', allowedSigners(ed25519), '-I', 'backups', '-n', SIGNATURE_NAMESPACE, '-s', join(dir, 'ours.sig')], message)
  assert.is(ok.code, 0, ok.out)
  const tampered = sshKeygen(['-Y', 'verify', '-f', allowedSigners(ed25519), '-I', 'backups', '-n', SIGNATURE_NAMESPACE, '-s', join(dir, 'ours.sig')], Buffer.concat([message, Buffer.from(' ')]))
  assert.is.not(tampered.code, 0)
})

test('a signature ssh-keygen made (sha512 or sha256) checks, with its signer trusted or not', async () => {
  const {ed25519, rsa, dir} = ageKeys()
  const file = join(dir, 'message-256')
  writeFileSync(file, message)
  for (const hash of ['sha512', 'sha256']) {
    execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', ed25519, '-n', SIGNATURE_NAMESPACE, '-O', `hashalg=${hash}`, file], {stdio: 'ignore'})
    const blob = dearmorSshSignature(readFileSync(`${file}.sig`, 'utf8'))!
    assert.is(decodeSshSignature(blob).hashAlgorithm, hash)
    const check = checkSignature(blob, message, await trusted(ed25519))
    assert.is(check.status, 'valid', hash)
    assert.ok(check.status === 'valid' && check.trusted, hash)
    assert.is(check.status === 'valid' && check.fingerprint, execFileSync('ssh-keygen', ['-l', '-f', `${ed25519}.pub`]).toString().split(' ')[1])
    const untrusted = checkSignature(blob, message, [])
    assert.ok(untrusted.status === 'valid' && !untrusted.trusted)
    execFileSync('rm', ['-f', `${file}.sig`])
  }
  // An RSA signature is refused with a reason, never thrown.
  execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', rsa, '-n', SIGNATURE_NAMESPACE, file], {stdio: 'ignore'})
  const rsaCheck = checkSignature(dearmorSshSignature(readFileSync(`${file}.sig`, 'utf8')), message)
  assert.equal(rsaCheck, {status: 'invalid', reason: 'the signature is of type rsa-sha2-512; kubesnap checks ssh-ed25519 signatures only'})
})

test('checkSignature: what is refused, and why', async () => {
  const {ed25519} = ageKeys()
  const signer = await loadSigningKey(ed25519)
  const blob = signer.sign(message)
  const fields = decodeSshSignature(blob)
  const flipped = Buffer.from(fields.signature)
  flipped[10] ^= 1
  const cases: Array<[string, Buffer | undefined, Buffer, string]> = [
    ['no signature', undefined, message, 'unsigned'],
    ['another message', blob, Buffer.from('{}'), 'the signature does not match the manifest'],
    ['a flipped bit in the signature', encodeSshSignature({...fields, signature: flipped}), message, 'the signature does not match the manifest'],
    ['another namespace', encodeSshSignature({...fields, namespace: 'git'}), message, 'the signature is for namespace "git", not kubesnap'],
    ['not SSHSIG', Buffer.from('hello world'), message, 'the signature is not an SSHSIG signature'],
    ['cut short', blob.subarray(0, 100), message, 'the signature is malformed (cut short)'],
    ['trailing bytes', Buffer.concat([blob, Buffer.alloc(1)]), message, 'the signature is malformed (trailing bytes)'],
  ]
  for (const [name, sig, msg, want] of cases) {
    const check = checkSignature(sig, msg)
    assert.is(check.status === 'valid' ? 'valid' : check.status === 'unsigned' ? 'unsigned' : check.reason, want, name)
  }
  assert.is(checkSignature(blob, message).status, 'valid')
  assert.equal(decodeSshSignature(encodeSshSignature(fields)), fields)
  assert.equal(dearmorSshSignature(armorSshSignature(blob)), blob)
  assert.is(dearmorSshSignature('not armored'), undefined)
})

test('parseTrustLine reads .pub, authorized_keys and allowed_signers lines as ssh-keygen would use them', () => {
  const {ed25519, rsa} = ageKeys()
  const key = pub(ed25519)
  const wire = Buffer.from(key.split(' ')[1], 'base64')
  const cases: Array<[string, string, Buffer | undefined]> = [
    ['a .pub line', key, wire],
    ['without comment', key.split(' ').slice(0, 2).join(' '), wire],
    ['authorized_keys options', `from="10.0.0.1",no-pty ${key}`, wire],
    ['quoted blanks in options', `command="echo ssh-rsa x" ${key}`, wire],
    ['an allowed_signers line', `backups@shop ${key}`, wire],
    ['namespaces with kubesnap', `backups namespaces="git,kubesnap" ${key}`, wire],
    ['namespaces by pattern', `backups namespaces="kube*" ${key}`, wire],
    ['namespaces without kubesnap', `backups namespaces="git" ${key}`, undefined],
    ['a certificate authority', `*@example.com cert-authority ${key}`, undefined],
    ['an rsa key', pub(rsa), undefined],
  ]
  for (const [name, line, want] of cases) assert.equal(parseTrustLine(line), want, name)
  assert.throws(() => parseTrustLine('backups just words'), /no ssh public key/)
  assert.throws(() => parseTrustLine('ssh-ed25519 AAAAnotbase64!'), /not valid base64/)
})

test('loadTrustedKeys and loadSigningKey refuse what cannot be used, in one sentence, never quoting a private key', async () => {
  const k = ageKeys()
  const write = (name: string, text: string) => {
    writeFileSync(join(k.dir, name), text)
    return join(k.dir, name)
  }
  const usage = async (run: () => Promise<unknown>, message: RegExp) => {
    try {
      await run()
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.is((err as KubesnapError).exitCode, 2)
      assert.match((err as Error).message, message)
      assert.not.match((err as Error).message, /PRIVATE KEY|AAAA/)
      return
    }
    assert.unreachable(String(message))
  }
  await usage(() => loadTrustedKeys([k.ed25519]), /is a private key; --trust needs the public key/)
  await usage(() => loadTrustedKeys([`${k.rsa}.pub`]), /has no ssh-ed25519 public key/)
  await usage(() => loadTrustedKeys([write('comments', '# nothing\n\n')]), /has no ssh-ed25519 public key/)
  await usage(() => loadTrustedKeys([write('bad', `${pub(k.ed25519)}\nssh-ed25519 AAAAC3Nz\n`)]), /bad:2: the ssh-ed25519 public key is malformed \(cut short\); give ssh-ed25519 public keys as/)
  await usage(() => loadTrustedKeys([join(k.dir, 'missing.pub')]), /^The trusted keys file .*missing\.pub does not exist; check the path\.$/)
  await usage(() => loadTrustedKeys([], [{value: pub(k.rsa), at: 'plan.yaml:3:5'}]), /plan.yaml:3:5: kubesnap signs with ssh-ed25519 keys only/)
  await usage(() => loadSigningKey(`${k.ed25519}.pub`), /is a public key; --sign-with needs the private key/)
  await usage(() => loadSigningKey(k.ed25519Protected), /protected by a passphrase/)
  await usage(() => loadSigningKey(k.rsa), /it is an ssh-rsa key; kubesnap signs with ssh-ed25519 keys only/)
  await usage(() => loadSigningKey(k.ecdsa), /kubesnap signs with ssh-ed25519 keys only/)
  await usage(() => loadSigningKey(k.ageKey), /not an OpenSSH private key file/)

  // A list with several keys (and other types) yields its ssh-ed25519 keys, each once.
  const list = write('team', `# team\n${pub(k.rsa)}\nops ${pub(k.ed25519)}\n${pub(k.ed25519)}\n`)
  const keys = await loadTrustedKeys([list, `${k.ed25519}.pub`])
  assert.equal(keys.map((t) => [t.fingerprint, t.where]), [[fingerprint(Buffer.from(pub(k.ed25519).split(' ')[1], 'base64')), `${list}:3`]])
  // The signer object shows no key material when logged.
  const signer = await loadSigningKey(k.ed25519)
  assert.is(signer.publicKey, pub(k.ed25519).split(' ').slice(0, 2).join(' '))
  assert.not.match(JSON.stringify(signer), /"d"/)
})

test('a signature fits the 512-byte trailer even at the largest offsets, and parses back; a trailer signature that is not base64 is damage', async () => {
  const signature = (await loadSigningKey(ageKeys().ed25519)).sign(message).toString('base64')
  assert.is(signature.length, 240)
  const fields = {manifestOffset: Number.MAX_SAFE_INTEGER, manifestSize: 2 ** 40, manifestSha256: 'f'.repeat(64), signature}
  const body = encodeTrailer(fields, new Date(0)).subarray(BLOCK)
  assert.is(body.length, BLOCK)
  assert.equal(parseTrailerBody(body), {trailer: {format: 'kubesnap-archive', formatVersion: 1, ...fields}})
  const bad = encodeTrailer({...fields, signature: 'not base64!'}, new Date(0)).subarray(BLOCK)
  assert.equal(parseTrailerBody(bad), {reason: "the trailer's signature is not base64"})
})

test.run()
