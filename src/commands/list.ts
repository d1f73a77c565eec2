import {Args, Flags} from '@oclif/core'
import {formatBytes} from '../format.js'
import {listArchives, type ArchiveListing} from '../archive/list.js'
import {checkArchiveDir} from '../archive/select.js'
import {KubesnapCommand} from '../base-command.js'

export default class List extends KubesnapCommand<typeof List> {
  static override summary = 'List the snapshot archives in a directory.'

  static override description = `Shows one row per archive, by namespace then number: its time, file size, how many objects and volumes it holds, whether it is encrypted, and whether it is complete or partial (something it was meant to hold is missing; kubesnap inspect says what). Reads only the end of each file (trailer and manifest), so it is fast however large the archives are; it does not check their contents (kubesnap verify does).
A damaged archive is listed with its problem instead of its counts. Needs no cluster access.`

  static override examples = [
    '<%= config.bin %> list /var/backups/kubesnap',
    '<%= config.bin %> list /var/backups/kubesnap -n shop --json',
  ]

  static override args = {
    dir: Args.string({description: 'The directory that holds the archives.', default: '.'}),
  }

  static override flags = {
    namespace: Flags.string({char: 'n', summary: 'Only the archives of this namespace.'}),
  }

  public async run(): Promise<ArchiveListing[]> {
    const {dir} = this.args
    const namespace = this.flags.namespace
    await checkArchiveDir(dir)
    const rows = await listArchives(dir, {namespace})
    if (rows.length === 0) {
      this.log(`No kubesnap archives${namespace ? ` of namespace ${namespace}` : ''} in ${dir}.`)
      return rows
    }
    for (const line of formatTable(rows)) this.log(line)
    const misnamed = rows.filter((r) => !r.ok && r.problem === 'name mismatch')
    const damaged = rows.filter((r) => !r.ok).length - misnamed.length
    if (damaged > 0) this.note(`${damaged} of ${rows.length} archives could not be read; run kubesnap verify on them for details.`)
    for (const r of misnamed) if (!r.ok) this.note(r.error)
    return rows
  }
}

/** Formats a listing as aligned columns under a header; a damaged archive shows its problem in place of its counts. */
export function formatTable(rows: readonly ArchiveListing[]): string[] {
  const header = ['NUMBER', 'NAMESPACE', 'TIME', 'SIZE', 'OBJECTS', 'VOLUMES', 'ENCRYPTED', 'STATUS', 'FILE']
  const anyDamaged = rows.some((r) => !r.ok)
  if (anyDamaged) header.push('PROBLEM')
  const cells = rows.map((r) => {
    const common = [String(r.number), r.namespace, formatTime(r.time), formatBytes(r.fileSize)]
    const counts = r.ok ? [String(r.objects), String(r.volumes), r.encrypted ? 'yes' : 'no', r.status] : ['-', '-', '-', '-']
    return [...common, ...counts, r.file, ...(anyDamaged ? [r.ok ? '' : r.problem] : [])]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  // Numbers are right-aligned so they line up by digit.
  const right = new Set([0, 3, 4, 5])
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : right.has(i) ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(header), ...cells.map(line)]
}


/** Formats a time as `2026-11-21 16:30:00Z` (UTC, to the second). */
function formatTime(time: Date): string {
  return time.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}
