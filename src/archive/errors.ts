/**
 * Errors of the archive layer: one class with a machine-readable `problem`, so
 * commands can map it to exit codes and `--json` output without parsing messages.
 */

/** What is wrong with an archive, in the words `verify` and `inspect` report. */
export type ArchiveProblem =
  | 'not a kubesnap archive'
  | 'unsupported format version'
  | 'truncated'
  | 'corrupt trailer'
  | 'corrupt manifest'
  | 'corrupt format.json'
  | 'bad header checksum'
  | 'bad padding'
  | 'sha256 mismatch'
  | 'size mismatch'
  | 'offset mismatch'
  | 'missing'
  | 'out of order'
  | 'unexpected member'
  | 'missing end-of-archive blocks'
  | 'trailing data'
  | 'encrypted'
  | 'no matching identity'
  | 'decryption failed'
  | 'identity mismatch'
  | 'duplicate member'
  | 'name mismatch'
  | 'unsigned'
  | 'untrusted signer'
  | 'bad signature'

/** An archive that cannot be read or does not match its manifest; `entry` names the member when one is at fault. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError'
  readonly problem: ArchiveProblem
  readonly archivePath: string
  readonly entry?: string

  constructor(problem: ArchiveProblem, message: string, archivePath: string, entry?: string, options?: ErrorOptions) {
    super(message, options)
    this.problem = problem
    this.archivePath = archivePath
    this.entry = entry
  }
}
