/**
 * The manifest of a kubesnap archive (format version 1): plain data describing
 * every member, written as `kubesnap/manifest.json` near the end of the file.
 * Kept a plain JSON-able object so `inspect --json` can print it as is.
 */
import {ArchiveError} from './errors.js'
import {AGE_SUFFIX, crdMemberPath, objectMemberPath, partMemberPath, partSuffix} from './naming.js'

/** How a stream's bytes are stored: gzip-compressed, or as they came. */
export type StreamCompression = 'gzip' | 'none'

/** The values of StreamCompression, for flags and plans. */
export const STREAM_COMPRESSIONS: readonly StreamCompression[] = ['gzip', 'none']

/** Value of `format` in format.json, the manifest and the trailer. */
export const ARCHIVE_FORMAT = 'kubesnap-archive'
/** The archive format version this code writes and the only one it reads. */
export const FORMAT_VERSION = 1

/** Member path of the first member. */
export const FORMAT_MEMBER = 'kubesnap/format.json'
/** Member path of the manifest. */
export const MANIFEST_MEMBER = 'kubesnap/manifest.json'
/** Member path of the fixed-size trailer. */
export const TRAILER_MEMBER = 'kubesnap/trailer.json'

/** One Kubernetes object (or CRD definition) stored as the server returned it, in one tar member. */
export interface ObjectEntry {
  type: 'object' | 'crd'
  kind: string
  /** API group, '' for the core group (the member path says `core`). */
  group: string
  version: string
  resource: string
  name: string
  /** Tar member path, e.g. `objects/core/v1/secrets/db.json`. */
  path: string
  /** Byte offset of the member's content (after its header blocks) in the archive file. */
  offset: number
  /** Stored bytes. */
  size: number
  /** sha256 (hex) of the stored bytes. */
  sha256: string
}

/** One tar member holding a slice of a stream entry's stored bytes. */
export interface StreamPart {
  path: string
  offset: number
  size: number
  sha256: string
}

/** A stream of unknown length (volume data as a tar stream, an application dump), split into parts. */
export interface StreamEntry {
  type: 'volume' | 'dump'
  /** For volumes the PVC name; for dumps the dump's name from the plan. */
  name: string
  /** The object the stream belongs to, when there is one (volumes: the PVC). */
  kind?: string
  group?: string
  version?: string
  resource?: string
  /** How the input was compressed before storing; concatenated parts are one stream of this kind. */
  compression: StreamCompression
  parts: StreamPart[]
  /** Offset of the first part's content. */
  offset: number
  /** Stored bytes, all parts together. */
  size: number
  /** sha256 of all stored bytes, parts concatenated. */
  sha256: string
  /** Bytes of the input before compression (and encryption). */
  rawSize: number
  /** sha256 of the input before compression: compare with `sha256sum` in the pod. */
  rawSha256: string
  /**
   * Free-form details from the volume or dump layer (mount path, command,
   * strategy…). In an encrypted archive the SEALED_EXTRA_FIELDS are in
   * `sealed` instead, an ASCII-armored age file of their JSON object (sealed.ts).
   */
  extra?: Record<string, unknown>
}

/**
 * The fields of a stream entry's `extra` that may carry credentials: a dump's
 * command and load command lines and what its command wrote on stderr. Never
 * printed as they are (inspect gives a command's length), and sealed in
 * encrypted archives.
 */
export const SEALED_EXTRA_FIELDS = ['command', 'load', 'stderr'] as const

export type ManifestEntry = ObjectEntry | StreamEntry

/** Something the snapshot deliberately did not store, and why. */
export interface SkippedItem {
  kind?: string
  resource: string
  name?: string
  reason: string
  /**
   * Set when the item was meant to be stored and could not be (a type that
   * could not be listed, a claim whose copy failed): the snapshot is partial.
   * Absent for what was left out on purpose (excluded kinds, unbound claims).
   */
  failed?: boolean
}

export interface Manifest {
  format: typeof ARCHIVE_FORMAT
  formatVersion: typeof FORMAT_VERSION
  kubesnapVersion: string
  cluster: {server: string; context: string}
  namespace: string
  number: number
  /** ISO 8601 UTC. */
  startedAt: string
  finishedAt: string
  /** Whether entry contents are encrypted (the manifest itself never is). */
  encrypted: boolean
  /** The public age or ssh recipients the entries are encrypted to (when encrypted). */
  recipients?: string[]
  /**
   * When signed: the signer's public key (`ssh-ed25519 AAAA…`). The signature
   * itself is in the trailer; a manifest that names a signer but has no valid
   * signature has been tampered with.
   */
  signedBy?: string
  entries: ManifestEntry[]
  skipped: SkippedItem[]
  warnings: string[]
}

/** The small first member, `kubesnap/format.json`: identifies the file even when its end is missing. */
export interface FormatDocument {
  format: typeof ARCHIVE_FORMAT
  formatVersion: typeof FORMAT_VERSION
  kubesnapVersion: string
  namespace: string
  number: number
  startedAt: string
}

/** How a snapshot ended: `partial` when something it was meant to store is missing (see snapshotStatus). */
export type SnapshotStatus = 'complete' | 'partial'

/**
 * Says whether a snapshot is complete or partial, from its manifest's skipped
 * list: the one place that decides it for snapshot, list and inspect. Archives
 * written before `failed` existed marked only unlisted types, by their reason.
 */
export function snapshotStatus(manifest: Pick<Manifest, 'skipped'>): SnapshotStatus {
  return manifest.skipped.some(isFailure) ? 'partial' : 'complete'
}

/** Returns whether a skipped item is a failure (meant to be stored, and missing) rather than left out on purpose. */
export function isFailure(item: SkippedItem): boolean {
  return item.failed === true || (item.failed === undefined && item.reason.startsWith(UNLISTED_REASON))
}

/** The start of the reason of a type that could not be listed. */
export const UNLISTED_REASON = 'could not be listed: '

/** Returns whether an entry is a stream (volume or dump) entry. */
export function isStreamEntry(entry: ManifestEntry): entry is StreamEntry {
  return entry.type === 'volume' || entry.type === 'dump'
}

/** Lists the members an entry occupies, in file order. */
export function entryMembers(entry: ManifestEntry): StreamPart[] {
  return isStreamEntry(entry) ? entry.parts : [{path: entry.path, offset: entry.offset, size: entry.size, sha256: entry.sha256}]
}

/** A manifest without its entries: what `kubesnap list` keeps of each archive (see openArchiveSummary). */
export type ManifestHead = Omit<Manifest, 'entries'>

/**
 * Checks that a parsed JSON value is a version-1 manifest and returns it typed.
 * Throws an ArchiveError ('unsupported format version' or 'corrupt manifest') naming the bad field.
 */
export function validateManifest(value: unknown, archivePath: string): Manifest {
  const head = validateManifestHead(value, archivePath)
  const entries = (value as Record<string, unknown>).entries
  if (!Array.isArray(entries)) throw corruptManifest(archivePath, 'entries is not a list')
  const checker = new EntryChecker(archivePath, head.encrypted)
  entries.forEach((e, i) => checker.check(e, i))
  return value as Manifest
}

/**
 * Checks every field of a manifest but its entries (which an EntryChecker
 * checks one at a time) and returns it typed. Throws as validateManifest does.
 */
export function validateManifestHead(value: unknown, archivePath: string): ManifestHead {
  const fail = (what: string): never => {
    throw corruptManifest(archivePath, what)
  }
  if (!isRecord(value)) fail('not a JSON object')
  const m = value as Record<string, unknown>
  if (m.format !== ARCHIVE_FORMAT) fail(`format is ${JSON.stringify(m.format)}, not "${ARCHIVE_FORMAT}"`)
  if (m.formatVersion !== FORMAT_VERSION) {
    throw new ArchiveError(
      'unsupported format version',
      `${archivePath} uses archive format version ${String(m.formatVersion)}, but this kubesnap reads only version ${FORMAT_VERSION}; use a matching kubesnap release.`,
      archivePath,
    )
  }
  for (const key of ['kubesnapVersion', 'namespace', 'startedAt', 'finishedAt'] as const) {
    if (typeof m[key] !== 'string') fail(`${key} is not a string`)
  }
  if (!isCount(m.number)) fail('number is not a non-negative integer')
  if (typeof m.encrypted !== 'boolean') fail('encrypted is not a boolean')
  if (m.recipients !== undefined && !(Array.isArray(m.recipients) && m.recipients.every((r) => typeof r === 'string'))) fail('recipients is not a list of strings')
  if (m.signedBy !== undefined && typeof m.signedBy !== 'string') fail('signedBy is not a string')
  const cluster = m.cluster
  if (!isRecord(cluster) || typeof cluster.server !== 'string' || typeof cluster.context !== 'string') fail('cluster needs server and context strings')
  if (!Array.isArray(m.warnings) || !m.warnings.every((w) => typeof w === 'string')) fail('warnings is not a list of strings')
  if (!Array.isArray(m.skipped)) fail('skipped is not a list')
  ;(m.skipped as unknown[]).forEach((s, i) => {
    if (!isRecord(s) || typeof s.resource !== 'string' || typeof s.reason !== 'string') fail(`skipped[${i}] needs resource and reason`)
    const failed = (s as Record<string, unknown>).failed
    if (failed !== undefined && typeof failed !== 'boolean') fail(`skipped[${i}].failed is not a boolean`)
  })
  return value as unknown as ManifestHead
}

/** The ArchiveError for a manifest that is not what version 1 writes. */
export function corruptManifest(archivePath: string, what: string): ArchiveError {
  return new ArchiveError('corrupt manifest', `The manifest of ${archivePath} is invalid (${what}); the archive cannot be used.`, archivePath, MANIFEST_MEMBER)
}

/**
 * Checks a manifest's entries one at a time, in order, so a caller that only
 * counts them need not keep them all (openArchiveSummary). Each must be
 * well-formed, and filed at the member paths its record gives (kind, group,
 * version, resource, name, type, compression, encryption); nothing may be
 * recorded twice: a member path, an object (at any version), a volume or a
 * dump. Restore and verify find members by path and objects by record, so
 * both must name one thing.
 */
export class EntryChecker {
  readonly #archivePath: string
  readonly #encrypted: boolean
  // Only the paths and names seen so far are kept, not the entries.
  readonly #paths = new Set([FORMAT_MEMBER, MANIFEST_MEMBER, TRAILER_MEMBER])
  readonly #things = new Set<string>()

  constructor(archivePath: string, encrypted: boolean) {
    this.#archivePath = archivePath
    this.#encrypted = encrypted
  }

  /** Checks entries[i] against the entries before it and returns it typed; throws an ArchiveError saying what is wrong. */
  check(value: unknown, i: number): ManifestEntry {
    const problem = entryProblem(value)
    if (problem) throw corruptManifest(this.#archivePath, `entries[${i}] ${problem}`)
    const entry = value as ManifestEntry
    const mismatch = (what: string): never => {
      throw new ArchiveError('identity mismatch', `The manifest of ${this.#archivePath} is refused: entries[${i}] ${what}; the archive was altered, use another one.`, this.#archivePath, MANIFEST_MEMBER)
    }
    const twice = (what: string): never => {
      throw new ArchiveError('duplicate member', `The manifest of ${this.#archivePath} is refused: ${what} is in the manifest twice; the archive was altered, use another one.`, this.#archivePath, MANIFEST_MEMBER)
    }
    if (entry.type === 'volume') {
      const hasOwner = entry.kind !== undefined || entry.group !== undefined || entry.version !== undefined || entry.resource !== undefined
      if (hasOwner && (entry.kind !== 'PersistentVolumeClaim' || entry.group !== '' || entry.resource !== 'persistentvolumeclaims')) {
        mismatch(`(volume ${entry.name}) belongs to ${entry.kind}, not a PersistentVolumeClaim`)
      }
    }
    let expected: string[]
    let thing: string
    try {
      if (isStreamEntry(entry)) {
        expected = entry.parts.map((_, n) => partMemberPath(entry.type, entry.name, n, partSuffix(entry.type, entry.compression, this.#encrypted)))
        thing = `${entry.type} ${entry.name}`
      } else {
        expected = [(entry.type === 'crd' ? crdMemberPath(entry.name) : objectMemberPath(entry)) + (this.#encrypted ? AGE_SUFFIX : '')]
        thing = entry.type === 'crd' ? `crd ${entry.name}` : `${entry.resource}${entry.group ? `.${entry.group}` : ''}/${entry.name}`
      }
    } catch (err) {
      // A name that is not one path segment.
      return mismatch(`cannot be filed (${(err as Error).message.replace(/\.$/, '')})`)
    }
    entryMembers(entry).forEach((member, n) => {
      if (member.path !== expected[n]) mismatch(`(${thing}) is filed at ${member.path}, not ${expected[n]}`)
      if (this.#paths.has(member.path)) twice(member.path)
      this.#paths.add(member.path)
    })
    if (this.#things.has(thing)) twice(thing)
    this.#things.add(thing)
    return entry
  }
}

/** Describes what is wrong with one manifest entry, or returns undefined when it is well-formed. */
function entryProblem(e: unknown): string | undefined {
  if (!isRecord(e)) return 'is not an object'
  if (typeof e.name !== 'string' || e.name === '') return 'has no name'
  if (e.type === 'object' || e.type === 'crd') {
    for (const key of ['kind', 'group', 'version', 'resource', 'path', 'sha256']) {
      if (typeof e[key] !== 'string') return `has no ${key}`
    }
    if (!isCount(e.offset) || !isCount(e.size)) return 'has no offset or size'
    return undefined
  }
  if (e.type === 'volume' || e.type === 'dump') {
    if (e.compression !== 'gzip' && e.compression !== 'none') return 'has an unknown compression'
    if (typeof e.sha256 !== 'string' || typeof e.rawSha256 !== 'string') return 'has no sha256 or rawSha256'
    if (!isCount(e.offset) || !isCount(e.size) || !isCount(e.rawSize)) return 'has no offset, size or rawSize'
    if (!Array.isArray(e.parts) || e.parts.length === 0) return 'has no parts'
    for (const p of e.parts as unknown[]) {
      if (!isRecord(p) || typeof p.path !== 'string' || typeof p.sha256 !== 'string' || !isCount(p.offset) || !isCount(p.size)) return 'has a malformed part'
    }
    if (e.extra !== undefined && !isRecord(e.extra)) return 'has an extra that is not an object'
    if (isRecord(e.extra) && e.extra.sealed !== undefined && typeof e.extra.sealed !== 'string') return 'has a sealed field that is not a string'
    return undefined
  }
  return `has unknown type ${JSON.stringify(e.type)}`
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}
