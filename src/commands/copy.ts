import {basename} from 'node:path'
import {Args} from '@oclif/core'
import {openSelected} from '../archive/select.js'
import {parseArchiveName} from '../archive/naming.js'
import {verifyArchive} from '../archive/verify.js'
import {createCopyOutput} from '../archive/writer.js'
import {KubesnapCommand} from '../base-command.js'
import {KubesnapError, messageOf} from '../errors.js'

/** What `copy --json` prints. */
export interface CopySummary {
  from: string
  to: string
  namespace: string
  number: number
  bytes: number
}

export default class Copy extends KubesnapCommand<typeof Copy> {
  static override summary = 'Copy a snapshot archive between a directory and an s3:// location, verifying it as it copies.'

  static override description = `Reads the archive once, checks every byte against its manifest as kubesnap verify does, and writes it to the destination under the same name: a .partial file renamed when complete, or a multipart upload completed last. A damaged archive is not copied (exit 1, nothing left under the final name). Needs no cluster access.`

  static override examples = [
    '<%= config.bin %> copy /var/backups/kubesnap/shop-000042-20261121T163000Z.kubesnap.tar s3://backups/kubesnap',
    '<%= config.bin %> copy s3://backups/kubesnap/shop-000042-20261121T163000Z.kubesnap.tar /var/restore',
  ]

  static override args = {
    source: Args.string({description: 'The archive: a file, or an s3:// object.', required: true}),
    destination: Args.string({description: 'The directory or s3://BUCKET/PREFIX to copy it into.', required: true}),
  }

  public async run(): Promise<CopySummary> {
    const {source, destination} = this.args
    // Both ends are checked before a byte moves (createCopyOutput checks the destination's bucket): a missing bucket or a wrong secret is one sentence.
    const archive = await openSelected(source)
    const file = basename(source)
    if (!parseArchiveName(file)) throw new KubesnapError(`${source} is not named as kubesnap names archives (NS-NNNNNN-TIME.kubesnap.tar); rename it before copying.`)
    const {namespace, number} = archive.manifest
    const out = await createCopyOutput(destination, file, {namespace, number}).catch((err: unknown) => {
      throw err instanceof KubesnapError ? err : new KubesnapError(messageOf(err), {cause: err})
    })
    let result
    try {
      result = await verifyArchive(source, {tap: (chunk) => out.append(chunk)})
    } catch (err) {
      await out.abort()
      throw err instanceof KubesnapError ? err : new KubesnapError(`Copying ${source} failed (${messageOf(err)}); nothing was left under ${out.path}.`, {cause: err})
    }
    if (!result.ok) {
      await out.abort()
      throw new KubesnapError(`${source} is damaged (${result.problem} at ${result.entry}), so it was not copied; run kubesnap verify on it for details.`, {code: result.problem})
    }
    await out.commit()
    this.log(`Copied ${source} → ${out.path} (${result.bytes} bytes, verified).`)
    return {from: source, to: out.path, namespace, number, bytes: result.bytes}
  }
}
