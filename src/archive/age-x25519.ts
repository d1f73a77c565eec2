/**
 * age's native X25519 recipient type (`age1…` / `AGE-SECRET-KEY-1…`) on
 * Node's crypto, and the primitives the ssh types in age-ssh.ts share with it.
 *
 * age-encryption has X25519 too, but on Node it spends ~1.3 ms per wrapped
 * file key (WebCrypto key imports, pure-JS HKDF); here it is ~0.1 ms, which is
 * what 10,000 objects, each its own age file, need. They implement the
 * library's Recipient/Identity and use its Stanza, so its Decrypter can use
 * them when it parses and checks a header.
 */
import {bech32} from '@scure/base'
import {Stanza, type Identity, type Recipient} from 'age-encryption'
import {createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject} from 'node:crypto'

const X25519_LABEL = 'age-encryption.org/v1/X25519'
/** PKCS#8 DER of an X25519 private key, up to the 32 raw bytes: Node imports raw private keys no other way. */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
/** File keys are 16 bytes; a wrapped one carries a 16-byte Poly1305 tag. */
export const FILE_KEY_SIZE = 16
const WRAPPED_FILE_KEY_SIZE = FILE_KEY_SIZE + 16

/** An X25519 private key object from a 32-byte scalar (clamped by X25519 itself). */
export function x25519PrivateKey(scalar: Uint8Array): KeyObject {
  if (scalar.length !== 32) throw new Error('an X25519 private key is 32 bytes')
  return createPrivateKey({key: Buffer.concat([PKCS8_X25519_PREFIX, scalar]), format: 'der', type: 'pkcs8'})
}

/** An X25519 public key object from a 32-byte point. */
export function x25519PublicKey(point: Uint8Array): KeyObject {
  if (point.length !== 32) throw new Error('an X25519 public key is 32 bytes')
  return createPublicKey({key: {kty: 'OKP', crv: 'X25519', x: Buffer.from(point).toString('base64url')}, format: 'jwk'})
}

/** The 32 raw bytes of an X25519 public key, or of the public half of a private one. */
export function x25519Raw(key: KeyObject): Buffer {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({format: 'jwk'})
  return Buffer.from(jwk.x!, 'base64url')
}

/**
 * X25519(scalar, point). Throws when the result is all zeros (a low-order
 * point), which age treats as an invalid stanza: OpenSSL refuses to derive it.
 */
function x25519(privateKey: KeyObject, point: Uint8Array | KeyObject): Buffer {
  const publicKey = point instanceof Uint8Array ? x25519PublicKey(point) : point
  return diffieHellman({privateKey, publicKey})
}

/** A fresh ephemeral key pair, its public share as raw bytes. */
function ephemeralX25519(): {privateKey: KeyObject; share: Buffer} {
  const {privateKey, publicKey} = generateKeyPairSync('x25519')
  return {privateKey, share: x25519Raw(publicKey)}
}

/** HKDF-SHA-256 as age uses it. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length))
}

/** Wraps a file key with ChaCha20-Poly1305 under a one-time key and the zero nonce (age's stanza body). */
function sealFileKey(wrappingKey: Uint8Array, fileKey: Uint8Array): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', wrappingKey, Buffer.alloc(12), {authTagLength: 16})
  return Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()])
}

/** Unwraps a stanza body; null when it does not authenticate under this key. */
function openFileKey(wrappingKey: Uint8Array, body: Uint8Array): Buffer | null {
  if (body.length !== WRAPPED_FILE_KEY_SIZE) return null
  const decipher = createDecipheriv('chacha20-poly1305', wrappingKey, Buffer.alloc(12), {authTagLength: 16})
  decipher.setAuthTag(body.subarray(FILE_KEY_SIZE))
  const fileKey = decipher.update(body.subarray(0, FILE_KEY_SIZE))
  try {
    decipher.final()
  } catch {
    return null
  }
  return fileKey
}

/** Standard base64 without padding, as age writes stanza arguments. */
export function base64NoPad(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '')
}

/** Decodes canonical unpadded base64 (what age requires); undefined for anything else. */
export function decodeBase64NoPad(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*$/.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  return base64NoPad(bytes) === text ? bytes : undefined
}

/**
 * Decodes a Bech32 key of the given prefix (`age`, `age-secret-key-`) to its
 * 32 bytes; undefined when it is not one. Never lets the decoder's message out:
 * @scure/base quotes the whole input, which may be a secret key.
 */
function decodeBech32Key(text: string, prefix: string): Buffer | undefined {
  // Bech32 is all lower or all upper case; age writes recipients lower and identities upper.
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return undefined
  try {
    const decoded = bech32.decodeToBytes(text.toLowerCase(), 256)
    if (decoded.prefix !== prefix || decoded.bytes.length !== 32) return undefined
    return Buffer.from(decoded.bytes)
  } catch {
    return undefined
  }
}

/**
 * The X25519 wrap of age's `X25519` and `ssh-ed25519` stanzas: a fresh
 * ephemeral share, the shared secret (ssh-ed25519 multiplies it by its
 * tweak), and the file key sealed with HKDF(secret, share ‖ point, label).
 */
export function wrapX25519(fileKey: Uint8Array, key: KeyObject, point: Buffer, label: string, tweak?: KeyObject): {share: Buffer; body: Buffer} {
  const {privateKey, share} = ephemeralX25519()
  const shared = x25519(privateKey, key)
  const secret = tweak ? x25519(tweak, shared) : shared
  return {share, body: sealFileKey(hkdf(secret, Buffer.concat([share, point]), label), fileKey)}
}

/** The unwrap matching wrapX25519, with our private key and point; null when the body does not open. Throws on a low-order share. */
export function unwrapX25519(key: KeyObject, point: Buffer, share: Buffer, body: Uint8Array, label: string, stanza: string, tweak?: KeyObject): Uint8Array | null {
  let secret: Buffer
  try {
    const shared = x25519(key, share)
    secret = tweak ? x25519(tweak, shared) : shared
  } catch {
    throw new Error(`invalid ${stanza} stanza (low-order share)`)
  }
  return openFileKey(hkdf(secret, Buffer.concat([share, point]), label), body)
}

/** An `age1…` recipient: encrypts file keys to an X25519 public key. */
export class X25519Recipient implements Recipient {
  readonly #point: Buffer
  readonly #key: KeyObject

  constructor(point: Uint8Array) {
    this.#point = Buffer.from(point)
    this.#key = x25519PublicKey(point)
  }

  /** Parses `age1…`; undefined when the text is not a valid X25519 recipient. */
  static parse(text: string): X25519Recipient | undefined {
    const point = decodeBech32Key(text, 'age')
    return point && new X25519Recipient(point)
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const {share, body} = wrapX25519(fileKey, this.#key, this.#point, X25519_LABEL)
    return [new Stanza(['X25519', base64NoPad(share)], body)]
  }
}

/** An `AGE-SECRET-KEY-1…` identity. Keeps only a KeyObject, so the key never shows in a log or an inspect. */
export class X25519Identity implements Identity {
  readonly #key: KeyObject
  readonly #point: Buffer

  constructor(scalar: Uint8Array) {
    this.#key = x25519PrivateKey(scalar)
    this.#point = x25519Raw(this.#key)
  }

  /** Parses `AGE-SECRET-KEY-1…`; undefined when the text is not a valid X25519 identity. */
  static parse(text: string): X25519Identity | undefined {
    const scalar = decodeBech32Key(text, 'age-secret-key-')
    return scalar && new X25519Identity(scalar)
  }

  /**
   * Tries every X25519 stanza: they carry no key hint, so the one that
   * authenticates is ours. A malformed X25519 stanza is an error, as in age.
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const stanza of stanzas) {
      if (stanza.args[0] !== 'X25519') continue
      const share = stanza.args.length === 2 ? decodeBase64NoPad(stanza.args[1]) : undefined
      if (!share || share.length !== 32 || stanza.body.length !== WRAPPED_FILE_KEY_SIZE) throw new Error('invalid X25519 stanza')
      const fileKey = unwrapX25519(this.#key, this.#point, share, stanza.body, X25519_LABEL, 'X25519')
      if (fileKey) return fileKey
    }
    return null
  }
}
