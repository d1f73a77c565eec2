/**
 * Manifest signatures in OpenSSH's SSHSIG format (PROTOCOL.sshsig), so that
 * `ssh-keygen -Y verify -n kubesnap` checks what kubesnap signed, and kubesnap
 * checks what ssh-keygen signs.
 *
 * What is signed: the manifest's bytes exactly as stored in the archive. The
 * manifest holds the sha256 of every stored member, so a valid signature
 * vouches for every byte of the archive that verify checks against it. In an
 * encrypted archive these are the encrypted bytes (and each stream's rawSha256
 * of its plaintext): the signature is checked without any decryption key, and
 * a recipient who could write new ciphertext cannot make it pass.
 *
 * Where it is stored: base64 in the trailer's `signature` field (an SSHSIG blob
 * of an ssh-ed25519 key is 178 bytes; the trailer's 512 bytes hold it). Readers
 * that predate signing ignore the field, so they still list, inspect, verify
 * and restore signed archives. Only ssh-ed25519 keys sign (an RSA signature
 * would not fit the trailer); no npm library writes SSHSIG, so its small
 * encoder is here, on Node's Ed25519 and the project's ssh key parser.
 */
import {basename} from 'node:path'
import {createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject} from 'node:crypto'
import {EXIT, KubesnapError} from '../errors.js'
import {parseSshEd25519PrivateKey, parseSshEd25519PublicKey, SshKeyError, WireReader, wireString} from './age-ssh.js'
import {base64NoPad} from './age-x25519.js'
import {keyLines, readKeyFile} from './crypto.js'
import type {ArchiveProblem} from './errors.js'
import type {ArchiveReader} from './reader.js'

/** The SSHSIG namespace of kubesnap's signatures: `ssh-keygen -Y verify -n kubesnap`. */
export const SIGNATURE_NAMESPACE = 'kubesnap'
const MAGIC = Buffer.from('SSHSIG')
const SIG_VERSION = 1
/** The hash ssh-keygen uses by default; sha256 is accepted on reading too. */
const HASH = 'sha512'
const ED25519 = 'ssh-ed25519'
const BEGIN = '-----BEGIN SSH SIGNATURE-----'
const END = '-----END SSH SIGNATURE-----'

/** The fields of an SSHSIG signature blob. */
export interface SshSignature {
  /** The signer's public key, ssh wire format. */
  publicKey: Buffer
  namespace: string
  hashAlgorithm: 'sha256' | 'sha512'
  /** The raw signature (64 bytes for Ed25519). */
  signature: Buffer
}

/** The bytes an SSHSIG signature signs: the preamble, namespace, hash algorithm and the message's hash. */
export function signedData(namespace: string, hashAlgorithm: 'sha256' | 'sha512', message: Buffer): Buffer {
  const hash = createHash(hashAlgorithm).update(message).digest()
  return Buffer.concat([MAGIC, str(namespace), str(''), str(hashAlgorithm), wireString(hash)])
}

/** Encodes an SSHSIG blob (the bytes between the armor lines, base64-decoded). */
export function encodeSshSignature(s: SshSignature): Buffer {
  const version = Buffer.alloc(4)
  version.writeUInt32BE(SIG_VERSION)
  const signature = Buffer.concat([str(ED25519), wireString(s.signature)])
  return Buffer.concat([MAGIC, version, wireString(s.publicKey), str(s.namespace), str(''), str(s.hashAlgorithm), wireString(signature)])
}

/** Decodes an SSHSIG blob; throws SshKeyError ('malformed' or 'unsupported') when it is not an ssh-ed25519 one. */
export function decodeSshSignature(blob: Buffer): SshSignature {
  if (!blob.subarray(0, MAGIC.length).equals(MAGIC)) throw new SshKeyError('the signature is not an SSHSIG signature', 'malformed')
  const r = new WireReader(blob.subarray(MAGIC.length), 'the signature')
  if (r.u32() !== SIG_VERSION) throw new SshKeyError('the signature has an unknown SSHSIG version', 'unsupported')
  const publicKey = r.bytes()
  const namespace = r.text()
  r.bytes() // reserved
  const hashAlgorithm = r.text()
  const inner = new WireReader(r.bytes(), 'the signature')
  r.end()
  const type = inner.text()
  const signature = inner.bytes()
  inner.end()
  if (hashAlgorithm !== 'sha256' && hashAlgorithm !== 'sha512') throw new SshKeyError(`the signature uses hash ${hashAlgorithm}, not sha256 or sha512`, 'unsupported')
  if (type !== ED25519) throw new SshKeyError(`the signature is of type ${type}; kubesnap checks ssh-ed25519 signatures only`, 'unsupported')
  if (signature.length !== 64) throw new SshKeyError('the ssh-ed25519 signature is not 64 bytes', 'malformed')
  return {publicKey, namespace, hashAlgorithm, signature}
}

/** Armors an SSHSIG blob as `ssh-keygen -Y sign` writes it (base64 lines of 70 characters). */
export function armorSshSignature(blob: Buffer): string {
  const lines = blob.toString('base64').match(/.{1,70}/g) ?? []
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`
}

/** Returns the SSHSIG blob inside armored text, or undefined when the text is not an armored signature. */
export function dearmorSshSignature(text: string): Buffer | undefined {
  const m = new RegExp(`${BEGIN}\\r?\\n([A-Za-z0-9+/=\\s]*?)\\r?\\n${END}`).exec(text)
  return m ? Buffer.from(m[1].replace(/\s+/g, ''), 'base64') : undefined
}

/** The key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64 of sha256 of the wire key. */
export function fingerprint(wire: Buffer): string {
  return `SHA256:${base64NoPad(createHash('sha256').update(wire).digest())}`
}

/** Signs manifests with one ssh-ed25519 private key. Opaque: the key lives in a private field. */
export class ManifestSigner {
  /** The public key as a .pub file has it, without comment: `ssh-ed25519 AAAA…`. */
  readonly publicKey: string
  readonly fingerprint: string
  readonly #wire: Buffer
  readonly #key: KeyObject

  constructor(wire: Buffer, seed: Buffer) {
    const {point} = parseSshEd25519PublicKey(wire.toString('base64'))
    this.#wire = wire
    this.#key = createPrivateKey({key: {kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: point.toString('base64url')}, format: 'jwk'})
    this.publicKey = `${ED25519} ${wire.toString('base64')}`
    this.fingerprint = fingerprint(wire)
  }

  /** Signs `message` in namespace kubesnap; returns the SSHSIG blob. */
  sign(message: Buffer): Buffer {
    const signature = sign(null, signedData(SIGNATURE_NAMESPACE, HASH, message), this.#key)
    return encodeSshSignature({publicKey: this.#wire, namespace: SIGNATURE_NAMESPACE, hashAlgorithm: HASH, signature})
  }
}

/**
 * Loads `--sign-with FILE`: an unencrypted OpenSSH ssh-ed25519 private key.
 * Throws a KubesnapError (exit 2) naming the file, never quoting key material.
 */
export async function loadSigningKey(file: string): Promise<ManifestSigner> {
  const text = await readKeyFile(file, 'signing key')
  if (/^\s*ssh-\S+\s+AAAA/.test(text)) {
    throw new KubesnapError(`${file} is a public key; --sign-with needs the private key file (without .pub).`, {exit: EXIT.usage})
  }
  try {
    const {wire, seed} = parseSshEd25519PrivateKey(text)
    return new ManifestSigner(wire, seed)
  } catch (err) {
    if (!(err instanceof SshKeyError)) throw err
    if (err.reason === 'passphrase') {
      throw new KubesnapError(`${file} is protected by a passphrase; kubesnap signs only with unencrypted keys: make a signing key with ssh-keygen -t ed25519 -N '' -f FILE.`, {exit: EXIT.usage})
    }
    throw new KubesnapError(`${file}: ${err.message}; give an OpenSSH ssh-ed25519 private key (ssh-keygen -t ed25519).`, {exit: EXIT.usage})
  }
}

/** One key a restore or verify trusts: from a .pub, authorized_keys or allowed_signers line. */
export interface TrustedKey {
  wire: Buffer
  fingerprint: string
  /** FILE:LINE, or the plan's place, for messages. */
  where: string
}

/**
 * Reads one line of a public key, authorized_keys or allowed_signers file
 * (`[principals] [options] ssh-ed25519 BASE64 [comment]`). Returns the key
 * when it is ssh-ed25519, undefined for other key types and for
 * allowed_signers lines that ssh-keygen would not use for kubesnap
 * (`cert-authority`, or `namespaces=` without kubesnap). Throws SshKeyError
 * when an ssh-ed25519 key is malformed or the line has no key at all.
 */
export function parseTrustLine(line: string): Buffer | undefined {
  const fields = splitOptions(line.trim())
  const at = fields.findIndex((f) => /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+)$/.test(f))
  if (at < 0) throw new SshKeyError('there is no ssh public key on this line (ssh-ed25519 AAAA…)', 'malformed')
  if (fields[at] !== ED25519) return undefined
  const options = fields.slice(0, at).join(' ')
  if (/(^|[\s,])cert-authority([\s,]|$)/.test(options)) return undefined
  const namespaces = /(?:^|[\s,])namespaces="([^"]*)"/.exec(options)
  if (namespaces && !namespaces[1].split(',').some((pattern) => globMatch(pattern.trim(), SIGNATURE_NAMESPACE))) return undefined
  return parseSshEd25519PublicKey(fields[at + 1]).wire
}

/**
 * Loads the keys of `--trust FILE` files (and of plan lines): every
 * ssh-ed25519 key in them. Throws a KubesnapError (exit 2) for a file that
 * cannot be read, is a private key, holds a malformed line, or has no
 * ssh-ed25519 key kubesnap could use.
 */
export async function loadTrustedKeys(files: readonly string[], lines: ReadonlyArray<{value: string; at: string}> = []): Promise<TrustedKey[]> {
  const keys = new Map<string, TrustedKey>()
  const add = (value: string, at: string): boolean => {
    let wire: Buffer | undefined
    try {
      wire = parseTrustLine(value)
    } catch (err) {
      throw new KubesnapError(`${at}: ${(err as Error).message}; give ssh-ed25519 public keys as .pub, authorized_keys or allowed_signers files hold them.`, {exit: EXIT.usage, cause: err})
    }
    if (!wire) return false
    const print = fingerprint(wire)
    if (!keys.has(print)) keys.set(print, {wire, fingerprint: print, where: at})
    return true
  }
  for (const {value, at} of lines) {
    if (!add(value, at)) throw new KubesnapError(`${at}: kubesnap signs with ssh-ed25519 keys only; give an ssh-ed25519 public key.`, {exit: EXIT.usage})
  }
  for (const file of files) {
    const text = await readKeyFile(file, 'trusted keys file')
    if (/^\s*-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new KubesnapError(`${file} is a private key; --trust needs the public key (the .pub file) or a list of public keys.`, {exit: EXIT.usage})
    }
    let found = 0
    for (const {value, at} of keyLines(file, text)) if (add(value, at)) found++
    if (found === 0) throw new KubesnapError(`${file} has no ssh-ed25519 public key kubesnap can use; give the .pub of the key snapshots are signed with.`, {exit: EXIT.usage})
  }
  return [...keys.values()]
}

/** What a signature check found. */
export type SignatureCheck =
  | {status: 'unsigned'}
  | {status: 'invalid'; reason: string}
  /** Valid, made by `fingerprint`; `trusted` is the matching trusted key, when one was given and matched. */
  | {status: 'valid'; fingerprint: string; publicKey: string; trusted?: TrustedKey}

/**
 * Checks an SSHSIG blob over `message`: its format, its namespace (kubesnap)
 * and the Ed25519 signature by the key it names; then whether that key is one
 * of `trusted`. Pure; never throws.
 */
export function checkSignature(blob: Buffer | undefined, message: Buffer, trusted: readonly TrustedKey[] = []): SignatureCheck {
  if (!blob) return {status: 'unsigned'}
  let s: SshSignature
  let point: Buffer
  try {
    s = decodeSshSignature(blob)
    point = parseSshEd25519PublicKey(s.publicKey.toString('base64')).point
  } catch (err) {
    return {status: 'invalid', reason: (err as Error).message}
  }
  if (s.namespace !== SIGNATURE_NAMESPACE) return {status: 'invalid', reason: `the signature is for namespace ${JSON.stringify(s.namespace)}, not ${SIGNATURE_NAMESPACE}`}
  const key = createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url')}, format: 'jwk'})
  if (!verify(null, signedData(s.namespace, s.hashAlgorithm, message), key, s.signature)) {
    return {status: 'invalid', reason: 'the signature does not match the manifest'}
  }
  const print = fingerprint(s.publicKey)
  const match = trusted.find((t) => t.wire.equals(s.publicKey))
  return {status: 'valid', fingerprint: print, publicKey: `${ED25519} ${s.publicKey.toString('base64')}`, ...(match ? {trusted: match} : {})}
}

/** The fingerprint of a manifest's `signedBy` key line, for messages; the line itself when it does not parse. */
export function keyFingerprint(line: string): string {
  const blob = line.split(/\s+/)[1]
  return blob ? fingerprint(Buffer.from(blob, 'base64')) : line
}

/**
 * Checks the signature of an opened archive over the manifest's bytes as
 * openArchive read them (which hash to the trailer's manifestSha256, the
 * bytes the reader's manifest was parsed from).
 */
export function checkArchiveSignature(reader: ArchiveReader, trusted: readonly TrustedKey[] = []): SignatureCheck {
  const {signature} = reader.trailer
  if (signature === undefined || !reader.signedManifest) return {status: 'unsigned'}
  return checkSignature(Buffer.from(signature, 'base64'), reader.signedManifest, trusted)
}

/** A length-prefixed ssh string of text. */
function str(text: string): Buffer {
  return wireString(Buffer.from(text, 'utf8'))
}

/** Splits a key line on blanks outside double quotes (authorized_keys options may quote blanks). */
function splitOptions(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []
}

/** OpenSSH's match_pattern: `*` and `?` wildcards, `!` negation not supported (such a pattern does not match). */
function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`)
  return re.test(value)
}

/** What verify and restore report about a signature. */
export interface SignatureSummary {
  signed: boolean
  /** The signer's key fingerprint (`SHA256:…`), when signed. */
  fingerprint?: string
  /** Whether the signer is one of the trusted keys (only when --trust or a plan's trust was given). */
  trusted?: boolean
}

/**
 * Checks an opened archive's signature. A signature that does not match (or
 * a manifest naming a signer with no signature) is always refused; with
 * `trusted` keys, an unsigned archive and one signed by another key are
 * refused too. Throws a KubesnapError (exit 1, `code` the problem) in one
 * sentence; returns what was found otherwise.
 */
export async function checkTrust(reader: ArchiveReader, trusted: readonly TrustedKey[] | undefined): Promise<SignatureSummary> {
  const file = basename(reader.path)
  const refuse = (problem: ArchiveProblem, message: string) => new KubesnapError(message, {code: problem})
  const check = checkArchiveSignature(reader, trusted ?? [])
  const named = reader.manifest.signedBy
  if (check.status === 'invalid') {
    throw refuse('bad signature', `The signature of ${file} does not hold (${check.reason}): the archive was changed after it was signed; nothing was read from it: use another snapshot.`)
  }
  if (check.status === 'unsigned') {
    if (named !== undefined) {
      throw refuse('bad signature', `${file} names signer ${keyFingerprint(named)} but carries no signature: it was changed after it was signed; use another snapshot.`)
    }
    if (trusted) throw refuse('unsigned', `${file} is not signed, and a signature by a trusted key is required (--trust); use a snapshot taken with --sign-with, or leave out --trust.`)
    return {signed: false}
  }
  if (named !== undefined && named !== check.publicKey) {
    throw refuse('bad signature', `${file} names signer ${keyFingerprint(named)} but is signed by ${check.fingerprint}; use another snapshot.`)
  }
  if (trusted && !check.trusted) {
    throw refuse('untrusted signer', `${file} is signed by ${check.fingerprint}, which is not a trusted key (--trust); give --trust with that key's .pub if you trust it, or use another snapshot.`)
  }
  return {signed: true, fingerprint: check.fingerprint, ...(trusted ? {trusted: true} : {})}
}
