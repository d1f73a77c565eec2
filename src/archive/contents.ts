/**
 * Opening an archive's contents with keys: the writer's cipher for the
 * recipients a snapshot names, and for the commands that read contents
 * (restore, verify, inspect --show) the identities that decrypt them, with
 * the checks that make a missing or wrong key a clear usage error before
 * anything else happens.
 */
import {ageCipher, ageDecrypt, loadIdentities, parseRecipients, type AgeCipher} from './crypto.js'
import {ArchiveError} from './errors.js'
import {isStreamEntry, type Manifest} from './manifest.js'
import type {ArchiveReader, OpenOptions} from './reader.js'
import {openSelected} from './select.js'
import {EXIT, KubesnapError} from '../errors.js'

/** The writer's cipher and the recipients' public text, or undefined when nothing asks for encryption. */
export async function cipherFor(encryption: {recipients: string[]; recipientsFiles: string[]}): Promise<{cipher: AgeCipher; recipients: string[]} | undefined> {
  if (encryption.recipients.length === 0 && encryption.recipientsFiles.length === 0) return undefined
  // parseRecipients refuses a recipients file without recipients.
  const recipients = await parseRecipients(encryption.recipients, encryption.recipientsFiles)
  return {cipher: ageCipher(recipients), recipients: recipients.map((r) => r.text)}
}

/** OpenOptions that decrypt with the identities in `files` (none when no file is given). */
async function decryptOptions(files: string[] | undefined, archivePath: string): Promise<OpenOptions> {
  if (!files || files.length === 0) return {}
  return {decrypt: ageDecrypt(await loadIdentities(files), archivePath)}
}

/** Says which keys an encrypted archive wants, for messages. */
function wanted(manifest: Manifest): string {
  const recipients = manifest.recipients ?? []
  if (recipients.length === 0) return 'the key it was encrypted to'
  const shown = recipients.map((r) => (r.length > 24 ? `${r.slice(0, 20)}…` : r))
  return `a key of ${shown.length === 1 ? 'its recipient' : 'one of its recipients'} ${shown.join(', ')}`
}

/**
 * Before a command reads contents: an encrypted archive needs --identity, and
 * the identity must open it. Decrypts the first entry to prove the key, so a
 * wrong one is a usage error (exit 2) before any write to a cluster.
 */
export async function checkIdentity(reader: ArchiveReader, files: string[] | undefined): Promise<void> {
  const {manifest} = reader
  if (!manifest.encrypted) return
  if (!files || files.length === 0) {
    throw new KubesnapError(`${reader.path} is encrypted; give --identity FILE with ${wanted(manifest)}.`, {exit: EXIT.usage})
  }
  const first = manifest.entries[0]
  if (!first) return
  try {
    if (isStreamEntry(first)) {
      // The header decides; reading on checks every chunk, which verify does later for all entries.
      for await (const _ of reader.readStream(first)) break
    } else {
      await reader.readObject(first)
    }
  } catch (err) {
    if (err instanceof ArchiveError && err.problem === 'no matching identity') {
      throw new KubesnapError(`None of the identities in ${files.join(', ')} can decrypt ${reader.path}; give --identity with ${wanted(manifest)}.`, {exit: EXIT.usage, cause: err})
    }
    throw err
  }
}

/**
 * Opens an archive to read its contents: decrypting with the identities in
 * `files`, and refusing (checkIdentity) an encrypted archive without a key
 * that opens it, before anything else happens.
 */
export async function openForContents(path: string, files: string[] | undefined): Promise<ArchiveReader> {
  const reader = await openSelected(path, await decryptOptions(files, path))
  await checkIdentity(reader, files)
  await reader.unseal()
  return reader
}
