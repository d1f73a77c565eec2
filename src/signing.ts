/**
 * Signing as the commands see it: `--sign-with` for snapshot, `--trust` for
 * verify and restore, and the keys they trust; the check that refuses an
 * unsigned, wrongly signed or tampered archive is archive/sign.ts checkTrust.
 */
import {Flags} from '@oclif/core'
import {loadTrustedKeys, type TrustedKey} from './archive/sign.js'
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

/**
 * The keys `--trust` files name, or else the plan's `trust` list; undefined
 * when neither asks for a signature. A bad file is a usage error (exit 2).
 */
export async function trustedKeys(files: string[] | undefined, plan?: Plan): Promise<TrustedKey[] | undefined> {
  if (files && files.length > 0) return loadTrustedKeys(files)
  if (plan && (plan.trust.keys.length > 0 || plan.trust.files.length > 0)) return loadTrustedKeys(plan.trust.files, plan.trust.keys)
  return undefined
}
