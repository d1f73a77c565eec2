import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {basename} from 'node:path'
import {Args} from '@oclif/core'
import type {ArchiveProblem} from '../archive/errors.js'
import {isStreamEntry} from '../archive/manifest.js'
import {openArchive, type ArchiveReader} from '../archive/reader.js'
import {selectArchive} from '../archive/select.js'
import {verifyArchive, type VerifyResult} from '../archive/verify.js'
import {archiveSize} from '../archive/store.js'
import {KubesnapCommand} from '../base-command.js'
import {archiveSelectionFlags} from '../flags.js'
import {openForContents} from '../archive/contents.js'
import {identityFlag} from '../encryption.js'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {progressOnTerminal, quietFlag, taskList} from '../progress.js'
import {loadPlan} from '../plan/plan.js'
import {checkTrust, type SignatureSummary} from '../archive/sign.js'
import {readPlanFlag, trustedKeys, trustFlag} from '../signing.js'
import {formatBytes} from '../format.js'

/** What `verify --json` prints: ok with the counts, or the first bad member and what is wrong with it. */
export interface VerifySummary {
  ok: boolean
  path: string
  /** Tar members read (when ok). */
  members?: number
  /** Bytes of the file verified (when ok). */
  bytes?: number
  /** The first member in file order that is wrong (when not ok). */
  entry?: string
  problem?: ArchiveProblem
  /** What exactly was found, e.g. both sha256 values. */
  detail?: string
  /** The sentence the command prints without --json. */
  message?: string
  /** Entries decrypted and authenticated (an encrypted archive verified with --identity). */
  decrypted?: number
  /** When the manifest is signed: by which key, and whether that key is trusted (--trust). */
  signature?: SignatureSummary
}

/** Archives smaller than this verify in well under a second: no progress display. */
const PROGRESS_THRESHOLD = 64 * 1024 * 1024

export default class Verify extends KubesnapCommand<typeof Verify> {
  static override summary = 'Check every byte of a snapshot archive against its manifest.'

  static override description = `Reads the whole archive once and checks every tar header, every member's sha256, size and position, their order, the manifest against the trailer, and the end of the file.
restore runs the same check before its first write to the cluster. Needs no cluster access. The check covers encrypted archives as stored; with --identity it also decrypts and authenticates every entry and checks each volume and dump against its rawSha256.
A signed archive's signature is checked too; with --trust it must be there and made by a trusted key.
Exit codes: 0 every byte matches, 1 damaged (the first bad member is named), missing, not a kubesnap archive, or its signature fails or is not trusted, 2 usage.`

  static override examples = [
    '<%= config.bin %> verify /var/backups/kubesnap/shop-000042-20261121T163000Z.kubesnap.tar',
    '<%= config.bin %> verify --latest -o /var/backups/kubesnap -n shop --json',
    '<%= config.bin %> verify --latest -o /var/backups/kubesnap -n shop --identity ~/keys/shop-key.txt',
    '<%= config.bin %> verify --latest -o /var/backups/kubesnap -n shop --trust /etc/kubesnap/signing-key.pub',
  ]

  static override args = {
    archive: Args.string({description: 'The archive file; or use --number/--latest.'}),
  }

  static override flags = {...archiveSelectionFlags, identity: identityFlag, trust: trustFlag, config: readPlanFlag, quiet: quietFlag}

  public async run(): Promise<VerifySummary> {
    // Trusted keys are read first: a typo in a key file is a usage error, not a verdict on the archive.
    const trust = await trustedKeys(this.flags.trust, this.flags.config ? await loadPlan(this.flags.config) : undefined)
    const path = await selectArchive(this.args.archive, this.flags)
    const summary = await verifyWithProgress(path, {json: this.jsonEnabled(), quiet: this.flags.quiet})
    if (summary.ok) {
      // Without --identity only the manifest is read: contents stay encrypted, and that is said.
      const reader = this.flags.identity ? await openForContents(path, this.flags.identity) : await openArchive(path)
      // Every byte matches the manifest; the signature says whether the manifest is the signer's.
      const signature = await checkTrust(reader, trust)
      if (signature.signed) summary.signature = signature
      if (reader.manifest.encrypted && this.flags.identity) summary.decrypted = await decryptAll(reader)
      const contents = !reader.manifest.encrypted ? '' : summary.decrypted === undefined
        ? '; contents are encrypted and were not decrypted (give --identity to check them too)'
        : `; ${summary.decrypted} encrypted entries decrypted and authenticated`
      const s = summary.signature
      const signed = s ? `; signed by ${s.fingerprint}${s.trusted ? ' (trusted)' : ' (not checked against trusted keys: give --trust)'}` : ''
      if (!this.flags.quiet) this.log(`OK: ${path}: ${summary.members} members, ${summary.bytes} bytes verified${contents}${signed}`)
      return summary
    }
    // --json prints the result itself (with exit 1); people get the one sentence as an error.
    if (this.jsonEnabled()) {
      process.exitCode = EXIT.failed
      return summary
    }
    throw new KubesnapError(summary.message!, {code: summary.problem})
  }
}

/** Verifies an archive, showing bytes verified on large ones; returns the result in the shape `--json` prints. */
export async function verifyWithProgress(path: string, options: {json: boolean; quiet?: boolean}): Promise<VerifySummary> {
  let fileSize: number
  try {
    const size = await archiveSize(path)
    if (size === undefined) throw Object.assign(new Error('no such file or object'), {code: 'ENOENT'})
    fileSize = size
  } catch (err) {
    if (err instanceof KubesnapError) throw err
    throw new KubesnapError(`Cannot read ${path} (${(err as Error).message}); check that it is a readable file.`, {cause: err})
  }
  let result: VerifyResult | undefined
  const tty = progressOnTerminal()
  const tasks = taskList([{
    title: `Verify ${basename(path)} (${formatBytes(fileSize)})`,
    task: async (_ctx, task) => {
      // A line every 10 s in logs (cron), a live counter on a terminal.
      const every = tty ? 250 : 10_000
      let shown = Date.now()
      result = await verifyArchive(path, {
        onProgress: (read, size) => {
          if (Date.now() - shown < every) return
          shown = Date.now()
          task.output = `${formatBytes(read)} of ${formatBytes(size)} verified (${Math.floor((read / size) * 100)}%)`
        },
      })
      task.title = result.ok ? `Verified ${basename(path)}: ${formatBytes(result.bytes)}` : `${basename(path)} is damaged at ${result.entry}`
    },
  }], {json: options.json, quiet: options.quiet || fileSize < PROGRESS_THRESHOLD, tty})
  try {
    await tasks.run()
  } catch (err) {
    throw new KubesnapError(`Cannot read ${path} (${(err as Error).message}); check that it is a readable file.`, {cause: err})
  }
  const r = result!
  if (r.ok) return {ok: true, path, members: r.members, bytes: r.bytes}
  return {ok: false, path, entry: r.entry, problem: r.problem, detail: r.detail, message: damageSentence(path, r)}
}

/**
 * Decrypts every entry of a (structurally verified) encrypted archive: each
 * age chunk authenticates, and each stream must decompress to its rawSize and
 * rawSha256. Throws a KubesnapError naming the first entry that does not.
 */
async function decryptAll(reader: ArchiveReader): Promise<number> {
  let count = 0
  for (const entry of reader.manifest.entries) {
    try {
      if (isStreamEntry(entry)) await pipeline(reader.readStream(entry), new Writable({write: (_chunk, _encoding, done) => done()}))
      else await reader.readObject(entry)
    } catch (err) {
      const where = isStreamEntry(entry) ? `${entry.type} ${entry.name}` : entry.path
      throw new KubesnapError(`Archive ${basename(reader.path)} does not decrypt at ${where} (${messageOf(err).replace(/\.$/, '')}); restore from another snapshot.`, {cause: err})
    }
    count++
  }
  return count
}

/** Says in one sentence what is wrong with an archive and what to do. */
function damageSentence(path: string, r: Extract<VerifyResult, {ok: false}>): string {
  const file = basename(path)
  switch (r.problem) {
    case 'not a kubesnap archive':
      return `${path} is not a kubesnap archive; give the path of a .kubesnap.tar file.`
    case 'unsupported format version':
      return `${file} uses an archive format version this kubesnap does not read; use a matching kubesnap release.`
    default:
      return `Archive ${file} is damaged at ${r.entry} (${r.problem}); restore from another snapshot.`
  }
}
