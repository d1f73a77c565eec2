/**
 * Signing as the commands see it: `--sign-with` for snapshot, `--trust` for
 * verify and restore, and the check that refuses an unsigned, wrongly signed
 * or tampered archive before anything reads its contents.
 */
import {basename} from 'node:path'
import {Flags} from '@oclif/core'
import type {ArchiveProblem} from './archive/errors.js'
import type {ArchiveReader} from './archive/reader.js'
import {checkArchiveSignature, keyFingerprint, loadTrustedKeys, type TrustedKey} from './archive/sign.js'
import {KubesnapError} from './errors.js'
import type {Plan} from './plan/plan.js'

/** `--sign-with FILE`. */
export const signWithFlag = Flags.string({
  summary: 'Sign the manifest with this unencrypted OpenSSH ssh-ed25519 private key (checked with ssh-keygen -Y verify -n kubesnap, or --trust).',
  helpGroup: 'SIGNING',
})

/** `--trust FILE`, repeatable. */
export const trustFlag = Flags.string({
  summary: 'Refuse the archive unless it is signed by a key in this file (a .pub, authorized_keys or allowed_signers file); repeatable.',
  multiple: true,
  helpGroup: 'SIGNING',
})

/** `--config FILE` for the commands that read archives: the plan's trust list. */
export const readPlanFlag = Flags.string({
  summary: 'Require a signature by the keys of this kubesnap.yaml plan\'s trust list (--trust given as well replaces it).',
  helpGroup: 'PLAN',
})

/** What verify and restore report about a signature. */
export interface SignatureSummary {
  signed: boolean
  /** The signer's key fingerprint (`SHA256:…`), when signed. */
  fingerprint?: string
  /** Whether the signer is one of the trusted keys (only when --trust or a plan's trust was given). */
  trusted?: boolean
}

/**
 * The keys `--trust` files name, or else the plan's `trust` list; undefined
 * when neither asks for a signature. A bad file is a usage error (exit 2).
 */
export async function trustedKeys(files: string[] | undefined, plan?: Plan): Promise<TrustedKey[] | undefined> {
  if (files && files.length > 0) return loadTrustedKeys(files)
  if (plan && (plan.trust.keys.length > 0 || plan.trust.files.length > 0)) return loadTrustedKeys(plan.trust.files, plan.trust.keys)
  return undefined
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
