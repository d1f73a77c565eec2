import {Args} from '@oclif/core'
import {copyArchive, type CopyResult} from '../archive/copy.js'
import {KubesnapCommand} from '../base-command.js'

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

  public async run(): Promise<CopyResult> {
    const result = await copyArchive(this.args.source, this.args.destination)
    this.log(`Copied ${result.from} → ${result.to} (${result.bytes} bytes, verified).`)
    return result
  }
}
