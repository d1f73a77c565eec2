/**
 * The report line kubesnap's pod scripts (TAR_OUT_SCRIPT, TAR_IN_SCRIPT) write
 * on stderr once tar has finished, and its one parser:
 *
 *   TAG: tar-exit=N [KEY=VALUE …] sha256=<hex>     (or `unhashed`)
 *
 * tar's exit status first, the sha256 of the stream the pod saw last (or
 * `unhashed` when the container lacks the tools), and between them the
 * script's own fields, each `KEY=VALUE` with no space in VALUE (which may be
 * empty: `uid=` when the container has no `id`).
 */

/** What a pod script reported. */
export interface PodReport {
  tarExit: number
  /** The stream's sha256 as the pod computed it; undefined when it could not. */
  sha256?: string
  /** The script's own fields, by key, as written. */
  fields: Record<string, string>
}

/**
 * Reads the last `TAG: ` line of a script's stderr. Undefined when there is
 * none, or when it is not a report: a field that is not among `fields`, a
 * field twice, or a value its pattern does not match (a report that cannot be
 * read whole is not trusted in part).
 */
export function parsePodReport(stderr: string, tag: string, fields: Record<string, RegExp> = {}): PodReport | undefined {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith(`${tag}: `))
  if (!line) return undefined
  const words = line.slice(tag.length + 2).split(' ')
  const exit = /^tar-exit=(\d+)$/.exec(words[0])
  const last = words.length > 1 ? words[words.length - 1] : ''
  const hash = /^sha256=([0-9a-f]{64})$/.exec(last)
  if (!exit || (!hash && last !== 'unhashed')) return undefined
  const found: Record<string, string> = {}
  for (const word of words.slice(1, -1)) {
    const eq = word.indexOf('=')
    const key = eq > 0 ? word.slice(0, eq) : ''
    const pattern = Object.hasOwn(fields, key) ? fields[key] : undefined
    if (!pattern || Object.hasOwn(found, key) || !pattern.test(word.slice(eq + 1))) return undefined
    found[key] = word.slice(eq + 1)
  }
  return {tarExit: Number(exit[1]), ...(hash ? {sha256: hash[1]} : {}), fields: found}
}
