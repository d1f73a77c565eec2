/**
 * Copies between places: one archive from a directory or an s3:// location
 * into another, checked against its manifest as it goes. The `copy` command
 * and a plan's second place (`copyTo`) both go through copyArchive.
 */
import {basename} from 'node:path'
import {EXIT, KubesnapError, messageOf} from '../errors.js'
import {parseArchiveName} from './naming.js'
import {openSelected} from './select.js'
import {verifyArchive} from './verify.js'
import {createCopyOutput} from './writer.js'

/** What a copy did (`copy --json` prints it). */
export interface CopyResult {
  from: string
  to: string
  namespace: string
  number: number
  bytes: number
}

/**
 * Copies the archive `source` into the directory or s3:// location
 * `destination` under the same name, reading it once and checking every byte
 * as verify does. Nothing appears under the final name unless the copy is
 * complete and intact: a `.partial` file renamed last, or a multipart upload
 * completed last. Throws a KubesnapError (exit 1) for a damaged source, a
 * destination that already holds the snapshot's number, or a failed write.
 */
export async function copyArchive(source: string, destination: string): Promise<CopyResult> {
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
  return {from: source, to: out.path, namespace, number, bytes: result.bytes}
}

/**
 * Copies a snapshot just written to the plan's second place (`copyTo`). The
 * snapshot stays where it was written whatever happens here; a failed copy is
 * one sentence saying so and how to copy it again, with exit code 6.
 */
export async function copyToSecondPlace(path: string, destination: string): Promise<CopyResult> {
  try {
    return await copyArchive(path, destination)
  } catch (err) {
    const why = messageOf(err).replace(/\.$/, '')
    throw new KubesnapError(`The snapshot was written to ${path}, but copying it to ${destination} failed (${why}); run kubesnap copy ${path} ${destination} once the cause is fixed.`, {exit: EXIT.copyFailed, cause: err})
  }
}
