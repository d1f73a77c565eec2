/**
 * File system errors met writing archives (the output directory, the lock, the
 * copy) in the one-sentence form the README promises: what happened and the
 * fix, never `Error: EROFS: read-only file system, open '…/.kubesnap.lock'`.
 */
import {mkdir, stat} from 'node:fs/promises'
import {dirname, isAbsolute, relative, resolve} from 'node:path'
import {EXIT, KubesnapError} from '../errors.js'

/** The errno codes that are about the disk or the directory, not about kubesnap or the cluster. */
const SENTENCES: Record<string, (dir: string, code: string, outcome: string) => string> = {
  ENOSPC: (dir, code, outcome) => `The file system of ${dir} is full (${code}), so ${outcome}; free space there or give another directory with -o.`,
  EDQUOT: (dir, code, outcome) => `The disk quota of ${dir} is used up (${code}), so ${outcome}; free space there or give another directory with -o.`,
  EROFS: (dir, code, outcome) => `${dir} is on a read-only file system (${code}), so ${outcome}; give a writable directory with -o.`,
  EACCES: (dir, code, outcome) => `This user may not write in ${dir} (${code}), so ${outcome}; fix its permissions or give another directory with -o.`,
  EPERM: (dir, code, outcome) => `This user may not write in ${dir} (${code}), so ${outcome}; fix its permissions or give another directory with -o.`,
  EIO: (dir, code, outcome) => `The disk of ${dir} failed to read or write (${code}), so ${outcome}; check the disk or give another directory with -o.`,
}

/**
 * Finds a disk error about `dir` in an error or anything it wraps (`cause`, and
 * the `origin` KubesnapError keeps), and returns it as a one-sentence
 * KubesnapError (exit 1) saying `outcome` ("no archive was written"); returns
 * undefined when there is none. An error naming a path outside `dir` (a
 * kubeconfig, a plan) is not the directory's and is left alone.
 */
export function diskError(err: unknown, dir: string, outcome: string): KubesnapError | undefined {
  const seen = new Set<unknown>()
  for (let e: unknown = err; e instanceof Error && !seen.has(e); e = (e as {cause?: unknown}).cause ?? (e as {origin?: unknown}).origin) {
    seen.add(e)
    const {code, path} = e as NodeJS.ErrnoException
    const sentence = code ? SENTENCES[code] : undefined
    if (sentence && (path === undefined || isUnder(path, dir))) return new KubesnapError(sentence(dir, code!, outcome), {exit: EXIT.failed, cause: err, code})
  }
  return undefined
}

function isUnder(path: string, dir: string): boolean {
  const rel = relative(dir, path)
  // `dir` itself, or below it; also a parent kubesnap had to create for it (mkdir -p).
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel)) || relative(path, dir).split('/').every((s) => s !== '..')
}

/**
 * Creates a directory and its missing parents with `mode`. Node's recursive
 * mkdir reports ENOENT where the real cause was EROFS or EACCES; then the first
 * missing directory is made on its own, which fails with the real code.
 */
export async function makeDirectory(dir: string, mode: number): Promise<void> {
  try {
    await mkdir(dir, {recursive: true, mode})
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    let missing = resolve(dir)
    while (dirname(missing) !== missing && !(await stat(dirname(missing)).then(() => true, () => false))) missing = dirname(missing)
    await mkdir(missing, {mode})
    throw err
  }
}
