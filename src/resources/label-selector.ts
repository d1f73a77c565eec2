/**
 * Kubernetes label selectors (`app=db,tier!=cache,env in (a,b),!legacy`),
 * evaluated locally: restore filters archived objects with the same `-l` a
 * snapshot sends to the server.
 */
import {EXIT, KubesnapError} from '../errors.js'

type Requirement =
  | {op: 'in' | 'notin'; key: string; values: string[]}
  | {op: 'exists' | 'absent'; key: string}

export type LabelSelector = Requirement[]

/** Parses a selector; a malformed one is a usage error. */
export function parseLabelSelector(text: string): LabelSelector {
  const requirements: Requirement[] = []
  for (const part of splitTopLevel(text)) {
    const term = part.trim()
    if (term === '') continue
    let m: RegExpMatchArray | null
    if ((m = term.match(/^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      requirements.push({op: m[2] as 'in' | 'notin', key: m[1], values: m[3].split(',').map((v) => v.trim())})
    } else if ((m = term.match(/^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/))) {
      requirements.push({op: m[2] === '!=' ? 'notin' : 'in', key: m[1], values: [m[3]]})
    } else if ((m = term.match(/^!\s*([^\s!=(),]+)$/))) {
      requirements.push({op: 'absent', key: m[1]})
    } else if ((m = term.match(/^([^\s!=(),]+)$/))) {
      requirements.push({op: 'exists', key: m[1]})
    } else {
      throw new KubesnapError(`The label selector "${text}" cannot be parsed at "${term}"; use kubectl's syntax, e.g. app=db,tier!=cache.`, {exit: EXIT.usage})
    }
  }
  return requirements
}

/** Whether labels satisfy every requirement (an empty selector matches everything). */
export function matchesLabels(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key)
    switch (r.op) {
      case 'exists': return has
      case 'absent': return !has
      case 'in': return has && r.values.includes(labels[r.key])
      case 'notin': return !has || !r.values.includes(labels[r.key])
    }
  })
}

/** Splits on commas that are not inside `( )`. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else current += ch
  }
  parts.push(current)
  return parts
}
