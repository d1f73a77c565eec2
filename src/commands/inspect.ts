import {Args, Flags} from '@oclif/core'
import {AGE_SUFFIX} from '../archive/crypto.js'
import {keyFingerprint} from '../archive/sign.js'
import {isFailure, isStreamEntry, SEALED_EXTRA_FIELDS, snapshotStatus, type Manifest, type ObjectEntry, type StreamEntry} from '../archive/manifest.js'
import type {ArchiveReader} from '../archive/reader.js'
import {openSelected, selectArchive} from '../archive/select.js'
import {KubesnapCommand} from '../base-command.js'
import {archiveSelectionFlags} from '../flags.js'
import {qualifiedName} from '../cluster/discovery.js'
import {openForContents} from '../archive/contents.js'
import {identityFlag} from '../encryption.js'
import {EXIT, KubesnapError} from '../errors.js'
import {formatBytes} from '../format.js'
import {LAST_APPLIED} from '../resources/secrets.js'
import {displayName, RefusedMember, TarFormatError} from '../volumes/canonical-tar.js'
import {canonicalVolumeTar} from '../volumes/tar-in.js'

export default class Inspect extends KubesnapCommand<typeof Inspect> {
  static override summary = 'Show what a snapshot archive holds, from its manifest.'

  static override description = `Prints the snapshot's namespace, number, times, cluster and versions, then the count of each kind, every object (kind/name, by resource), volume and dump, and what the snapshot left out and why. --json prints the manifest itself.
Reads only the trailer and the manifest at the end of the file, so it takes milliseconds on a multi-GiB archive; it does not check the contents (kubesnap verify does). Needs no cluster access.
--show ENTRY prints one entry's content instead: an object as JSON (a Secret's values hidden), or a volume's file list; an encrypted archive needs --identity for it.`

  static override examples = [
    '<%= config.bin %> inspect /var/backups/kubesnap/shop-000042-20261121T163000Z.kubesnap.tar',
    '<%= config.bin %> inspect --latest -o /var/backups/kubesnap -n shop',
    '<%= config.bin %> inspect --number 41 -o /var/backups/kubesnap -n shop --json',
    '<%= config.bin %> inspect --latest -o /var/backups/kubesnap -n shop --show configmap/app --identity ~/keys/shop-key.txt',
    '<%= config.bin %> inspect --latest -o /var/backups/kubesnap -n shop --show volume/data-db-0',
  ]

  static override args = {
    archive: Args.string({description: 'The archive file; or use --number/--latest.'}),
  }

  static override flags = {
    ...archiveSelectionFlags,
    show: Flags.string({summary: 'Print one entry\'s content: KIND/NAME (secret/db, configmaps/app, deployments.apps/web), volume/CLAIM (its files), or a member path.'}),
    identity: identityFlag,
  }

  public async run(): Promise<Manifest | object> {
    const path = await selectArchive(this.args.archive, this.flags)
    if (this.flags.show !== undefined) return this.show(path, this.flags.show)
    const {manifest, fileSize} = await openSelected(path)
    for (const line of describeManifest(manifest, path, fileSize)) this.log(line)
    return manifest
  }

  /** --show: one entry's content, decrypted when needed; Secret values never. */
  private async show(path: string, which: string): Promise<object> {
    const reader = await openForContents(path, this.flags.identity)
    const entry = findEntry(reader.manifest, which)
    if (entry.type === 'object' || entry.type === 'crd') {
      const object = hideSecretValues(JSON.parse((await reader.readObject(entry)).toString('utf8')))
      this.log(JSON.stringify(object, null, 2))
      return object
    }
    if (entry.type === 'dump') {
      throw new KubesnapError(`Dump ${entry.name} is application data that kubesnap does not print; extract it with tar (see the README) or load it with kubesnap restore.`, {exit: EXIT.usage})
    }
    const files = await listVolumeFiles(reader, entry as StreamEntry)
    for (const f of files) this.log(`${f.mode} ${String(f.size).padStart(10)} ${f.path}${f.linkpath ? ` -> ${f.linkpath}` : ''}`)
    return {volume: entry.name, files}
  }
}

interface ShownFile {
  path: string
  type: string
  mode: string
  size: number
  linkpath?: string
}

/** Describes a manifest for people: a header, counts per kind, entries by type, then what was skipped and the warnings. */
export function describeManifest(manifest: Manifest, path: string, fileSize: number): string[] {
  const lines: string[] = []
  const objects = manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')
  const crds = manifest.entries.filter((e): e is ObjectEntry => e.type === 'crd')
  const volumes = manifest.entries.filter((e): e is StreamEntry => e.type === 'volume')
  const dumps = manifest.entries.filter((e): e is StreamEntry => e.type === 'dump')

  lines.push(
    ...labelled([
      ['Archive', `${path} (${formatBytes(fileSize)})`],
      ['Namespace', manifest.namespace],
      ['Snapshot', String(manifest.number)],
      ['Started', manifest.startedAt],
      ['Finished', `${manifest.finishedAt}${duration(manifest.startedAt, manifest.finishedAt)}`],
      ['Cluster', `${manifest.cluster.server} (context ${manifest.cluster.context})`],
      ['Written by', `kubesnap ${manifest.kubesnapVersion}, archive format ${manifest.formatVersion}`],
      ['Encrypted', manifest.encrypted ? 'yes' : 'no'],
      ['Signed', manifest.signedBy ? `by ${keyFingerprint(manifest.signedBy)} (verify checks the signature)` : 'no'],
      ['Status', snapshotStatus(manifest) === 'partial' ? 'partial (what could not be stored is under Skipped, marked failed)' : 'complete'],
    ]),
  )

  lines.push('', 'Counts:')
  const perKind = new Map<string, number>()
  for (const e of [...objects, ...crds]) perKind.set(e.kind, (perKind.get(e.kind) ?? 0) + 1)
  const counts: [string, string][] = [...perKind].sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => [kind, String(n)])
  counts.push(['volumes', String(volumes.length)], ['dumps', String(dumps.length)])
  lines.push(...labelled(counts, '  '))

  if (objects.length > 0) {
    lines.push('', `Objects (${objects.length}):`)
    for (const [resource, entries] of groupBy(objects, resourceName)) {
      lines.push(`  ${resource}:`)
      for (const e of entries) lines.push(`    ${e.kind}/${e.name}`)
    }
  }
  if (crds.length > 0) {
    lines.push('', `CustomResourceDefinitions (${crds.length}):`)
    for (const e of crds) lines.push(`  ${e.name}`)
  }
  for (const [title, streams] of [['Volumes', volumes], ['Dumps', dumps]] as const) {
    if (streams.length === 0) continue
    lines.push('', `${title} (${streams.length}):`)
    for (const e of streams) lines.push(`  ${describeStream(e)}`)
  }

  if (manifest.skipped.length > 0) {
    lines.push('', `Skipped (${manifest.skipped.length}):`)
    for (const s of manifest.skipped) lines.push(`  ${isFailure(s) ? 'failed: ' : ''}${s.resource}${s.name ? `/${s.name}` : ''}${s.kind ? ` (${s.kind})` : ''}: ${s.reason}`)
  }
  if (manifest.warnings.length > 0) {
    lines.push('', `Warnings (${manifest.warnings.length}):`)
    for (const w of manifest.warnings) lines.push(`  ${w}`)
  }
  return lines
}

/** One volume or dump: name, stored and raw size, compression, parts, and what it came from. */
function describeStream(e: StreamEntry): string {
  const parts = `${e.parts.length} part${e.parts.length === 1 ? '' : 's'}`
  const stored = e.compression === 'gzip' ? `${formatBytes(e.size)} stored (gzip)` : `${formatBytes(e.size)} stored`
  const from = e.extra && Object.keys(e.extra).length > 0 ? `  [${Object.entries(e.extra).map(([k, v]) => `${k}: ${extraValue(k, v)}`).join(', ')}]` : ''
  return `${e.name}: ${formatBytes(e.rawSize)} raw, ${stored}, ${parts}${from}`
}

/**
 * One `extra` value as inspect shows it: command lines and stderr (which may
 * carry credentials) by their length only, and sealed ones as sealed.
 */
function extraValue(key: string, value: unknown): string {
  if (key === 'sealed') return `(${SEALED_EXTRA_FIELDS.join(', ')} encrypted to the archive's recipients)`
  if (key === 'stderr') return `(${String(value).length} characters of stderr, not shown)`
  if ((SEALED_EXTRA_FIELDS as readonly string[]).includes(key)) return `(a ${String(value).length}-character command, not shown)`
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** A resource as kubectl names it: `secrets`, `deployments.apps`, with its version: `secrets (v1)`. */
function resourceName(e: ObjectEntry): string {
  return `${e.resource}${e.group ? `.${e.group}` : ''} (${e.group ? `${e.group}/` : ''}${e.version})`
}

/** Aligns `label: value` pairs. */
function labelled(pairs: [string, string][], indent = ''): string[] {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 1
  return pairs.map(([label, value]) => `${indent}${`${label}:`.padEnd(width)} ${value}`)
}

/** Groups items by a key, keeping first-seen order of keys and items (manifest order is file order). */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const group = groups.get(k)
    if (group) group.push(item)
    else groups.set(k, [item])
  }
  return groups
}

/** Formats how long a snapshot took, e.g. ` (4 s)`, or nothing when the times do not parse. */
function duration(startedAt: string, finishedAt: string): string {
  const ms = Date.parse(finishedAt) - Date.parse(startedAt)
  if (!Number.isFinite(ms) || ms < 0) return ''
  if (ms < 10_000) return ` (${(ms / 1000).toFixed(1)} s)`
  const s = Math.round(ms / 1000)
  return s < 60 ? ` (${s} s)` : s < 3600 ? ` (${Math.floor(s / 60)} min ${s % 60} s)` : ` (${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min)`
}

/** Finds the entry --show names: a member path, KIND/NAME or RESOURCE/NAME, volume/NAME, dump/NAME. */
function findEntry(manifest: Manifest, which: string): Manifest['entries'][number] {
  const slash = which.indexOf('/')
  const byPath = manifest.entries.find((e) => (isStreamEntry(e) ? e.parts.some((p) => p.path === which) : e.path === which || e.path === `${which}${AGE_SUFFIX}`))
  if (byPath) return byPath
  if (slash > 0) {
    const type = which.slice(0, slash).toLowerCase()
    const name = which.slice(slash + 1)
    const matches = manifest.entries.filter((e) => {
      if (e.name !== name) return false
      if (isStreamEntry(e)) return type === e.type || type === `${e.type}s`
      return [e.kind.toLowerCase(), e.resource, qualifiedName(e), e.resource.replace(/s$/, '')].includes(type) || (e.type === 'crd' && type === 'customresourcedefinition')
    })
    if (matches.length === 1) return matches[0]
    if (matches.length > 1) throw new KubesnapError(`${which} matches ${matches.length} entries; name one by its member path (kubesnap inspect shows them).`, {exit: EXIT.usage})
  }
  throw new KubesnapError(`The archive has no entry ${which}; give KIND/NAME, volume/NAME or a member path as kubesnap inspect lists them.`, {exit: EXIT.usage})
}

interface ShownObject {
  kind?: string
  metadata?: {annotations?: Record<string, string>}
  data?: Record<string, string>
  stringData?: Record<string, string>
}

/** A Secret with every value replaced by its size (kubectl's last-applied copy too): inspect never prints Secret values. */
export function hideSecretValues(object: ShownObject): object {
  if (object.kind !== 'Secret') return object
  const hidden = (bytes: number) => `(hidden: ${bytes} bytes)`
  const hide = (values: Record<string, string> | undefined, decode: boolean) =>
    values && Object.fromEntries(Object.entries(values).map(([k, v]) => [k, hidden(decode ? Buffer.from(v, 'base64').length : Buffer.byteLength(v))]))
  const annotations = object.metadata?.annotations
  const lastApplied = annotations?.[LAST_APPLIED]
  return {
    ...object,
    ...(lastApplied === undefined ? {} : {metadata: {...object.metadata, annotations: {...annotations, [LAST_APPLIED]: hidden(Buffer.byteLength(lastApplied))}}}),
    ...(object.data ? {data: hide(object.data, true)} : {}),
    ...(object.stringData ? {stringData: hide(object.stringData, false)} : {}),
  }
}

/**
 * The members of a volume's tar stream, as `tar tv` would list them, read by
 * the same strict reader restore's scan uses (so inspect never lists what
 * restore would refuse or extract differently).
 */
async function listVolumeFiles(reader: ArchiveReader, entry: StreamEntry): Promise<ShownFile[]> {
  const files: ShownFile[] = []
  try {
    for await (const _chunk of canonicalVolumeTar(reader.readStream(entry), (m) => {
      files.push({path: displayName(m.path), type: m.type, mode: modeString(m.type, m.mode), size: m.size, ...(m.linkpath ? {linkpath: displayName(m.linkpath)} : {})})
    })) {
      // Only the members are wanted: the re-encoded bytes are dropped.
    }
  } catch (err) {
    if (err instanceof RefusedMember || err instanceof TarFormatError) {
      throw new KubesnapError(`Volume ${entry.name} of this archive cannot be listed safely: ${err.message}; restore would refuse it too.`, {cause: err})
    }
    throw err
  }
  return files
}

/** `drwxr-xr-x` from a tar type and mode. */
function modeString(type: string, mode: number): string {
  const kind = type === 'Directory' ? 'd' : type === 'SymbolicLink' ? 'l' : type === 'Link' ? 'h' : '-'
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (mode & (1 << (8 - i)) ? c : '-')).join('')
  return kind + bits
}
