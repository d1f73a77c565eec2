/**
 * What every checker of a kubesnap YAML file (the plan, plan.ts; resource
 * modifiers, restore/modifiers.ts) does the same way: parse with positions,
 * record each problem as `FILE:LINE:COLUMN: what is wrong; what to do`, say
 * "must be a list" and "is not a setting" in one wording, describe a value
 * in words, and throw every problem at once. Each file's own rules stay with
 * the file.
 */
import {isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node} from 'yaml'
import {EXIT, KubesnapError} from '../errors.js'

/** A YAML file that cannot be used: every problem, each with its place in the file. Exit 2. */
export class PlanError extends KubesnapError {
  readonly problems: string[]

  constructor(file: string, problems: string[]) {
    const head = problems.length === 1 ? problems[0] : `${file} has ${problems.length} problems; fix them and run again:${problems.map((p) => `\n  ${p}`).join('')}`
    super(head, {exit: EXIT.usage})
    this.problems = problems
  }
}

/** Mapping keys and list indexes from the document's root to a value. */
export type YamlPath = (string | number)[]

/** Parses a YAML file's text with positions (a key twice is an error); throws PlanError naming every syntax error with its place. */
export function parseYamlFile(text: string, file: string): {doc: Document; lines: LineCounter} {
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    const checker = new YamlChecker(file, doc, lines)
    throw new PlanError(file, doc.errors.map((e) => `${checker.place(e.pos[0])}: the file is not valid YAML (${syntaxMessage(e.message)}); fix its syntax.`))
  }
  return {doc, lines}
}

/** Records the problems of one parsed file with their places; a file's checker extends it with its own rules. */
export class YamlChecker {
  readonly problems: string[] = []

  constructor(
    readonly file: string,
    readonly doc: Document,
    readonly lines: LineCounter,
  ) {}

  /** `FILE:LINE:COLUMN` of an offset in the text; the file alone when there is none. */
  place(offset: number | undefined): string {
    if (offset === undefined) return this.file
    const {line, col} = this.lines.linePos(offset)
    return `${this.file}:${line}:${col}`
  }

  /**
   * Records a problem at a node, or at the value a path leads to (a key that
   * is missing: its mapping, the nearest that exists). Returns undefined, so a
   * check can `return this.problem(…)`.
   */
  problem(at: Node | YamlPath | null | undefined, message: string): undefined {
    const node = Array.isArray(at) ? this.nodeAt(at) : at
    this.problems.push(`${this.place(node?.range?.[0])}: ${message}`)
    return undefined
  }

  /** The node a path leads to, or the nearest one on the way that exists. */
  nodeAt(path: YamlPath): Node | undefined {
    for (let n = path.length; n > 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true)
      if (isNode(node)) return node
    }
    return isNode(this.doc.contents) ? this.doc.contents : undefined
  }

  /** The key node of the last step of a path (where an unknown key is named), else nodeAt(path). */
  keyAt(path: YamlPath): Node | undefined {
    const parent = path.length > 1 ? this.doc.getIn(path.slice(0, -1), true) : this.doc.contents
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === path[path.length - 1])
      if (pair && isNode(pair.key)) return pair.key
    }
    return this.nodeAt(path)
  }

  /**
   * The elements of a list (a YAML sequence node or a plain array), each
   * passed to `item`, keeping what it returns; a value that is no list is a
   * problem at `at`, named `name`.
   */
  items<T>(value: unknown, at: Node | YamlPath, name: string, item: (child: unknown, index: number) => T | undefined): T[] {
    const children: unknown[] | undefined = isSeq(value) ? value.items : Array.isArray(value) ? value : undefined
    if (!children) {
      this.problem(at, `${name} must be a list (lines starting with "- "), not ${describe(value)}.`)
      return []
    }
    const out: T[] = []
    children.forEach((child, i) => {
      const kept = item(child, i)
      if (kept !== undefined) out.push(kept)
    })
    return out
  }

  /**
   * Records a key the file's format does not have: `parent.key is not a
   * WHAT`, with the known key it is most likely a typo of, else the list of
   * the known keys (`the WHATs here are …`).
   */
  unknownKey(at: Node | YamlPath | null | undefined, parent: string, key: string | undefined, known: string[], what: {one: string; many: string}): undefined {
    const name = key === undefined ? 'this key' : parent ? `${parent}.${key}` : key
    const hint = key === undefined ? undefined : closest(key, known)
    return this.problem(at, `${name} is not a ${what.one}${hint ? `; did you mean ${parent ? `${parent}.` : ''}${hint}?` : `; the ${what.many} here are ${known.join(', ')}.`}`)
  }

  /** Throws every problem recorded as one PlanError; does nothing when there is none. */
  finish(): void {
    if (this.problems.length > 0) throw new PlanError(this.file, this.problems)
  }
}

/** What a value (plain, or a YAML node) is, for "must be X, not Y". */
export function describe(value: unknown): string {
  if (isNode(value)) {
    if (isMap(value)) return 'a mapping'
    if (isSeq(value)) return 'a list'
    if (isScalar(value)) return describe(value.value)
    return 'this'
  }
  if (value === undefined || value === null) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return `"${value}"`
  return String(value)
}

/** The known key within edit distance 2 of a mistyped one (case aside), if any. */
export function closest(key: string, known: string[]): string | undefined {
  let best: {name: string; distance: number} | undefined
  for (const name of known) {
    const d = editDistance(key.toLowerCase(), name.toLowerCase())
    if (d <= 2 && (!best || d < best.distance)) best = {name, distance: d}
  }
  return best?.name
}

function editDistance(a: string, b: string): number {
  let row = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}

/** yaml's message for a syntax error, without the place it repeats (the sentence starts with it). */
function syntaxMessage(message: string): string {
  return message.split('\n')[0].replace(/\s+at line \d+, column \d+:?$/, '').replace(/\.$/, '')
}
