/**
 * Velero's resource modifiers (`restore --resource-modifiers FILE`): rules that
 * change archived objects on their way back, in Velero's documented format, so
 * a file written for `velero restore create --resource-modifier-configmap`
 * works here as it is.
 *
 * ```yaml
 * version: v1
 * resourceModifierRules:
 * - conditions:
 *     groupResource: deployments.apps     # glob, `.` separates: *.apps, *.*
 *     resourceNameRegex: "^web-"
 *     namespaces: [shop]                  # the archive's (source) namespace
 *     labelSelector: {matchLabels: {app: web}}
 *     matches: [{path: /spec/replicas, value: "3"}]
 *   patches:                              # JSON Patch (RFC 6902)
 *   - {operation: replace, path: /spec/replicas, value: "1"}
 * - conditions: {groupResource: configmaps}
 *   mergePatches:                         # JSON merge patch (RFC 7386)
 *   - patchData: '{"data": {"mode": "dr"}}'
 * ```
 *
 * kubesnap applies the rules to each object after cleaning (restore/objects.ts),
 * so they see it already in the target namespace; only the `namespaces`
 * condition looks at the archive's namespace, as Velero's looks at the
 * backed-up one.
 *
 * Semantics are Velero's (internal/resourcemodifiers): conditions are ANDed;
 * every rule whose conditions match the object as it was before any rule is
 * applied, in file order; a failing `test` operation skips that rule's
 * patches for the object (not an error); a JSON Patch `value` is a string
 * read as Velero reads it (numbers, true/false, null, `{…}`/`[…]` JSON as
 * such, `"\"3\""` for the string "3"). Where kubesnap differs, it is stricter
 * before the restore starts: the whole file is checked and every problem
 * named at once; an operation is spelled in lowercase; add, replace and test
 * need a value, move and copy a from; a rule has exactly one kind of patch.
 * And a little more lenient: a `value` may also be a YAML mapping or list.
 * `strategicPatches` are refused: a strategic merge needs each type's schema
 * (which lists merge by which key), and a guess would silently corrupt lists.
 */
import type {KubernetesObject} from '@kubernetes/client-node'
import jsonPatch, {type Operation} from 'fast-json-patch'
import mergePatch from 'json-merge-patch'
import {parse as parseYaml} from 'yaml'
import {readUserFile} from '../errors.js'
import {describe, parseYamlFile, YamlChecker, type YamlPath} from '../plan/yaml-check.js'
import {matchesLabels, type LabelSelector} from '../resources/label-selector.js'

/** The only version of the format (Velero's `ResourceModifierSupportedVersionV1`). */
const MODIFIERS_VERSION = 'v1'

/** A checked modifiers file, ready to apply. */
export interface ResourceModifiers {
  file: string
  rules: ModifierRule[]
}

export interface ModifierRule {
  /** Position in resourceModifierRules, from 0 (how messages name the rule). */
  index: number
  groupResource: RegExp
  resourceName?: RegExp
  /** Globs for the source namespace; empty: any. */
  namespaces: RegExp[]
  labelSelector?: LabelSelector
  /** `matches`, as the JSON Patch test operations they are. */
  matches: Operation[]
  patches?: Operation[]
  mergePatches?: Record<string, unknown>[]
}

/** Where an object comes from, for the conditions. */
interface ModifierTarget {
  /** `resource.group`, or `resource` for the core group (Velero's GroupResource.String()). */
  groupResource: string
  /** The namespace in the archive (Velero matches the backed-up namespace, not the restore's). */
  namespace: string
}

interface ModifiedResult {
  object: KubernetesObject
  /** Indexes of the rules whose patches changed the object's content (a rule skipped by a failed test is not listed). */
  applied: number[]
}

const OPERATIONS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const
const LABEL_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const

/** Reads and checks a modifiers file; every problem is named at once (exit 2). */
export async function loadResourceModifiers(path: string): Promise<ResourceModifiers> {
  const text = await readUserFile(path, (why) => `The resource modifiers file ${path} ${why}; give the path of a Velero resource-modifiers YAML file with --resource-modifiers.`)
  return parseResourceModifiers(text, path)
}

/** Parses and checks a modifiers file's text; `file` names it in messages. */
export function parseResourceModifiers(text: string, file: string): ResourceModifiers {
  const {doc, lines} = parseYamlFile(text, file)
  const checker = new Checker(file, doc, lines)
  const rules = checker.modifiers(doc.toJS())
  checker.finish()
  return {file, rules}
}

/**
 * Applies every rule whose conditions match the object (as it was before any
 * rule) to a copy of it, in file order. A failing test operation skips its
 * rule; any other patch that cannot be applied (a path that does not exist)
 * throws a ModifierError naming the rule.
 */
export function applyResourceModifiers(modifiers: ResourceModifiers, object: KubernetesObject, target: ModifierTarget): ModifiedResult {
  const original = object
  let current: KubernetesObject = structuredClone(object)
  const applied: number[] = []
  for (const rule of modifiers.rules) {
    if (!ruleMatches(rule, original, target)) continue
    let next: KubernetesObject = structuredClone(current)
    if (rule.mergePatches) {
      for (const patch of rule.mergePatches) next = mergePatch.apply(next, structuredClone(patch))
    } else {
      // One operation at a time, so a failure names its operation; a failed test skips the whole rule.
      let testFailed = false
      for (const [i, op] of rule.patches!.entries()) {
        try {
          // A copy of the operation: a value it inserts is changed in place by the operations after it.
          next = jsonPatch.applyPatch(next, [structuredClone(op)], true, true).newDocument
        } catch (err) {
          if ((err as {name?: string}).name !== 'TEST_OPERATION_FAILED') throw new ModifierError(rule.index, patchFailure(err, op, rule.index, i))
          testFailed = true
          break
        }
      }
      if (testFailed) continue
    }
    if (JSON.stringify(next) !== JSON.stringify(current)) applied.push(rule.index)
    current = next
  }
  return {object: current, applied}
}

/** A rule's patch could not be applied to one object. */
export class ModifierError extends Error {
  constructor(
    readonly rule: number,
    message: string,
  ) {
    super(message)
    this.name = 'ModifierError'
  }
}

/** Whether all of a rule's conditions hold for an object (Velero's `match`). */
function ruleMatches(rule: ModifierRule, object: KubernetesObject, target: ModifierTarget): boolean {
  if (rule.namespaces.length > 0 && !rule.namespaces.some((glob) => glob.test(target.namespace))) return false
  if (!rule.groupResource.test(target.groupResource)) return false
  if (rule.resourceName && !rule.resourceName.test(object.metadata?.name ?? '')) return false
  if (rule.labelSelector && !matchesLabels(rule.labelSelector, object.metadata?.labels)) return false
  if (rule.matches.length === 0) return true
  try {
    jsonPatch.applyPatch(object, rule.matches, true, false)
    return true
  } catch {
    // A value that differs or a path that does not exist: the condition does not hold.
    return false
  }
}

/**
 * A gobwas/glob pattern (what Velero compiles its conditions with) as an
 * anchored RegExp: `*` any run of characters except the separator, `**` any
 * run at all, `?` one character except the separator, `[a-z]`, `[!a-z]`,
 * `{a,b}`, `\` escapes. Throws on an unclosed `[` or `{`.
 */
export function compileGlob(pattern: string, separator?: string): RegExp {
  const notSep = separator ? `[^${escapeRegExp(separator)}]` : '.'
  let out = ''
  let depth = 0
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]
    if (ch === '\\') {
      if (i + 1 >= pattern.length) throw new Error('it ends with a lone backslash')
      out += escapeRegExp(pattern[++i])
    } else if (ch === '*') {
      if (pattern[i + 1] === '*') {
        out += '.*'
        i++
      } else out += `${notSep}*`
    } else if (ch === '?') {
      out += notSep
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) throw new Error('a "[" is not closed')
      let body = pattern.slice(i + 1, end)
      const negate = body.startsWith('!')
      if (negate) body = body.slice(1)
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`
      i = end
    } else if (ch === '{') {
      out += '(?:'
      depth++
    } else if (ch === '}' && depth > 0) {
      out += ')'
      depth--
    } else if (ch === ',' && depth > 0) {
      out += '|'
    } else out += escapeRegExp(ch)
  }
  if (depth > 0) throw new Error('a "{" is not closed')
  return new RegExp(`^${out}$`)
}

/**
 * A JSON Patch value as Velero reads its string field (json_patch.go
 * addQuotes): "" and `"…"` are strings, null/true/false and numbers are
 * themselves, `{…}`/`[…]` is JSON, anything else a string. YAML scalars count
 * as their text (Velero's YAML decoder turns them into strings); a YAML
 * mapping or list is taken as the value itself.
 */
export function patchValue(raw: unknown): unknown {
  if (typeof raw === 'object' && raw !== null) return raw
  const text = raw === null || raw === undefined ? '' : String(raw)
  if (text === '') return ''
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return text.slice(1, -1)
  if (text === 'null') return null
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === 'true'
  if (text.startsWith('{') || text.startsWith('[')) return JSON.parse(text)
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text)
  return text
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}

function patchFailure(err: unknown, op: Operation, rule: number, index: number): string {
  const e = err as {name?: string; message?: string}
  const where = `patches[${index}] (${op.op} ${op.path})`
  const why = e.name === 'OPERATION_PATH_UNRESOLVABLE' ? 'the path does not exist in this object'
    : e.name === 'OPERATION_FROM_UNRESOLVABLE' ? 'its from path does not exist in this object'
      : e.name === 'OPERATION_VALUE_OUT_OF_BOUNDS' ? 'the array index is past the end of the list'
        : (e.message ?? String(err)).split('\n')[0]
  return `resourceModifierRules[${rule}] ${where} cannot be applied: ${why}; add a test operation or a matches condition so the rule only applies where the path exists`
}

type Path = YamlPath

/** Checks the parsed file (as plain values; positions by path), recording one sentence per problem with its place in the file. */
class Checker extends YamlChecker {

  modifiers(root: unknown): ModifierRule[] {
    if (!isRecord(root)) {
      this.problem([], `the file must be a mapping with version: ${MODIFIERS_VERSION} and resourceModifierRules, as Velero's resource modifiers are.`)
      return []
    }
    this.known(root, [], ['version', 'resourceModifierRules'])
    if (root.version === undefined) this.problem([], `the file has no version; add "version: ${MODIFIERS_VERSION}" as its first line.`)
    else if (typeof root.version !== 'string' || root.version.toLowerCase() !== MODIFIERS_VERSION) this.problem(['version'], `version ${JSON.stringify(root.version)} is not supported; use version: ${MODIFIERS_VERSION}.`)
    const rules = root.resourceModifierRules
    if (!Array.isArray(rules) || rules.length === 0) {
      this.problem(rules === undefined ? [] : ['resourceModifierRules'], 'resourceModifierRules must be a non-empty list of rules (lines starting with "- conditions:").')
      return []
    }
    return rules.map((rule, i) => this.rule(rule, i)).filter((r): r is ModifierRule => r !== undefined)
  }

  rule(raw: unknown, index: number): ModifierRule | undefined {
    const at: Path = ['resourceModifierRules', index]
    const name = `resourceModifierRules[${index}]`
    if (!isRecord(raw)) return this.problem(at, `${name} must be a mapping with conditions and patches, mergePatches or strategicPatches.`)
    const before = this.problems.length
    this.known(raw, at, ['conditions', 'patches', 'mergePatches', 'strategicPatches'])
    const kinds = (['patches', 'mergePatches', 'strategicPatches'] as const).filter((k) => raw[k] !== undefined && raw[k] !== null)
    if (kinds.length === 0) this.problem(at, `${name} has no patches; give patches (JSON Patch) or mergePatches (JSON merge patch).`)
    if (kinds.length > 1) this.problem(at, `${name} has ${kinds.join(' and ')}; a rule takes only one of patches, mergePatches and strategicPatches, so split it into two rules.`)
    if (kinds.includes('strategicPatches')) {
      this.problem([...at, 'strategicPatches'], `${name} uses strategicPatches, which kubesnap does not apply: a strategic merge needs each type's schema (which lists merge by which key) and a guess would silently corrupt lists; write it as patches (JSON Patch, e.g. replace /spec/template/spec/containers/0/image) or mergePatches.`)
    }
    const rule: ModifierRule = {index, groupResource: /$^/, namespaces: [], matches: []}
    this.conditions(raw.conditions, [...at, 'conditions'], rule)
    if (raw.patches !== undefined && raw.patches !== null) rule.patches = this.list(raw.patches, [...at, 'patches'], (p, where) => this.operation(p, where))
    if (raw.mergePatches !== undefined && raw.mergePatches !== null) rule.mergePatches = this.list(raw.mergePatches, [...at, 'mergePatches'], (p, where) => this.mergePatch(p, where))
    return this.problems.length > before ? undefined : rule
  }

  conditions(raw: unknown, at: Path, rule: ModifierRule): void {
    const name = pathName(at)
    if (!isRecord(raw)) {
      this.problem(at, `${name} ${raw === undefined ? 'is missing' : 'must be a mapping'}; give at least groupResource (e.g. deployments.apps, or * for every core type).`)
      return
    }
    this.known(raw, at, ['groupResource', 'resourceNameRegex', 'namespaces', 'labelSelector', 'matches'])
    if (typeof raw.groupResource !== 'string' || raw.groupResource === '') {
      this.problem(raw.groupResource === undefined ? at : [...at, 'groupResource'], `${name}.groupResource must name the resource as kubectl does (e.g. persistentvolumeclaims, deployments.apps, *.apps), not ${describe(raw.groupResource)}.`)
    } else {
      try {
        rule.groupResource = compileGlob(raw.groupResource, '.')
      } catch (err) {
        this.problem([...at, 'groupResource'], `${name}.groupResource "${raw.groupResource}" is not a valid glob (${(err as Error).message}); fix the pattern.`)
      }
    }
    if (raw.resourceNameRegex !== undefined) {
      if (typeof raw.resourceNameRegex !== 'string') this.problem([...at, 'resourceNameRegex'], `${name}.resourceNameRegex must be a regular expression in quotes, not ${describe(raw.resourceNameRegex)}.`)
      else {
        try {
          rule.resourceName = new RegExp(raw.resourceNameRegex)
        } catch (err) {
          this.problem([...at, 'resourceNameRegex'], `${name}.resourceNameRegex is not a valid regular expression (${(err as Error).message}); fix it, e.g. "^mysql-.*$".`)
        }
      }
    }
    if (raw.namespaces !== undefined) {
      rule.namespaces = this.list(raw.namespaces, [...at, 'namespaces'], (ns, where) => {
        if (typeof ns !== 'string' || ns === '') return this.problem(where, `${pathName(where)} must be a namespace name or glob, not ${describe(ns)}.`)
        try {
          return compileGlob(ns)
        } catch (err) {
          return this.problem(where, `${pathName(where)} "${ns}" is not a valid glob (${(err as Error).message}); fix the pattern.`)
        }
      })
    }
    if (raw.labelSelector !== undefined) rule.labelSelector = this.labelSelector(raw.labelSelector, [...at, 'labelSelector'])
    if (raw.matches !== undefined) {
      rule.matches = this.list(raw.matches, [...at, 'matches'], (m, where) => {
        if (!isRecord(m)) return this.problem(where, `${pathName(where)} must be a mapping with path and value.`)
        this.known(m, where, ['path', 'value'])
        if (!isPointer(m.path)) return this.problem(where, `${pathName(where)}.path must be a JSON pointer such as /spec/storageClassName, not ${describe(m.path)}.`)
        const value = this.value(m.value, [...where, 'value'])
        return value.ok ? {op: 'test', path: m.path, value: value.value} : undefined
      })
    }
  }

  labelSelector(raw: unknown, at: Path): LabelSelector | undefined {
    const name = pathName(at)
    if (!isRecord(raw)) return this.problem(at, `${name} must be a mapping with matchLabels and/or matchExpressions.`)
    this.known(raw, at, ['matchLabels', 'matchExpressions'])
    const selector: LabelSelector = []
    if (raw.matchLabels !== undefined) {
      if (!isRecord(raw.matchLabels)) this.problem([...at, 'matchLabels'], `${name}.matchLabels must map label keys to values.`)
      else {
        for (const [key, value] of Object.entries(raw.matchLabels)) {
          if (typeof value !== 'string') this.problem([...at, 'matchLabels', key], `${name}.matchLabels.${key} must be a string; put the value in quotes.`)
          else selector.push({op: 'in', key, values: [value]})
        }
      }
    }
    if (raw.matchExpressions !== undefined) {
      this.list(raw.matchExpressions, [...at, 'matchExpressions'], (e, where) => {
        const ename = pathName(where)
        if (!isRecord(e)) return this.problem(where, `${ename} must be a mapping with key, operator and values.`)
        this.known(e, where, ['key', 'operator', 'values'])
        if (typeof e.key !== 'string' || e.key === '') return this.problem(where, `${ename}.key must be a label key.`)
        const operator = e.operator as (typeof LABEL_OPERATORS)[number]
        if (!LABEL_OPERATORS.includes(operator)) return this.problem(where, `${ename}.operator must be one of ${LABEL_OPERATORS.join(', ')}, not ${describe(e.operator)}.`)
        const values = e.values === undefined ? [] : e.values
        if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) return this.problem(where, `${ename}.values must be a list of strings.`)
        const set = operator === 'In' || operator === 'NotIn'
        if (set && values.length === 0) return this.problem(where, `${ename} uses ${operator}, which needs values; give at least one.`)
        if (!set && values.length > 0) return this.problem(where, `${ename} uses ${operator}, which takes no values; remove them.`)
        selector.push(operator === 'In' ? {op: 'in', key: e.key, values} : operator === 'NotIn' ? {op: 'notin', key: e.key, values}
          : {op: operator === 'Exists' ? 'exists' : 'absent', key: e.key})
        return undefined
      })
    }
    return selector
  }

  operation(raw: unknown, at: Path): Operation | undefined {
    const name = pathName(at)
    if (!isRecord(raw)) return this.problem(at, `${name} must be a mapping with operation, path and (for add, replace, test) value.`)
    this.known(raw, at, ['operation', 'path', 'value', 'from'])
    const op = raw.operation
    if (typeof op !== 'string' || !OPERATIONS.includes(op as (typeof OPERATIONS)[number])) {
      const lower = typeof op === 'string' && OPERATIONS.includes(op.toLowerCase() as (typeof OPERATIONS)[number])
      return this.problem(raw.operation === undefined ? at : [...at, 'operation'], lower
        ? `${name}.operation "${op}" must be written in lowercase: ${op.toLowerCase()}.`
        : `${name}.operation must be one of ${OPERATIONS.join(', ')}, not ${describe(op)}.`)
    }
    if (!isPointer(raw.path)) return this.problem(raw.path === undefined ? at : [...at, 'path'], `${name}.path must be a JSON pointer such as /spec/replicas, not ${describe(raw.path)}.`)
    const path = raw.path
    switch (op) {
      case 'remove':
        return {op, path}
      case 'move':
      case 'copy':
        if (!isPointer(raw.from)) return this.problem(raw.from === undefined ? at : [...at, 'from'], `${name} (${op}) needs from, a JSON pointer to the value to ${op}, not ${describe(raw.from)}.`)
        return {op, from: raw.from, path}
      default: {
        if (raw.value === undefined) return this.problem(at, `${name} (${op}) has no value; give one (in quotes as Velero reads it, e.g. "premium", "3", "{\\"a\\": 1}").`)
        const value = this.value(raw.value, [...at, 'value'])
        return value.ok ? {op: op as 'add' | 'replace' | 'test', path, value: value.value} : undefined
      }
    }
  }

  value(raw: unknown, at: Path): {ok: true; value: unknown} | {ok: false} {
    try {
      return {ok: true, value: patchValue(raw)}
    } catch (err) {
      this.problem(at, `${pathName(at)} starts like JSON but is not valid JSON (${(err as Error).message}); fix it, or quote it as "\\"…\\"" to mean the text itself.`)
      return {ok: false}
    }
  }

  mergePatch(raw: unknown, at: Path): Record<string, unknown> | undefined {
    const name = pathName(at)
    if (!isRecord(raw)) return this.problem(at, `${name} must be a mapping with patchData.`)
    this.known(raw, at, ['patchData'])
    if (typeof raw.patchData !== 'string') return this.problem(raw.patchData === undefined ? at : [...at, 'patchData'], `${name}.patchData must be the patch as a JSON or YAML string (after "patchData: |"), not ${describe(raw.patchData)}.`)
    let patch: unknown
    try {
      patch = parseYaml(raw.patchData)
    } catch (err) {
      return this.problem([...at, 'patchData'], `${name}.patchData is neither JSON nor YAML (${(err as Error).message.split('\n')[0]}); fix its syntax.`)
    }
    if (!isRecord(patch)) return this.problem([...at, 'patchData'], `${name}.patchData must be a mapping such as {"metadata": {"labels": {"tier": "dr"}}}, not ${describe(patch)}.`)
    return patch
  }

  list<T>(raw: unknown, at: Path, item: (value: unknown, at: Path) => T | undefined): T[] {
    return this.items(raw, at, pathName(at), (value, i) => item(value, [...at, i]))
  }

  /** Unknown keys are problems, as Velero's strict decoder makes them. */
  known(raw: Record<string, unknown>, at: Path, keys: string[]): void {
    for (const key of Object.keys(raw)) {
      if (!keys.includes(key)) this.unknownKey(this.keyAt([...at, key]), pathName(at), key, keys, {one: 'resource-modifier field', many: 'fields'})
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isPointer(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('/')
}

function pathName(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}
