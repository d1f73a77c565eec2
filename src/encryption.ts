/**
 * The `--identity` flag of the commands that read contents (restore, verify,
 * inspect --show); what they do with it is archive/contents.ts.
 */
import {Flags} from '@oclif/core'

/** `--identity FILE`, repeatable. */
export const identityFlag = Flags.string({
  char: 'i',
  summary: 'An age identity file (age-keygen) or unencrypted ssh private key that decrypts the archive; repeatable.',
  multiple: true,
  helpGroup: 'ENCRYPTION',
})
