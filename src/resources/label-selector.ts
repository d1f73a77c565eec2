/**
 * Kubernetes label selectors (`app=db,tier!=cache,env in (a,b),!legacy`),
 * evaluated locally: restore filters archived objects with the same `-l` a
 * snapshot sends to the server. The grammar is apimachinery's
 * (`pkg/labels/selector.go`): a lexer of identifiers and operator symbols, then
 * a parser that accepts exactly what the API server accepts, so a selector
 * means the same on both sides.
 */
import {EXIT, KubesnapError} from '../errors.js'
import {OBJECT_NAME} from '../names.js'

type Requirement =
  | {op: 'in' | 'notin'; key: string; values: string[]}
  | {op: 'gt' | 'lt'; key: string; value: bigint}
  | {op: 'exists' | 'absent'; key: string}

export type LabelSelector = Requirement[]

/** A lexer token: its kind and the text it was read from. */
type SelectorToken =
  | 'identifier' | 'in' | 'notin' | ',' | '=' | '==' | '!=' | '!' | '(' | ')' | '>' | '<' | 'end'
interface Scanned {
  token: SelectorToken
  text: string
}

/** Symbols that end an identifier; `!=` and `==` are read as one token (the longest that is one). */
const SPECIAL = new Set(['=', '!', '(', ')', ',', '>', '<'])
const SYMBOLS = new Set<SelectorToken>(['=', '==', '!=', '!', '(', ')', ',', '>', '<'])
const WHITESPACE = new Set([' ', '\t', '\r', '\n'])
/** A label name, and a label value when not empty (apimachinery's qualifiedNameFmt, 63 at most). */
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/

/** Splits a selector into tokens as apimachinery's Lexer does; a run of symbols that is no operator is an error. */
export function lexSelector(text: string): Scanned[] {
  const out: Scanned[] = []
  let i = 0
  while (true) {
    while (i < text.length && WHITESPACE.has(text[i])) i++
    if (i >= text.length) {
      out.push({token: 'end', text: ''})
      return out
    }
    const start = i
    if (SPECIAL.has(text[i])) {
      // The longest run of symbols that is a token: `!=` is one token, `=(` two.
      let token: SelectorToken | undefined
      let end = i
      while (end < text.length && SPECIAL.has(text[end])) {
        const candidate = text.slice(i, end + 1) as SelectorToken
        if (SYMBOLS.has(candidate)) token = candidate
        else if (token) break
        end++
      }
      if (!token) throw syntaxError(text, `"${text.slice(i, end)}" is not an operator`)
      out.push({token, text: token})
      i += token.length
      continue
    }
    while (i < text.length && !SPECIAL.has(text[i]) && !WHITESPACE.has(text[i])) i++
    const word = text.slice(start, i)
    out.push({token: word === 'in' || word === 'notin' ? word : 'identifier', text: word})
  }
}

/** Parses a selector with apimachinery's grammar and validation; a malformed one is a usage error. */
export function parseLabelSelector(text: string): LabelSelector {
  return new SelectorParser(text).selector()
}

/** A recursive-descent parser over lexSelector's tokens: one method per rule of apimachinery's grammar. */
class SelectorParser {
  readonly #text: string
  readonly #items: Scanned[]
  #position = 0

  constructor(text: string) {
    this.#text = text
    this.#items = lexSelector(text)
  }

  /** requirement ("," requirement)* */
  selector(): LabelSelector {
    const requirements: Requirement[] = []
    while (this.peek() !== 'end') {
      if (this.peek() !== 'identifier' && this.peek() !== '!') this.fail(`found ${found(this.#items[this.#position])} where a label name or "!" belongs`)
      requirements.push(this.requirement())
      const after = this.next()
      if (after.token === 'end') break
      if (after.token !== ',') this.fail(`found ${found(after)} where "," or the end belongs`)
      if (this.peek() !== 'identifier' && this.peek() !== '!') this.fail(`found ${found(this.#items[this.#position])} where a label name belongs after ","`)
    }
    return requirements
  }

  private requirement(): Requirement {
    let s = this.next()
    const absent = s.token === '!'
    if (absent) s = this.next()
    if (asValue(s) !== 'identifier') this.fail(`found ${found(s)} where a label name belongs`)
    const key = this.checkKey(s.text)
    if (this.peek() === 'end' || this.peek() === ',') return {op: absent ? 'absent' : 'exists', key}
    if (absent) this.fail(`"!${key}" takes no operator or value`)
    const op = this.next()
    switch (op.token) {
      case 'in':
      case 'notin':
        return {op: op.token, key, values: this.valueList(key)}
      case '=':
      case '==':
      case '!=':
        return {op: op.token === '!=' ? 'notin' : 'in', key, values: [this.checkValue(key, this.exactValue())]}
      case '>':
      case '<': {
        const value = integer(this.checkValue(key, this.exactValue()))
        if (value === undefined) this.fail(`"${key} ${op.token}" needs a whole number, e.g. ${key}${op.token}1`)
        return {op: op.token === '>' ? 'gt' : 'lt', key, value: value!}
      }
      default:
        return this.fail(`found ${found(op)} where one of in, notin, =, ==, !=, >, < belongs`)
    }
  }

  /** `( a, b )`: empty members are the empty value, as in apimachinery (`(,a)` holds "" and "a"). */
  private valueList(key: string): string[] {
    if (this.next().token !== '(') this.fail(`"${key} ${this.#items[this.#position - 2].text}" needs its values in parentheses, e.g. ${key} in (a,b)`)
    const values = new Set<string>()
    if (this.peek() === ')') {
      this.next()
      return [this.checkValue(key, '')]
    }
    let expectValue = true
    while (true) {
      const s = this.next()
      const token = asValue(s)
      if (token === 'identifier' && expectValue) {
        values.add(this.checkValue(key, s.text))
        expectValue = false
      } else if (token === ',') {
        if (expectValue) values.add('')
        expectValue = true
      } else if (token === ')') {
        if (expectValue) values.add('')
        return [...values]
      } else {
        this.fail(`found ${found(s)} in the values of ${key}, where "," or ")" belongs (values are separated by commas)`)
      }
    }
  }

  /** The value after `=`, `==`, `!=`, `>` or `<`: empty when a comma or the end follows. */
  private exactValue(): string {
    if (this.peek() === 'end' || this.peek() === ',') return ''
    const s = this.next()
    if (asValue(s) !== 'identifier') this.fail(`found ${found(s)} where a value belongs`)
    return s.text
  }

  private checkKey(key: string): string {
    const slash = key.indexOf('/')
    const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)]
    if ((prefix !== undefined && !OBJECT_NAME.test(prefix)) || !NAME.test(name)) {
      this.fail(`"${key}" is not a label name (an optional DNS-subdomain prefix and "/", then at most 63 letters, digits, "-", "_" or ".", beginning and ending with a letter or digit)`)
    }
    return key
  }

  private checkValue(key: string, value: string): string {
    if (value !== '' && !NAME.test(value)) this.fail(`"${value}" is not a label value of ${key} (at most 63 letters, digits, "-", "_" or ".", beginning and ending with a letter or digit)`)
    return value
  }

  private peek(): SelectorToken {
    return asValue(this.#items[this.#position])
  }

  private next(): Scanned {
    return this.#items[this.#position++]
  }

  private fail(reason: string): never {
    throw syntaxError(this.#text, reason)
  }
}

/** Where a value or key is expected, `in` and `notin` are plain words (`notin=in` is a valid selector). */
function asValue(s: Scanned): SelectorToken {
  return s.token === 'in' || s.token === 'notin' ? 'identifier' : s.token
}

/** A token as a message names it. */
function found(s: Scanned): string {
  return s.token === 'end' ? 'the end' : `"${s.text}"`
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
      case 'gt':
      case 'lt': {
        // A label that is not an integer never matches, as in apimachinery.
        const value = has ? integer(labels[r.key]) : undefined
        if (value === undefined) return false
        return r.op === 'gt' ? value > r.value : value < r.value
      }
    }
  })
}

/** A label value read as Go's strconv.ParseInt(v, 10, 64) reads it (a valid label value has no sign), or undefined. */
function integer(text: string): bigint | undefined {
  if (!/^\d+$/.test(text)) return undefined
  const value = BigInt(text)
  return value <= 2n ** 63n - 1n ? value : undefined
}

function syntaxError(text: string, reason: string): KubesnapError {
  return new KubesnapError(`The label selector "${text}" cannot be parsed: ${reason}; use kubectl's syntax, e.g. app=db,tier!=cache,env in (a,b).`, {exit: EXIT.usage})
}
