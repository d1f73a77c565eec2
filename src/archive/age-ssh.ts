/**
 * age's ssh recipient types, as the age CLI (`agessh`) defines them, so a
 * snapshot can be encrypted to `~/.ssh/id_ed25519.pub` and opened with
 * `age -d -i ~/.ssh/id_ed25519`:
 *
 * - `ssh-ed25519`: X25519 with the Ed25519 key mapped to Curve25519, the shared
 *   secret tweaked by a scalar derived from the ssh public key, HKDF label
 *   `age-encryption.org/v1/ssh-ed25519`. Stanza: `ssh-ed25519 TAG SHARE`.
 * - `ssh-rsa`: RSA-OAEP with SHA-256 and label `age-encryption.org/v1/ssh-rsa`.
 *   Stanza: `ssh-rsa TAG`.
 *
 * TAG is the first 4 bytes of the sha256 of the ssh wire-format public key.
 * Identities come from unencrypted OpenSSH private key files (openssh-key-v1,
 * parsed here) or PEM PKCS#1 RSA keys. Error messages name files and key
 * types, never key material. The same parsers read ssh-ed25519 keys for
 * manifest signatures (sign.ts).
 */
import {Stanza, type Identity, type Recipient} from 'age-encryption'
import {constants, createHash, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, type KeyObject} from 'node:crypto'
import {base64NoPad, decodeBase64NoPad, FILE_KEY_SIZE, hkdf, unwrapX25519, wrapX25519, x25519PrivateKey, x25519PublicKey, x25519Raw} from './age-x25519.js'

const ED25519_LABEL = 'age-encryption.org/v1/ssh-ed25519'
const RSA_LABEL = 'age-encryption.org/v1/ssh-rsa'
/** age refuses smaller RSA keys. */
const MIN_RSA_BITS = 2048
/** The field prime of Curve25519, 2^255 - 19. */
const P = (1n << 255n) - 19n

/** Key types age can encrypt to; any other ssh key type gets an error naming it. */
type SshKeyType = 'ssh-ed25519' | 'ssh-rsa'

/** A key problem in words fit for `<where>: <message>`; never holds key material. */
export class SshKeyError extends Error {
  override readonly name = 'SshKeyError'
  constructor(
    message: string,
    readonly reason: 'malformed' | 'unsupported' | 'passphrase',
  ) {
    super(message)
  }
}

/** The 4-byte key hint of ssh stanzas: sha256 of the wire-format public key, unpadded base64. */
export function sshTag(wireKey: Uint8Array): string {
  return base64NoPad(createHash('sha256').update(wireKey).digest().subarray(0, 4))
}

/**
 * Parses an authorized_keys-style public key, `TYPE BASE64 [comment]`, into a
 * recipient. Throws SshKeyError for other key types (ecdsa, sk-, dss) and
 * malformed keys.
 */
export function parseSshRecipient(line: string): SshEd25519Recipient | SshRsaRecipient {
  const [type, blob] = line.trim().split(/\s+/)
  checkKeyType(type)
  if (type === 'ssh-ed25519') {
    const {wire, point} = parseSshEd25519PublicKey(blob)
    return new SshEd25519Recipient(wire, point)
  }
  const {wire, reader} = decodeSshPublicKey(type, blob)
  const e = reader.bytes()
  const n = reader.bytes()
  reader.end()
  return new SshRsaRecipient(wire, rsaPublicKey(n, e))
}

/**
 * Decodes the base64 of an `ssh-ed25519` public key (the second field of an
 * authorized_keys line): returns the wire-format key and its 32-byte point.
 * Throws SshKeyError when it is not one.
 */
export function parseSshEd25519PublicKey(blob: string | undefined): {wire: Buffer; point: Buffer} {
  const {wire, reader} = decodeSshPublicKey('ssh-ed25519', blob)
  const point = reader.bytes()
  reader.end()
  if (point.length !== 32) throw new SshKeyError('the ssh-ed25519 public key is not 32 bytes', 'malformed')
  return {wire, point}
}

/** Decodes a public key's base64 and reads its type field; the reader is left at the key's own fields. */
function decodeSshPublicKey(type: string, blob: string | undefined): {wire: Buffer; reader: WireReader} {
  const wire = blob === undefined ? undefined : decodePadded(blob)
  if (!wire) throw new SshKeyError(`the ${type} public key is not valid base64`, 'malformed')
  const reader = new WireReader(wire, `the ${type} public key`)
  if (reader.text() !== type) throw new SshKeyError(`the ${type} public key says it is of another type`, 'malformed')
  return {wire, reader}
}

/**
 * Reads an unencrypted OpenSSH `ssh-ed25519` private key file's text: its
 * wire-format public key and 32-byte seed, for signing. Throws SshKeyError
 * ('passphrase' for a protected key, 'unsupported' for another key type).
 */
export function parseSshEd25519PrivateKey(text: string): {wire: Buffer; seed: Buffer} {
  const pem = /-----BEGIN OPENSSH PRIVATE KEY-----\r?\n([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)
  if (!pem) throw new SshKeyError('it is not an OpenSSH private key file (ssh-keygen -t ed25519 writes one)', 'malformed')
  const {type, wire, section} = readOpenSshKey(Buffer.from(pem[1].replace(/\s+/g, ''), 'base64'), (t) => {
    if (t !== 'ssh-ed25519') throw new SshKeyError(`it is an ${t} key; kubesnap signs with ssh-ed25519 keys only (ssh-keygen -t ed25519)`, 'unsupported')
  })
  if (type !== 'ssh-ed25519') throw new SshKeyError('the OpenSSH private key is malformed', 'malformed')
  return {wire, seed: readEd25519Seed(section)}
}

/**
 * Parses a private key file's text into an identity: `-----BEGIN OPENSSH
 * PRIVATE KEY-----` (ed25519 or rsa) or `-----BEGIN RSA PRIVATE KEY-----`.
 * Throws SshKeyError with reason 'passphrase' for a protected key,
 * 'unsupported' for another key type.
 */
export function parseSshIdentity(text: string): SshEd25519Identity | SshRsaIdentity {
  const pem = /-----BEGIN ([A-Z ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text)
  if (!pem) throw new SshKeyError('it is not a PEM private key file', 'malformed')
  const [, label, body] = pem
  if (label === 'OPENSSH PRIVATE KEY') return parseOpenSshKey(Buffer.from(body.replace(/\s+/g, ''), 'base64'))
  if (label === 'RSA PRIVATE KEY') {
    if (/^Proc-Type:.*ENCRYPTED/m.test(body)) throw new SshKeyError('the key is protected by a passphrase', 'passphrase')
    let key: KeyObject
    try {
      key = createPrivateKey({key: pem[0], format: 'pem'})
    } catch {
      throw new SshKeyError('the RSA private key is malformed', 'malformed')
    }
    return new SshRsaIdentity(key)
  }
  if (label === 'ENCRYPTED PRIVATE KEY') throw new SshKeyError('the key is protected by a passphrase', 'passphrase')
  const kind = /^(EC|DSA)\b/.exec(label)
  if (kind) throw new SshKeyError(`${kind[1] === 'EC' ? 'ECDSA' : 'DSA'} keys cannot be age identities; use an ssh-ed25519 or ssh-rsa key, or an age identity`, 'unsupported')
  throw new SshKeyError(`a "${label}" PEM block is not an ssh private key kubesnap can read (it reads OPENSSH and RSA private keys)`, 'unsupported')
}

/** An `ssh-ed25519` recipient. */
export class SshEd25519Recipient implements Recipient {
  readonly type = 'ssh-ed25519'
  readonly #tag: string
  /** The Ed25519 key as a Curve25519 point. */
  readonly #point: Buffer
  readonly #key: KeyObject
  readonly #tweak: KeyObject

  /** `wire` is the ssh wire-format public key, `ed25519` its 32 key bytes. */
  constructor(
    readonly wire: Buffer,
    ed25519: Uint8Array,
  ) {
    this.#tag = sshTag(wire)
    this.#point = ed25519ToX25519(ed25519)
    this.#key = x25519PublicKey(this.#point)
    this.#tweak = ed25519Tweak(wire)
  }

  /** The public key as authorized_keys writes it, without a comment. */
  toString(): string {
    return `ssh-ed25519 ${this.wire.toString('base64')}`
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const {share, body} = wrapX25519(fileKey, this.#key, this.#point, ED25519_LABEL, this.#tweak)
    return [new Stanza(['ssh-ed25519', this.#tag, base64NoPad(share)], body)]
  }
}

/** An `ssh-rsa` recipient. */
export class SshRsaRecipient implements Recipient {
  readonly type = 'ssh-rsa'
  readonly #tag: string

  constructor(
    readonly wire: Buffer,
    readonly key: KeyObject,
  ) {
    this.#tag = sshTag(wire)
  }

  toString(): string {
    return `ssh-rsa ${this.wire.toString('base64')}`
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const body = publicEncrypt({key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(RSA_LABEL)}, fileKey)
    return [new Stanza(['ssh-rsa', this.#tag], body)]
  }
}

/** An `ssh-ed25519` identity. Holds KeyObjects only. */
export class SshEd25519Identity implements Identity {
  readonly type = 'ssh-ed25519'
  readonly #tag: string
  readonly #key: KeyObject
  readonly #point: Buffer
  readonly #tweak: KeyObject

  /** `seed` is the 32-byte Ed25519 private seed. */
  constructor(
    readonly wire: Buffer,
    seed: Uint8Array,
  ) {
    this.#tag = sshTag(wire)
    // The Curve25519 scalar of an Ed25519 key: the first half of sha512(seed), as Ed25519 itself derives it.
    this.#key = x25519PrivateKey(createHash('sha512').update(seed).digest().subarray(0, 32))
    this.#point = x25519Raw(this.#key)
    this.#tweak = ed25519Tweak(wire)
  }

  /** The matching recipient, as authorized_keys writes it. */
  get recipient(): string {
    return `ssh-ed25519 ${this.wire.toString('base64')}`
  }

  /** Returns null for stanzas of other keys; throws when a stanza names this key but does not open. */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const stanza of stanzas) {
      if (stanza.args[0] !== 'ssh-ed25519') continue
      const share = stanza.args.length === 3 ? decodeBase64NoPad(stanza.args[2]) : undefined
      if (!share || share.length !== 32) throw new Error('invalid ssh-ed25519 stanza')
      if (stanza.args[1] !== this.#tag) continue
      const fileKey = unwrapX25519(this.#key, this.#point, share, stanza.body, ED25519_LABEL, 'ssh-ed25519', this.#tweak)
      if (!fileKey) throw new Error('the ssh-ed25519 stanza for this key does not open: the header is damaged')
      return fileKey
    }
    return null
  }
}

/** An `ssh-rsa` identity. */
export class SshRsaIdentity implements Identity {
  readonly type = 'ssh-rsa'
  readonly wire: Buffer
  readonly #tag: string
  readonly #key: KeyObject

  constructor(key: KeyObject) {
    const jwk = key.export({format: 'jwk'})
    const n = Buffer.from(jwk.n!, 'base64url')
    checkRsaSize(n)
    this.wire = Buffer.concat([wireString(Buffer.from('ssh-rsa')), wireMpint(Buffer.from(jwk.e!, 'base64url')), wireMpint(n)])
    this.#tag = sshTag(this.wire)
    this.#key = key
  }

  get recipient(): string {
    return `ssh-rsa ${this.wire.toString('base64')}`
  }

  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const stanza of stanzas) {
      if (stanza.args[0] !== 'ssh-rsa') continue
      if (stanza.args.length !== 2) throw new Error('invalid ssh-rsa stanza')
      if (stanza.args[1] !== this.#tag) continue
      let fileKey: Buffer
      try {
        fileKey = privateDecrypt({key: this.#key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(RSA_LABEL)}, stanza.body)
      } catch {
        throw new Error('the ssh-rsa stanza for this key does not open: the header is damaged')
      }
      if (fileKey.length !== FILE_KEY_SIZE) throw new Error('invalid ssh-rsa stanza')
      return fileKey
    }
    return null
  }
}

/**
 * openssh-key-v1 (PROTOCOL.key in OpenSSH): magic, cipher, kdf, kdf options,
 * the public keys, then the private section, encrypted unless the cipher is
 * "none". ssh-keygen writes one key per file. Returns the key's type, its
 * wire-format public key and a reader at the private section's key fields;
 * `checkType` refuses types the caller cannot use before the passphrase check.
 */
function readOpenSshKey(data: Buffer, checkType: (type: string) => void): {type: string; wire: Buffer; section: WireReader} {
  const magic = Buffer.from('openssh-key-v1\0')
  if (!data.subarray(0, magic.length).equals(magic)) throw new SshKeyError('the OpenSSH private key is malformed', 'malformed')
  const file = new WireReader(data.subarray(magic.length), 'the OpenSSH private key')
  const cipher = file.text()
  file.bytes() // kdf name
  file.bytes() // kdf options
  if (file.u32() !== 1) throw new SshKeyError('the OpenSSH private key file holds several keys; kubesnap reads files with one', 'unsupported')
  const wire = file.bytes()
  // The type is readable even when the key is encrypted: say the decisive thing first.
  const type = new WireReader(wire, 'the OpenSSH public key').text()
  checkType(type)
  if (cipher !== 'none') throw new SshKeyError('the key is protected by a passphrase', 'passphrase')
  const section = new WireReader(file.bytes(), 'the OpenSSH private key')
  // Two equal random check numbers: a wrong passphrase (or damage) shows as a mismatch.
  if (section.u32() !== section.u32()) throw new SshKeyError('the OpenSSH private key is damaged (check numbers differ)', 'malformed')
  if (section.text() !== type) throw new SshKeyError('the OpenSSH private key is damaged (its two halves differ in type)', 'malformed')
  return {type, wire, section}
}

/** Reads an ssh-ed25519 private section's key fields: the public key, then seed ‖ public key. */
function readEd25519Seed(section: WireReader): Buffer {
  const publicKey = section.bytes()
  const secret = section.bytes()
  if (publicKey.length !== 32 || secret.length !== 64 || !secret.subarray(32).equals(publicKey)) {
    throw new SshKeyError('the ssh-ed25519 private key is malformed', 'malformed')
  }
  return secret.subarray(0, 32)
}

/** An openssh-key-v1 key as an age identity. */
function parseOpenSshKey(data: Buffer): SshEd25519Identity | SshRsaIdentity {
  const {type, wire, section} = readOpenSshKey(data, checkKeyType)
  if (type === 'ssh-ed25519') return new SshEd25519Identity(wire, readEd25519Seed(section))
  const [n, e, d, iqmp, p, q] = [section.bytes(), section.bytes(), section.bytes(), section.bytes(), section.bytes(), section.bytes()]
  const big = (b: Buffer) => BigInt('0x' + (b.toString('hex') || '0'))
  const [dn, pn, qn] = [big(d), big(p), big(q)]
  let key: KeyObject
  try {
    key = createPrivateKey({
      key: {kty: 'RSA', n: b64url(n), e: b64url(e), d: b64url(d), p: b64url(p), q: b64url(q), dp: b64urlOf(dn % (pn - 1n)), dq: b64urlOf(dn % (qn - 1n)), qi: b64url(iqmp)},
      format: 'jwk',
    })
  } catch {
    throw new SshKeyError('the ssh-rsa private key is malformed', 'malformed')
  }
  const identity = new SshRsaIdentity(key)
  if (!identity.wire.equals(wire)) throw new SshKeyError('the ssh-rsa private key is damaged (it does not match its public half)', 'malformed')
  return identity
}

function checkKeyType(type: string | undefined): asserts type is SshKeyType {
  if (type === 'ssh-ed25519' || type === 'ssh-rsa') return
  throw new SshKeyError(`ssh key type ${type ?? '(none)'} cannot be an age recipient or identity; use an ssh-ed25519 or ssh-rsa key, or an age key`, 'unsupported')
}

function rsaPublicKey(n: Buffer, e: Buffer): KeyObject {
  checkRsaSize(stripZeros(n))
  try {
    return createPublicKey({key: {kty: 'RSA', n: b64url(n), e: b64url(e)}, format: 'jwk'})
  } catch {
    throw new SshKeyError('the ssh-rsa public key is malformed', 'malformed')
  }
}

function checkRsaSize(n: Buffer): void {
  const bits = stripZeros(n).length * 8
  if (bits < MIN_RSA_BITS) throw new SshKeyError(`the ssh-rsa key has ${bits} bits; age needs at least ${MIN_RSA_BITS}`, 'unsupported')
}

/**
 * Maps an Ed25519 public key (y, with x's sign in the top bit) to the
 * Curve25519 u-coordinate: u = (1 + y) / (1 - y) mod p.
 */
function ed25519ToX25519(ed25519: Uint8Array): Buffer {
  const le = Buffer.from(ed25519)
  le[31] &= 0x7f
  const y = BigInt('0x' + Buffer.from(le).reverse().toString('hex'))
  const u = (((1n + y) % P) * modPow((P + 1n - y) % P, P - 2n)) % P
  return Buffer.from(u.toString(16).padStart(64, '0'), 'hex').reverse()
}

/** The tweak scalar: HKDF-SHA-256 of nothing, salted with the ssh public key. */
function ed25519Tweak(wire: Uint8Array): KeyObject {
  return x25519PrivateKey(hkdf(new Uint8Array(0), wire, ED25519_LABEL))
}

function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n
  for (let b = base % P, e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P
  return result
}

/** Reads the ssh wire format (RFC 4251 §5): uint32 and length-prefixed strings. */
export class WireReader {
  #at = 0

  constructor(
    readonly data: Buffer,
    readonly what: string,
  ) {}

  u32(): number {
    if (this.#at + 4 > this.data.length) throw this.#short()
    const value = this.data.readUInt32BE(this.#at)
    this.#at += 4
    return value
  }

  bytes(): Buffer {
    const length = this.u32()
    if (this.#at + length > this.data.length) throw this.#short()
    const value = this.data.subarray(this.#at, this.#at + length)
    this.#at += length
    return value
  }

  text(): string {
    return this.bytes().toString('latin1')
  }

  end(): void {
    if (this.#at !== this.data.length) throw new SshKeyError(`${this.what} is malformed (trailing bytes)`, 'malformed')
  }

  #short(): SshKeyError {
    return new SshKeyError(`${this.what} is malformed (cut short)`, 'malformed')
  }
}

export function wireString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** An mpint: big-endian, minimal, with a zero byte in front when the top bit is set. */
function wireMpint(unsigned: Buffer): Buffer {
  const bytes = stripZeros(unsigned)
  return wireString(bytes.length > 0 && bytes[0] & 0x80 ? Buffer.concat([Buffer.alloc(1), bytes]) : bytes)
}

function stripZeros(bytes: Buffer): Buffer {
  let at = 0
  while (at < bytes.length && bytes[at] === 0) at++
  return bytes.subarray(at)
}

function b64url(unsigned: Buffer): string {
  return stripZeros(unsigned).toString('base64url')
}

function b64urlOf(value: bigint): string {
  const hex = value.toString(16)
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex').toString('base64url')
}

/** Decodes the padded base64 of an authorized_keys line; undefined when it is not canonical base64. */
function decodePadded(text: string): Buffer | undefined {
  const unpadded = text.replace(/=+$/, '')
  const bytes = decodeBase64NoPad(unpadded)
  return bytes && bytes.toString('base64') === text ? bytes : undefined
}
