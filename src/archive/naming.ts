/**
 * Names: archive file names (`sf-000042-20261121T163000Z.kubesnap.tar`), their
 * temporary `.partial` twins, snapshot numbering, and the member paths of entries.
 */
import {readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {EXIT, KubesnapError} from '../errors.js'
import {DNS_LABEL} from '../names.js'
import {isS3Url} from './s3-url.js'

/** Suffix of every final archive file. */
export const ARCHIVE_SUFFIX = '.kubesnap.tar'
/** Suffix of an archive still being written (the name also gets a leading dot). */
export const PARTIAL_SUFFIX = '.partial'
/** Suffix of encrypted members. */
export const AGE_SUFFIX = '.age'
/** Digits of the snapshot number in a file name; larger numbers just get longer. */
const NUMBER_DIGITS = 6

/** The parts of an archive file name. */
export interface ArchiveName {
  namespace: string
  number: number
  /** Start of the snapshot, to the second. */
  time: Date
}

/** A final archive found in a directory. */
export interface ArchiveFile extends ArchiveName {
  file: string
  path: string
}

// Greedy namespace then anchored number and time: namespaces may contain '-' and digits.
const ARCHIVE_NAME = /^([a-z0-9][-a-z0-9]*)-(\d{6,})-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.kubesnap\.tar$/

/** Formats a time as `yyyymmddThhmmssZ` in UTC. */
export function formatTimestamp(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

/**
 * Throws a usage error (exit 2) unless a namespace name is a DNS label, as
 * Kubernetes requires (and file names rely on); `flag` names where it was given.
 */
export function checkNamespace(namespace: string, flag = 'The namespace'): void {
  if (!DNS_LABEL.test(namespace)) {
    throw new KubesnapError(`${flag} ${JSON.stringify(namespace)} is not a valid Kubernetes namespace name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit.`, {exit: EXIT.usage})
  }
}

/** Formats the file name of a final archive. Throws on a namespace that is not a DNS label. */
export function formatArchiveName({namespace, number, time}: ArchiveName): string {
  checkNamespace(namespace)
  if (!Number.isSafeInteger(number) || number < 1) throw new Error(`Snapshot number ${number} is not a positive integer.`)
  return `${namespace}-${String(number).padStart(NUMBER_DIGITS, '0')}-${formatTimestamp(time)}${ARCHIVE_SUFFIX}`
}

/** Parses a final archive file name; returns undefined for any other name. */
export function parseArchiveName(file: string): ArchiveName | undefined {
  const m = ARCHIVE_NAME.exec(file)
  if (!m) return undefined
  const [, namespace, digits, y, mo, d, h, mi, s] = m
  const time = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s))
  // Reject impossible dates (20261399T…) instead of letting Date roll them over.
  if (formatTimestamp(time) !== `${y}${mo}${d}T${h}${mi}${s}Z`) return undefined
  if (!DNS_LABEL.test(namespace)) return undefined
  const number = Number(digits)
  if (!Number.isSafeInteger(number) || number < 1) return undefined
  return {namespace, number, time}
}

/**
 * Says how an archive's file name disagrees with its manifest (namespace or
 * number), or returns undefined. The manifest is the truth: a file renamed or
 * copied in by hand must not be picked, listed or pruned as what its name says.
 */
export function nameMismatch(name: Pick<ArchiveName, 'namespace' | 'number'>, manifest: {namespace: string; number: number}): string | undefined {
  if (name.namespace === manifest.namespace && name.number === manifest.number) return undefined
  return `is named as snapshot ${name.number} of ${name.namespace}, but its manifest says snapshot ${manifest.number} of ${manifest.namespace}`
}

/** Returns the name an archive with this manifest gets, or undefined when the manifest's fields cannot make one. */
export function trueArchiveName(manifest: {namespace: string; number: number; startedAt: string}): string | undefined {
  try {
    return formatArchiveName({namespace: manifest.namespace, number: manifest.number, time: new Date(manifest.startedAt)})
  } catch {
    return undefined
  }
}

/** Returns the temporary name an archive has while it is written. */
export function partialName(finalName: string): string {
  return `.${finalName}${PARTIAL_SUFFIX}`
}

/** Parses a temporary archive name; returns undefined for any other name. */
export function parsePartialName(file: string): ArchiveName | undefined {
  if (!file.startsWith('.') || !file.endsWith(PARTIAL_SUFFIX)) return undefined
  return parseArchiveName(file.slice(1, -PARTIAL_SUFFIX.length))
}

/** Lists the final archives in a directory (optionally of one namespace), by namespace then number. A missing directory has none. */
export async function listArchiveFiles(dir: string, namespace?: string): Promise<ArchiveFile[]> {
  // An s3:// prefix is listed with ListObjectsV2 (s3.ts, loaded only then).
  if (isS3Url(dir)) return (await import('./s3.js')).listS3Archives(dir, namespace)
  let files: string[]
  try {
    files = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const found: ArchiveFile[] = []
  for (const file of files) {
    const name = parseArchiveName(file)
    if (name && (namespace === undefined || name.namespace === namespace)) found.push({...name, file, path: join(dir, file)})
  }
  return found.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.number - b.number))
}

/** Returns the number the next snapshot of a namespace gets: the highest present plus one (1 when there is none). */
export function nextNumber(archives: readonly ArchiveName[], namespace: string): number {
  let highest = 0
  for (const a of archives) if (a.namespace === namespace && a.number > highest) highest = a.number
  return highest + 1
}

/** The identity of a Kubernetes object as the archive files it. */
export interface ObjectRef {
  group: string
  version: string
  resource: string
  name: string
}

/** Returns the member path of an object: `objects/<group or core>/<version>/<resource>/<name>.json`. */
export function objectMemberPath({group, version, resource, name}: ObjectRef): string {
  return `objects/${segment(group === '' ? 'core' : group, 'group')}/${segment(version, 'version')}/${segment(resource, 'resource')}/${segment(name, 'name')}.json`
}

/** Returns the member path of a CRD definition: `crds/<name>.json`. */
export function crdMemberPath(name: string): string {
  return `crds/${segment(name, 'CRD name')}.json`
}

/** Returns the suffix of a stream's parts: `.tar.gz`, `.dump`, … and `.age` when encrypted. */
export function partSuffix(type: 'volume' | 'dump', compression: 'gzip' | 'none', encrypted: boolean): string {
  return (type === 'volume' ? '.tar' : '.dump') + (compression === 'gzip' ? '.gz' : '') + (encrypted ? AGE_SUFFIX : '')
}

/** Returns the member path of one part of a stream: `volumes/<pvc>/part-000000.tar.gz`, `dumps/<name>/part-000003.dump`. */
export function partMemberPath(type: 'volume' | 'dump', name: string, index: number, suffix: string): string {
  if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_PARTS) {
    throw new RangeError(`A stream cannot have more than ${MAX_PARTS} parts; use a larger part size.`)
  }
  // Fixed-width numbers keep `cat part-*` (shell glob order) equal to stream order.
  return `${type === 'volume' ? 'volumes' : 'dumps'}/${segment(name, `${type} name`)}/part-${String(index).padStart(6, '0')}${suffix}`
}

/** Most parts a stream may have: six digits keep the shell glob in order. */
export const MAX_PARTS = 1_000_000

/** Checks that a value is one safe path segment (what tar extracts is under the member's directory only). */
function segment(value: string, what: string): string {
  if (value === '' || value === '.' || value === '..' || /[/\\\0]/.test(value)) {
    throw new Error(`Cannot file ${what} ${JSON.stringify(value)} in an archive: it is not a single path segment.`)
  }
  return value
}
