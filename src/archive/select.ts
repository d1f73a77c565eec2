/**
 * Which archive a command means: a path given on the command line, or
 * `--number N` / `--latest` of a namespace in a directory. Shared by inspect,
 * verify and restore, so the three pick and refuse the same way.
 */
import {stat} from 'node:fs/promises'
import {EXIT, KubesnapError} from '../errors.js'
import {ArchiveError} from './errors.js'
import {renamedArchiveMessage} from './list.js'
import {listArchiveFiles, nameMismatch, type ArchiveFile} from './naming.js'
import {openArchive, type ArchiveReader, type OpenOptions} from './reader.js'
import {archiveSize, isS3Url, s3} from './store.js'

/** What the command line says about the archive to use: the ARCHIVE argument and the selection flags. */
export interface ArchiveSelection {
  number?: number
  latest?: boolean
  /** The directory searched for --number and --latest. */
  output: string
  /** The namespace for --number and --latest; needed when the directory holds several. */
  namespace?: string
}

/**
 * Returns the path of the archive a selection names. Throws a KubesnapError:
 * exit 2 when the selection is ambiguous or incomplete (no archive named, a path
 * with --number/--latest, several namespaces and no -n), exit 1 when what it names
 * does not exist.
 */
export async function selectArchive(path: string | undefined, selection: ArchiveSelection): Promise<string> {
  const {number, latest, output: dir, namespace} = selection
  const byNumber = number !== undefined
  if (path !== undefined && (byNumber || latest)) {
    throw new KubesnapError(`Give either an archive path or ${byNumber ? '--number' : '--latest'}, not both.`, {exit: EXIT.usage})
  }
  if (byNumber && latest) throw new KubesnapError('Give either --number or --latest, not both.', {exit: EXIT.usage})
  if (path !== undefined) return checkFile(path)
  if (!byNumber && !latest) {
    throw new KubesnapError('Say which archive: give its path, or --latest or --number N (with -o DIR and -n NAMESPACE).', {exit: EXIT.usage})
  }

  await checkArchiveDir(dir)
  const archives = await listArchiveFiles(dir, namespace)
  if (archives.length === 0) {
    throw new KubesnapError(
      namespace === undefined
        ? `There are no kubesnap archives in ${dir}; give the directory that holds them with -o DIR.`
        : `There are no kubesnap archives of namespace ${namespace} in ${dir}; run kubesnap list ${dir} to see what is there.`,
    )
  }
  const namespaces = [...new Set(archives.map((a) => a.namespace))]
  if (namespaces.length > 1) {
    throw new KubesnapError(`${dir} holds archives of several namespaces (${namespaces.join(', ')}); say which with -n NAMESPACE.`, {exit: EXIT.usage})
  }
  // listArchiveFiles sorts by number within a namespace.
  const chosen: ArchiveFile | undefined = byNumber ? archives.find((a) => a.number === number) : archives.at(-1)
  if (!chosen) {
    throw new KubesnapError(`There is no snapshot ${number} of namespace ${namespaces[0]} in ${dir} (it has ${describeNumbers(archives)}); run kubesnap list ${dir} to see them.`)
  }
  await checkChosenName(chosen)
  return chosen.path
}

/**
 * Throws unless the manifest of an archive picked by its name says the same
 * namespace and number: the manifest is the truth. An archive that cannot be
 * opened is left to the command, which reports the damage.
 */
async function checkChosenName(chosen: ArchiveFile): Promise<void> {
  let manifest
  try {
    manifest = (await openArchive(chosen.path)).manifest
  } catch {
    return
  }
  const mismatch = nameMismatch(chosen, manifest)
  if (mismatch) throw new KubesnapError(renamedArchiveMessage(chosen.path, mismatch, manifest), {code: 'name mismatch'})
}

/** Checks that a path given as ARCHIVE is a file. */
async function checkFile(path: string): Promise<string> {
  if (isS3Url(path)) {
    if ((await archiveSize(path)) === undefined) throw new KubesnapError(`${path} does not exist; give the s3:// URL of a .kubesnap.tar object (kubesnap list s3://BUCKET/PREFIX shows them).`)
    return path
  }
  const stats = await statOrUndefined(path)
  if (!stats) throw new KubesnapError(`${path} does not exist; give the path of a .kubesnap.tar file.`)
  if (stats.isDirectory()) {
    throw new KubesnapError(`${path} is a directory; give an archive file in it, or --latest -o ${path} to use its newest.`, {exit: EXIT.usage})
  }
  return path
}

/** Throws a KubesnapError unless a directory of archives exists (a typo must not read as "no archives"). */
export async function checkArchiveDir(dir: string): Promise<void> {
  // A bucket that does not exist or refuses the credentials is one sentence here, before any other work.
  if (isS3Url(dir)) return (await s3()).checkBucket(dir)
  const stats = await statOrUndefined(dir)
  if (!stats) throw new KubesnapError(`Directory ${dir} does not exist; give the directory that holds the archives.`)
  if (!stats.isDirectory()) throw new KubesnapError(`${dir} is not a directory; give the directory that holds the archives.`, {exit: EXIT.usage})
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new KubesnapError(`Cannot read ${path} (${(err as Error).message}); check its permissions.`, {cause: err})
  }
}

/** Says which numbers exist, shortly: "1, 2 and 5" or "1 to 40". */
function describeNumbers(archives: readonly ArchiveFile[]): string {
  const numbers = archives.map((a) => a.number)
  if (numbers.length === 1) return `only ${numbers[0]}`
  if (numbers.length <= 5) return `${numbers.slice(0, -1).join(', ')} and ${numbers.at(-1)}`
  return `${numbers.length} snapshots, ${numbers[0]} to ${numbers.at(-1)}`
}

/** openArchive for a command: a damaged archive or an unreadable file is a one-sentence error. */
export async function openSelected(path: string, options: OpenOptions = {}): Promise<ArchiveReader> {
  try {
    return await openArchive(path, options)
  } catch (err) {
    if (err instanceof ArchiveError) throw new KubesnapError(err.message, {cause: err, code: err.problem})
    throw new KubesnapError(`Cannot read ${path} (${(err as Error).message}); check that it is a readable file.`, {cause: err})
  }
}
