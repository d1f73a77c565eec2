/**
 * age encryption of archive entries: recipients from `--encrypt-to` and
 * recipients files, identities from `--identity` files, and the EntryCipher
 * the writer applies to each entry and the decrypting transform the reader
 * applies. Every entry is one complete age file (a stream's parts, concatenated,
 * are one), so `age -d` opens any of them by hand.
 *
 * Who does what: age-encryption parses and checks headers on the way in
 * (Decrypter.decryptHeader: stanzas, MAC, which identity matches), and its
 * Stanza/Recipient/Identity types are the seam; the recipient types are ours
 * (age-x25519.ts, age-ssh.ts) on Node's crypto; the header on the way out is
 * encoded here (a few lines of text and an HMAC); and the payload, age's
 * STREAM of ChaCha20-Poly1305 over 64 KiB chunks, runs in Node transforms.
 * Measured on Node 20: the library's encrypt() costs ~1.7 ms per file (~0.5 ms
 * with our recipients, most of it web-stream setup) and its pure-JS payload
 * runs at ~110 MiB/s encrypting and ~45 MiB/s decrypting, below gzip -1; here
 * a small object costs 0.1–0.3 ms (by recipient type) and the payload runs at
 * 0.6–1.5 GiB/s.
 */
import {Decrypter, type Identity, type Stanza} from 'age-encryption'
import {createCipheriv, createDecipheriv, createHmac, randomBytes} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'
import {inspect} from 'node:util'
import {EXIT, KubesnapError, messageOf, readUserFile} from '../errors.js'
import {parseSshIdentity, parseSshRecipient, SshKeyError, type SshEd25519Recipient, type SshRsaRecipient} from './age-ssh.js'
import {base64NoPad, FILE_KEY_SIZE, hkdf, X25519Identity, X25519Recipient} from './age-x25519.js'
import {ArchiveError} from './errors.js'
import {AGE_SUFFIX} from './naming.js'
import type {EntryCipher} from './writer.js'

export {AGE_SUFFIX}
/** Plaintext bytes per STREAM chunk; each chunk carries a 16-byte tag. */
const CHUNK = 64 * 1024
const TAG = 16
const NONCE = 16
const INTRO = Buffer.from('age-encryption.org/v1\n')
/** A header longer than this is not one kubesnap wrote (an ssh-rsa 4096 stanza is ~750 bytes). */
const MAX_HEADER = 1024 * 1024
/** Key files larger than this are not key files (a mistyped path to an archive, say). */
const MAX_KEY_FILE = 1024 * 1024

/** One recipient: its public text (no comment) for messages, and the Recipient that wraps file keys to it. */
export interface AgeRecipient {
  readonly text: string
  readonly recipient: X25519Recipient | SshEd25519Recipient | SshRsaRecipient
}

/**
 * Parses one recipient: `age1…` (X25519), `ssh-ed25519 …` or `ssh-rsa …`.
 * Throws an Error whose message is fit for `<where>: <message>` and never
 * quotes the value.
 */
export function parseRecipient(text: string): AgeRecipient {
  const value = text.trim()
  if (/^AGE-SECRET-KEY-/i.test(value)) {
    throw new Error('this is an age secret key (AGE-SECRET-KEY-1…), not a recipient: give its public key, which age-keygen -y KEYFILE prints, and keep the secret key off command lines and out of recipients files')
  }
  if (value.startsWith('-----BEGIN')) throw new Error('this is a private key, not a recipient: give its public key (for ssh, the .pub file)')
  if (/^age1(pq|tag|tagpq)1/.test(value)) {
    throw new Error('post-quantum and tag recipients (age1pq1…, age1tag1…) are not supported yet; use an age1… X25519, ssh-ed25519 or ssh-rsa recipient')
  }
  if (value.startsWith('age1')) {
    const recipient = X25519Recipient.parse(value)
    if (recipient) return {text: value, recipient}
    // The Bech32 separator is the last "1": X25519 recipients have it right after "age", plugin recipients after "age1NAME".
    const separator = value.lastIndexOf('1')
    if (separator > 3 && /^[a-z0-9-]+$/.test(value.slice(4, separator))) {
      throw new Error(`age plugin recipients (age1${value.slice(4, separator)}1…) need age-plugin-${value.slice(4, separator)}, which kubesnap cannot run; use an age1… X25519, ssh-ed25519 or ssh-rsa recipient`)
    }
    throw new Error('not a valid age1… recipient (bad checksum or length)')
  }
  if (/^(ssh-|ecdsa-|sk-)/.test(value)) {
    try {
      const recipient = parseSshRecipient(value)
      return {text: recipient.toString(), recipient}
    } catch (err) {
      if (err instanceof SshKeyError) throw new Error(err.message)
      throw err
    }
  }
  throw new Error('not a recipient: expected age1…, ssh-ed25519 … or ssh-rsa …')
}

/**
 * Parses `--encrypt-to` values and `--recipients-file` files (age's format:
 * one recipient a line, `#` comments and blank lines ignored). Duplicates are
 * dropped. Throws a KubesnapError naming the flag value or `FILE:LINE`; only
 * values that are public keys are quoted.
 */
export async function parseRecipients(args: readonly string[], files: readonly string[]): Promise<AgeRecipient[]> {
  const recipients = new Map<string, AgeRecipient>()
  for (const arg of args) {
    try {
      const r = parseRecipient(arg)
      recipients.set(r.text, r)
    } catch (err) {
      throw new KubesnapError(`--encrypt-to ${quotePublic(arg)}: ${messageOf(err)}.`, {exit: EXIT.usage, cause: err})
    }
  }
  for (const file of files) {
    const text = await readKeyFile(file, 'recipients file')
    if (/^\s*-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new KubesnapError(`${file} is a private key, not a recipients file: give its public key (for ssh, the .pub file).`, {exit: EXIT.usage})
    }
    let found = 0
    for (const {value, at} of keyLines(file, text)) {
      try {
        const r = parseRecipient(value)
        recipients.set(r.text, r)
        found++
      } catch (err) {
        throw new KubesnapError(`${at}: ${messageOf(err)}.`, {exit: EXIT.usage, cause: err})
      }
    }
    if (found === 0) throw new KubesnapError(`${file} has no recipients (only comments or blank lines); add age1… or ssh- public keys, one a line.`, {exit: EXIT.usage})
  }
  return [...recipients.values()]
}

/** The keys of a recipients or identity file, as age reads them: trimmed, blank lines and `#` comments skipped; `at` is FILE:LINE for messages. */
export function* keyLines(file: string, text: string): Generator<{value: string; at: string}> {
  for (const [index, line] of text.split('\n').entries()) {
    const value = line.trim()
    if (value !== '' && !value.startsWith('#')) yield {value, at: `${file}:${index + 1}`}
  }
}

/**
 * Identities loaded from files. Opaque: the keys live in private fields, so
 * logging or inspecting this object shows file names only.
 */
export class AgeIdentities {
  /** The files the identities came from. */
  readonly files: readonly string[]
  readonly #identities: readonly (Identity | string)[]

  constructor(identities: readonly (Identity | string)[], files: readonly string[]) {
    this.#identities = identities
    this.files = files
  }

  /** How many identities there are. */
  get size(): number {
    return this.#identities.length
  }

  /** A Decrypter trying these identities in order, then `last` (which reports that none matched). */
  decrypter(last: Identity): Decrypter {
    const decrypter = new Decrypter()
    for (const identity of this.#identities) decrypter.addIdentity(identity)
    decrypter.addIdentity(last)
    return decrypter
  }

  [inspect.custom](): string {
    return `AgeIdentities(${this.size} from ${this.files.join(', ')})`
  }
}

/**
 * Loads identity files: age identity files (`AGE-SECRET-KEY-1…` lines, `#`
 * comments, as age-keygen writes them) and unencrypted OpenSSH private keys
 * (ssh-ed25519, ssh-rsa). Throws a KubesnapError naming the file (and line);
 * never one holding key material.
 */
export async function loadIdentities(files: readonly string[]): Promise<AgeIdentities> {
  const identities: (Identity | string)[] = []
  for (const file of files) {
    const text = await readKeyFile(file, 'identity file')
    const start = text.trimStart()
    if (start.startsWith('age-encryption.org/v1') || start.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) {
      throw new KubesnapError(`${file} is an age-encrypted identity file; kubesnap reads only unencrypted identity files: decrypt a copy with age -d or use another identity.`, {exit: EXIT.usage})
    }
    if (start.startsWith('-----BEGIN')) {
      identities.push(sshIdentity(file, text))
      continue
    }
    const before = identities.length
    for (const {value, at} of keyLines(file, text)) identities.push(ageIdentity(value, at))
    if (identities.length === before) throw new KubesnapError(`${file} has no identities (only comments or blank lines); give an age-keygen key file or an ssh private key.`, {exit: EXIT.usage})
  }
  return new AgeIdentities(identities, files)
}

function sshIdentity(file: string, text: string): Identity {
  try {
    return parseSshIdentity(text)
  } catch (err) {
    if (!(err instanceof SshKeyError)) throw err
    if (err.reason === 'passphrase') {
      throw new KubesnapError(`${file} is protected by a passphrase; kubesnap reads only unencrypted identity files: decrypt a copy with ssh-keygen -p or use an age identity.`, {exit: EXIT.usage})
    }
    throw new KubesnapError(`${file}: ${err.message}.`, {exit: EXIT.usage})
  }
}

function ageIdentity(value: string, where: string): Identity | string {
  const fail = (message: string) => new KubesnapError(`${where}: ${message}.`, {exit: EXIT.usage})
  if (value.startsWith('AGE-SECRET-KEY-PQ-1')) {
    try {
      new Decrypter().addIdentity(value)
    } catch {
      throw fail('not a valid AGE-SECRET-KEY-PQ-1… identity (bad checksum or length)')
    }
    return value
  }
  if (value.startsWith('AGE-SECRET-KEY-1')) {
    const identity = X25519Identity.parse(value)
    if (!identity) throw fail('not a valid AGE-SECRET-KEY-1… identity (bad checksum or length)')
    return identity
  }
  if (value.startsWith('AGE-PLUGIN-')) throw fail('age plugin identities (AGE-PLUGIN-…) need their plugin, which kubesnap cannot run; use an age-keygen or ssh key')
  if (value.startsWith('age1')) throw fail('this is a public key (a recipient), not an identity: give the key file age-keygen wrote')
  if (/^(ssh-|ecdsa-|sk-)/.test(value)) throw fail('this is an ssh public key, not an identity: give the private key file (without .pub)')
  throw fail('not an age identity: expected AGE-SECRET-KEY-1… lines or an ssh private key file')
}

/** An EntryCipher that also encrypts whole small buffers without a stream. */
export interface AgeCipher extends EntryCipher {
  encryptBuffer(data: Uint8Array): Promise<Buffer>
}

/**
 * The writer's cipher for these recipients: each `encrypt()` is a fresh
 * transform making one age file (new file key and nonce), with backpressure
 * and at most one 64 KiB chunk held; `encryptBuffer` does the same for a small
 * object in one call.
 */
export function ageCipher(recipients: readonly AgeRecipient[]): AgeCipher {
  if (recipients.length === 0) throw new Error('ageCipher needs at least one recipient.')
  const list = [...recipients]
  return {
    suffix: AGE_SUFFIX,
    encrypt: () => new AgeEncryptStream(list),
    async encryptBuffer(data) {
      const {header, payload} = startFile(list)
      const out: Buffer[] = [header]
      let at = 0
      // Chunks are full except the last, which may be empty only when it is the first.
      for (; data.length - at > CHUNK; at += CHUNK) out.push(...payload.seal(data.subarray(at, at + CHUNK), false))
      out.push(...payload.seal(data.subarray(at), true))
      return Buffer.concat(out)
    },
  }
}

/**
 * Returns OpenOptions.decrypt for these identities: each call a fresh
 * transform that reads one age file. It errors with ArchiveError 'no matching
 * identity' when none of the identities is a recipient, and 'decryption failed'
 * when the file is damaged; it emits a chunk only after it authenticates.
 */
export function ageDecrypt(identities: AgeIdentities, archivePath?: string): () => Transform {
  const noMatch: Identity = {
    unwrapFileKey: () => {
      throw new NoMatchingIdentity()
    },
  }
  const decrypter = identities.decrypter(noMatch)
  return () => new AgeDecryptStream(decrypter, archivePath)
}

/** Thrown by the last identity of a Decrypter: reached only when no other one matched. */
class NoMatchingIdentity extends Error {}

/**
 * Starts one age file: a fresh file key wrapped to every recipient, the header
 * with its MAC, then the payload nonce; returns those bytes and the payload key.
 */
function startFile(recipients: readonly AgeRecipient[]): {header: Buffer; payload: PayloadKey} {
  const fileKey = randomBytes(FILE_KEY_SIZE)
  const stanzas = recipients.flatMap((r) => r.recipient.wrapFileKey(fileKey))
  const nonce = randomBytes(NONCE)
  return {header: Buffer.concat([encodeHeader(stanzas, fileKey), nonce]), payload: new PayloadKey(fileKey, nonce)}
}

/**
 * The age header (spec "Header"): version line, one `-> args` line per stanza
 * and its body in base64 lines of 64 columns (the last one shorter, even
 * empty), then `---` and the HMAC-SHA-256 of all that under HKDF(file key, "header").
 */
function encodeHeader(stanzas: readonly Stanza[], fileKey: Uint8Array): Buffer {
  let text = INTRO.toString()
  for (const stanza of stanzas) {
    text += `-> ${stanza.args.join(' ')}\n`
    const body = base64NoPad(stanza.body)
    for (let at = 0; ; at += 64) {
      const line = body.slice(at, at + 64)
      text += line + '\n'
      if (line.length < 64) break
    }
  }
  text += '---'
  const mac = createHmac('sha256', hkdf(fileKey, new Uint8Array(0), 'header')).update(text).digest()
  return Buffer.from(`${text} ${base64NoPad(mac)}\n`)
}

/**
 * age's payload key and STREAM nonce: ChaCha20-Poly1305 per chunk, nonce an
 * 11-byte big-endian chunk counter and a last-chunk flag byte.
 */
class PayloadKey {
  readonly #key: Buffer
  readonly #nonce = Buffer.alloc(12)
  /** Chunks sealed or opened so far. */
  chunks = 0

  constructor(fileKey: Uint8Array, nonce: Uint8Array) {
    this.#key = hkdf(fileKey, nonce, 'payload')
  }

  /** Encrypts one chunk: ciphertext then tag. */
  seal(plaintext: Uint8Array, last: boolean): [Buffer, Buffer] {
    const cipher = createCipheriv('chacha20-poly1305', this.#key, this.#next(last), {authTagLength: TAG})
    const body = cipher.update(plaintext)
    cipher.final()
    return [body, cipher.getAuthTag()]
  }

  /** Decrypts one chunk (ciphertext ‖ tag); null when it does not authenticate. */
  open(chunk: Uint8Array, last: boolean): Buffer | null {
    const decipher = createDecipheriv('chacha20-poly1305', this.#key, this.#next(last), {authTagLength: TAG})
    decipher.setAuthTag(chunk.subarray(chunk.length - TAG))
    const plaintext = decipher.update(chunk.subarray(0, chunk.length - TAG))
    try {
      decipher.final()
    } catch {
      return null
    }
    return plaintext
  }

  /** The nonce of the next chunk. */
  #next(last: boolean): Buffer {
    // Increment the counter with carry. (Not `++nonce[i] === 0`: that expression is 256, not the 0 stored.)
    for (let i = 10; this.chunks > 0 && i >= 0; i--) {
      this.#nonce[i]++
      if (this.#nonce[i] !== 0) break
      if (i === 0) throw new Error('age STREAM counter overflow')
    }
    this.chunks++
    this.#nonce[11] = last ? 1 : 0
    return this.#nonce
  }
}

/**
 * Plaintext in, one age file out. The header goes out with the first output;
 * a full chunk is sealed only once more input shows it is not the last, so
 * the transform holds at most 64 KiB.
 */
class AgeEncryptStream extends Transform {
  readonly #recipients: readonly AgeRecipient[]
  #payload?: PayloadKey
  readonly #chunk = Buffer.allocUnsafe(CHUNK)
  #used = 0

  constructor(recipients: readonly AgeRecipient[]) {
    super()
    this.#recipients = recipients
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#encrypt(data)
    } catch (err) {
      return callback(err as Error)
    }
    callback()
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#push(this.#start().seal(this.#chunk.subarray(0, this.#used), true))
    } catch (err) {
      return callback(err as Error)
    }
    callback()
  }

  /** The payload key, writing the header first if it is not out yet. */
  #start(): PayloadKey {
    if (this.#payload) return this.#payload
    const {header, payload} = startFile(this.#recipients)
    this.push(header)
    this.#payload = payload
    return payload
  }

  #encrypt(data: Buffer): void {
    const payload = this.#start()
    let at = 0
    while (at < data.length) {
      if (this.#used === CHUNK) {
        this.#push(payload.seal(this.#chunk, false))
        this.#used = 0
      }
      if (this.#used === 0 && data.length - at > CHUNK) {
        // A whole chunk with more input after it: seal it in place, no copy.
        this.#push(payload.seal(data.subarray(at, at + CHUNK), false))
        at += CHUNK
        continue
      }
      const n = data.copy(this.#chunk, this.#used, at, at + CHUNK - this.#used)
      this.#used += n
      at += n
    }
  }

  #push(parts: Buffer[]): void {
    for (const part of parts) this.push(part)
  }
}

/**
 * One age file in, plaintext out. Buffers the header (and nonce), has the
 * Decrypter open it, then opens chunks, holding back the latest full one until
 * more input shows it is not the last.
 */
class AgeDecryptStream extends Transform {
  readonly #decrypter: Decrypter
  readonly #archivePath?: string
  /** Bytes before the payload: header and nonce. */
  #head: Buffer = Buffer.alloc(0)
  #payload?: PayloadKey
  readonly #chunk = Buffer.allocUnsafe(CHUNK + TAG)
  #used = 0

  constructor(decrypter: Decrypter, archivePath?: string) {
    super()
    this.#decrypter = decrypter
    this.#archivePath = archivePath
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#payload) return this.#decrypt(data, callback)
    this.#head = this.#head.length === 0 ? data : Buffer.concat([this.#head, data])
    const head = this.#head
    const intro = head.subarray(0, INTRO.length)
    if (!intro.equals(INTRO.subarray(0, intro.length))) return callback(this.#fail('decryption failed', `${this.#entry()} is not age-encrypted (it does not start with age-encryption.org/v1)${this.#damagedArchive()}`))
    // The header ends with its MAC line, `--- MAC`; stanza lines start with `->` or are base64.
    const macLine = head.indexOf('\n---')
    const end = macLine < 0 ? -1 : head.indexOf('\n', macLine + 1)
    if (end < 0 || head.length < end + 1 + NONCE) {
      if (head.length > MAX_HEADER) return callback(this.#fail('decryption failed', `${this.#entry()} has an age header over ${MAX_HEADER} bytes${this.#damagedArchive()}`))
      return callback()
    }
    const header = head.subarray(0, end + 1)
    const nonce = head.subarray(end + 1, end + 1 + NONCE)
    const rest = head.subarray(end + 1 + NONCE)
    this.#head = Buffer.alloc(0)
    this.#decrypter.decryptHeader(header).then(
      (fileKey) => {
        this.#payload = new PayloadKey(fileKey, nonce)
        this.#decrypt(rest, callback)
      },
      (err: unknown) => {
        if (err instanceof NoMatchingIdentity) {
          callback(this.#fail('no matching identity', `None of the identities given can decrypt ${this.#archivePath ?? 'this age file'}; use --identity with the key matching one of its recipients`))
        } else {
          callback(this.#fail('decryption failed', `${this.#entry()} cannot be decrypted: its age header is damaged (${messageOf(err)})${this.#damagedArchive()}`, err))
        }
      },
    )
  }

  override _flush(callback: TransformCallback): void {
    const payload = this.#payload
    // An empty payload is one chunk of just a tag; an empty last chunk after full ones is not allowed.
    if (!payload || this.#used < TAG || (payload.chunks > 0 && this.#used === TAG)) {
      return callback(this.#fail('decryption failed', `${this.#entry()} is cut short${this.#damagedArchive()}`))
    }
    const plaintext = payload.open(this.#chunk.subarray(0, this.#used), true)
    if (!plaintext) return callback(this.#damaged())
    callback(null, plaintext)
  }

  #decrypt(data: Buffer, callback: TransformCallback): void {
    const payload = this.#payload!
    let at = 0
    while (at < data.length) {
      if (this.#used === CHUNK + TAG) {
        const plaintext = payload.open(this.#chunk, false)
        if (!plaintext) return callback(this.#damaged())
        this.push(plaintext)
        this.#used = 0
      }
      const n = data.copy(this.#chunk, this.#used, at, at + CHUNK + TAG - this.#used)
      this.#used += n
      at += n
    }
    callback()
  }

  #damaged(): ArchiveError {
    return this.#fail('decryption failed', `${this.#entry()} is damaged: a chunk fails authentication${this.#damagedArchive()}`)
  }

  /** The subject of error sentences. */
  #entry(): string {
    return this.#archivePath ? `An encrypted entry of ${this.#archivePath}` : 'This age file'
  }

  #damagedArchive(): string {
    return this.#archivePath ? '; the archive is damaged: run kubesnap verify on it, or use another snapshot' : ''
  }

  #fail(problem: 'no matching identity' | 'decryption failed', sentence: string, cause?: unknown): ArchiveError {
    return new ArchiveError(problem, sentence + '.', this.#archivePath ?? '', undefined, cause === undefined ? undefined : {cause})
  }
}

/** Quotes a flag value only when it is a public key; anything else might be a secret. */
function quotePublic(value: string): string {
  const v = value.trim()
  if (!/^(age1|ssh-|ecdsa-|sk-)/.test(v)) return '(value not shown)'
  return JSON.stringify(v.length > 28 ? v.slice(0, 24) + '…' : v)
}

/** Reads a small key file the user named (readUserFile); refuses large ones (a mistyped path). */
export async function readKeyFile(file: string, what: string): Promise<string> {
  return readUserFile(file, (why) => `The ${what} ${file} ${why}; check the path.`, {maxBytes: MAX_KEY_FILE})
}
