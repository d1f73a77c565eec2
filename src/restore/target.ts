/**
 * Which namespace a restore writes into. Only the user names it: with
 * --to-namespace, or -n (which must then be the namespace the archive's
 * manifest holds). An archive's file name is not a namespace the user named:
 * when it disagrees with the manifest, restore asks instead of guessing.
 */
import {basename} from 'node:path'
import {checkNamespace, parseArchiveName} from '../archive/naming.js'
import {EXIT, KubesnapError} from '../errors.js'

/**
 * Returns the namespace to restore into; throws a usage error (exit 2) when -n
 * names another namespace than the archive's, or when no namespace was given
 * and the file's name says another one than its manifest.
 */
export function restoreTarget(options: {archived: string; path: string; namespace?: string; toNamespace?: string}): string {
  const {archived, path, namespace, toNamespace} = options
  if (toNamespace) {
    checkNamespace(toNamespace, '--to-namespace')
    return toNamespace
  }
  if (namespace !== undefined) {
    if (namespace !== archived) {
      throw new KubesnapError(`The archive ${path} holds namespace ${archived}, not ${namespace}; to restore it into ${namespace}, pass --to-namespace ${namespace}.`, {exit: EXIT.usage})
    }
    return namespace
  }
  const named = parseArchiveName(basename(path))?.namespace
  if (named !== undefined && named !== archived) {
    throw new KubesnapError(`The archive ${path} is named for namespace ${named}, but it holds namespace ${archived}; say where to restore it: -n ${archived} or --to-namespace NAMESPACE.`, {exit: EXIT.usage})
  }
  return archived
}
