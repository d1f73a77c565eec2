/**
 * kubesnap.yaml: a saved snapshot plan for cron and runbooks. Pure apart from
 * reading the file: `loadPlan` parses it with positions, checks every field and
 * reports every problem at once as `FILE:LINE:COLUMN: what is wrong; what to do`.
 *
 * Paths in a plan (output, kubeconfig, recipients files) are relative to the
 * plan's own directory, so a cron line works whatever its working directory.
 * Command-line flags override what the plan says; the plan overrides defaults.
 */
import {dirname, resolve} from 'node:path'
import {isMap, isScalar, type Document, type LineCounter, type Node, type Pair, type YAMLMap} from 'yaml'
import {parseRecipient} from '../archive/crypto.js'
import {isS3Url} from '../archive/s3-url.js'
import {parseTrustLine} from '../archive/sign.js'
import {DUMP_NAME, DumpSyntaxError, parseTarget, type DumpSpec, type HookSpec} from '../dumps/spec.js'
import {readUserFile} from '../errors.js'
import {DNS_LABEL, OBJECT_NAME} from '../names.js'
import type {RetentionPolicy} from '../archive/retention.js'
import {VOLUME_STRATEGIES, type VolumeStrategy} from '../volumes/index.js'
import {STREAM_COMPRESSIONS, type StreamCompression} from '../archive/manifest.js'
import {describe, parseYamlFile, YamlChecker} from './yaml-check.js'

export {PlanError} from './yaml-check.js'

const STRATEGIES = VOLUME_STRATEGIES

/** The plan as kubesnap uses it: every field checked, paths absolute. */
export interface Plan {
  /** Absolute path of the plan file. */
  file: string
  namespace: string
  context?: string
  kubeconfig?: string
  output?: string
  /** A second directory or s3:// location every written snapshot is copied to, verified as it goes (copyTo). */
  copyTo?: string
  selection: {includeKinds?: string[]; excludeKinds?: string[]; selector?: string}
  volumes: {
    /** Strategy of the claims `claims` does not name. */
    strategy?: VolumeStrategy
    /** Strategy per claim name. */
    claims: Record<string, VolumeStrategy>
    helperImage?: string
    /** Helper pods run as root with the copy's capabilities (`--helper-as-root`). */
    helperAsRoot?: boolean
    snapshotClass?: string
    /** Seconds to wait for VolumeSnapshots. */
    snapshotTimeout?: number
    /** A claim whose data cannot be copied fails the snapshot (`--volumes-required`). */
    required?: boolean
    /** How volume data is stored (`--compression`). */
    compression?: StreamCompression
  }
  dumps: Array<DumpSpec & {load?: string}>
  hooks: {pre: HookSpec[]; post: HookSpec[]}
  retention?: RetentionPolicy
  encryption: {recipients: string[]; recipientsFiles: string[]}
  /** OpenSSH ssh-ed25519 private key that signs each snapshot (--sign-with). */
  signWith?: string
  /** Keys verify and restore require a signature by (--trust): key lines with their place, and key files. */
  trust: {keys: Array<{value: string; at: string}>; files: string[]}
  metrics: {pushgateway?: string}
  /** What `restore --config` takes from the plan besides `trust`. */
  restore: {
    /** --map-storage-class: OLD class → NEW class. */
    storageClassMap: Record<string, string>
    /** Velero resource-modifier rules applied to every object (--resource-modifiers). */
    resourceModifiers?: string
  }
}

/** The plan format's only version so far. */
export const PLAN_VERSION = 1

/** Reads and checks a plan file; throws PlanError (exit 2) listing every problem. */
export async function loadPlan(path: string): Promise<Plan> {
  const text = await readUserFile(path, (why) => `The plan ${path} ${why}; give the path of a kubesnap.yaml with --config.`)
  return parsePlan(text, path)
}

/** Parses and checks a plan's text; `path` names it in messages and anchors its relative paths. */
export function parsePlan(text: string, path: string): Plan {
  const {doc, lines} = parseYamlFile(text, path)
  const checker = new Checker(path, doc, lines)
  const plan = checker.plan(doc.contents as Node | null)
  checker.finish()
  return plan!
}

type Field = (node: Node, key: string) => void

/** Walks the YAML nodes, recording problems with their positions. */
class Checker extends YamlChecker {
  readonly #dir: string

  constructor(file: string, doc: Document, lines: LineCounter) {
    super(file, doc, lines)
    this.#dir = dirname(resolve(file))
  }

  plan(root: Node | null): Plan | undefined {
    if (!root || (isScalar(root) && root.value === null)) {
      this.problems.push(`${this.file}: the plan is empty; it needs at least "version: ${PLAN_VERSION}" and "namespace:".`)
      return undefined
    }
    const plan: Plan = {file: resolve(this.file), namespace: '', selection: {}, volumes: {claims: {}}, dumps: [], hooks: {pre: [], post: []}, encryption: {recipients: [], recipientsFiles: []}, trust: {keys: [], files: []}, metrics: {}, restore: {storageClassMap: {}}}
    const seen = this.map(root, '', {
      version: (n) => this.integer(n, 'version', PLAN_VERSION, PLAN_VERSION),
      namespace: (n) => (plan.namespace = this.string(n, 'namespace', NAMESPACE) ?? ''),
      context: (n) => (plan.context = this.string(n, 'context')),
      kubeconfig: (n) => (plan.kubeconfig = this.path(n, 'kubeconfig')),
      output: (n) => (plan.output = this.location(n, 'output')),
      copyTo: (n) => (plan.copyTo = this.location(n, 'copyTo')),
      selection: (n) =>
        this.map(n, 'selection', {
          includeKinds: (m) => (plan.selection.includeKinds = this.stringList(m, 'selection.includeKinds')),
          excludeKinds: (m) => (plan.selection.excludeKinds = this.stringList(m, 'selection.excludeKinds')),
          selector: (m) => (plan.selection.selector = this.string(m, 'selection.selector')),
        }),
      volumes: (n) =>
        this.map(n, 'volumes', {
          strategy: (m) => (plan.volumes.strategy = this.oneOf(m, 'volumes.strategy', STRATEGIES)),
          claims: (m) => this.claims(m, plan.volumes.claims),
          helperImage: (m) => (plan.volumes.helperImage = this.string(m, 'volumes.helperImage')),
          helperAsRoot: (m) => (plan.volumes.helperAsRoot = this.boolean(m, 'volumes.helperAsRoot')),
          snapshotClass: (m) => (plan.volumes.snapshotClass = this.string(m, 'volumes.snapshotClass')),
          snapshotTimeout: (m) => (plan.volumes.snapshotTimeout = this.integer(m, 'volumes.snapshotTimeout', 1)),
          required: (m) => (plan.volumes.required = this.boolean(m, 'volumes.required')),
          compression: (m) => (plan.volumes.compression = this.oneOf(m, 'volumes.compression', STREAM_COMPRESSIONS)),
        }),
      dumps: (n) => (plan.dumps = this.dumps(n)),
      hooks: (n) =>
        this.map(n, 'hooks', {
          pre: (m) => (plan.hooks.pre = this.list(m, 'hooks.pre', (item, at) => this.hook(item, at))),
          post: (m) => (plan.hooks.post = this.list(m, 'hooks.post', (item, at) => this.hook(item, at))),
        }),
      retention: (n) => (plan.retention = this.retention(n)),
      encryption: (n) =>
        this.map(n, 'encryption', {
          recipients: (m) => (plan.encryption.recipients = this.list(m, 'encryption.recipients', (item, at) => this.recipient(item, at))),
          recipientsFile: (m) => {
            const file = this.path(m, 'encryption.recipientsFile')
            if (file) plan.encryption.recipientsFiles = [file]
          },
        }),
      signWith: (n) => (plan.signWith = this.path(n, 'signWith')),
      trust: (n) => this.list(n, 'trust', (item, at) => this.trusted(item, at, plan.trust)),
      metrics: (n) =>
        this.map(n, 'metrics', {
          pushgateway: (m) => (plan.metrics.pushgateway = this.string(m, 'metrics.pushgateway', HTTP_URL)),
        }),
      restore: (n) =>
        this.map(n, 'restore', {
          storageClassMap: (m) => this.storageClassMap(m, plan.restore.storageClassMap),
          resourceModifiers: (m) => (plan.restore.resourceModifiers = this.path(m, 'restore.resourceModifiers')),
        }),
    })
    if (!seen) return undefined
    if (!seen.has('version')) this.problems.push(`${this.place(root.range?.[0])}: the plan has no version; add "version: ${PLAN_VERSION}" as its first line.`)
    if (!seen.has('namespace')) this.problems.push(`${this.place(root.range?.[0])}: the plan has no namespace; add "namespace: NAME".`)
    return plan
  }

  /** Checks a mapping: known keys go to their handlers, unknown keys are problems. Returns the keys seen. */
  map(node: Node, at: string, fields: Record<string, Field>): Set<string> | undefined {
    if (!isMap(node)) return this.problem(node, `${at || 'the plan'} must be a mapping of keys to values, not ${describe(node)}.`)
    const seen = new Set<string>()
    for (const pair of (node as YAMLMap).items as Pair<Node, Node>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined
      const field = key === undefined ? undefined : fields[key]
      const name = at ? `${at}.${key}` : key
      if (!field) {
        this.unknownKey(pair.key, at, key, Object.keys(fields), {one: 'plan setting', many: 'settings'})
        continue
      }
      seen.add(key!)
      if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) {
        this.problem(pair.key, `${name} has no value; give one or remove the line.`)
        continue
      }
      field(pair.value, name!)
    }
    return seen
  }

  string(node: Node, at: string, format?: {pattern: RegExp; description: string}): string | undefined {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value.trim() === '') {
      return this.problem(node, `${at} must be ${format?.description ?? 'a non-empty string'}, not ${describe(node)}.`)
    }
    if (format && !format.pattern.test(node.value)) return this.problem(node, `${at} must be ${format.description}, not "${node.value}".`)
    return node.value
  }

  path(node: Node, at: string): string | undefined {
    const value = this.string(node, at)
    return value === undefined ? undefined : resolve(this.#dir, value)
  }

  /** A directory (relative to the plan) or an s3:// location, which is not a path. */
  location(node: Node, at: string): string | undefined {
    return isScalar(node) && typeof node.value === 'string' && isS3Url(node.value) ? node.value : this.path(node, at)
  }

  integer(node: Node, at: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value) || node.value < min || node.value > max) {
      const range = max === min ? `${min}` : max === Number.MAX_SAFE_INTEGER ? `a whole number of ${min} or more` : `a whole number from ${min} to ${max}`
      return this.problem(node, `${at} must be ${range}, not ${describe(node)}.`)
    }
    return node.value
  }

  boolean(node: Node, at: string): boolean | undefined {
    if (!isScalar(node) || typeof node.value !== 'boolean') return this.problem(node, `${at} must be true or false, not ${describe(node)}.`)
    return node.value
  }

  oneOf<T extends string>(node: Node, at: string, options: readonly T[]): T | undefined {
    if (!isScalar(node) || !options.includes(node.value as T)) return this.problem(node, `${at} must be one of ${options.join(', ')}, not ${describe(node)}.`)
    return node.value as T
  }

  list<T>(node: Node, at: string, item: (node: Node, at: string) => T | undefined): T[] {
    return this.items(node, node, at, (child, i) => item(child as Node, `${at}[${i}]`))
  }

  stringList(node: Node, at: string): string[] | undefined {
    const values = this.list(node, at, (item, where) => this.string(item, where))
    return values.length > 0 ? values : undefined
  }

  /** A recipient line, checked as --encrypt-to checks it (the message never quotes a secret key). */
  recipient(node: Node, at: string): string | undefined {
    const text = this.string(node, at)
    if (text === undefined) return undefined
    try {
      parseRecipient(text)
      return text
    } catch (err) {
      return this.problem(node, `${at}: ${(err as Error).message}.`)
    }
  }

  /**
   * One `trust` item: an ssh-ed25519 public key line (checked here, kept with
   * its place for messages) or the path of a key file (read when used).
   */
  trusted(node: Node, at: string, into: Plan['trust']): undefined {
    const text = this.string(node, at)
    if (text === undefined) return undefined
    if (!/(^|\s)(ssh-|ecdsa-|sk-)\S*\s+AAAA/.test(text)) {
      into.files.push(resolve(this.#dir, text))
      return undefined
    }
    try {
      if (!parseTrustLine(text)) return this.problem(node, `${at}: kubesnap signs with ssh-ed25519 keys only; give an ssh-ed25519 public key.`)
      into.keys.push({value: text, at: this.place(node.range?.[0])})
    } catch (err) {
      return this.problem(node, `${at}: ${(err as Error).message}.`)
    }
    return undefined
  }

  claims(node: Node, into: Record<string, VolumeStrategy>): void {
    if (!isMap(node)) {
      this.problem(node, `volumes.claims must map claim names to tar, csi or none, not ${describe(node)}.`)
      return
    }
    for (const pair of node.items as Pair<Node, Node>[]) {
      const name = isScalar(pair.key) ? String(pair.key.value) : ''
      if (!CLAIM.pattern.test(name)) {
        this.problem(pair.key, `volumes.claims: "${name}" is not a claim name; use the PersistentVolumeClaim's name.`)
        continue
      }
      const strategy = pair.value ? this.oneOf(pair.value, `volumes.claims.${name}`, STRATEGIES) : this.problem(pair.key, `volumes.claims.${name} has no value; give tar, csi or none.`)
      if (strategy) into[name] = strategy
    }
  }

  /** `restore.storageClassMap`: StorageClass names to StorageClass names, as --map-storage-class OLD=NEW. */
  storageClassMap(node: Node, into: Record<string, string>): void {
    if (!isMap(node)) {
      this.problem(node, `restore.storageClassMap must map old StorageClass names to new ones (e.g. "standard: fast"), not ${describe(node)}.`)
      return
    }
    for (const pair of node.items as Pair<Node, Node>[]) {
      const from = isScalar(pair.key) ? String(pair.key.value) : ''
      const at = `restore.storageClassMap.${from}`
      if (!STORAGE_CLASS.pattern.test(from)) {
        this.problem(pair.key, `restore.storageClassMap: "${from}" is not a StorageClass name; use the archived class's name.`)
        continue
      }
      const to = pair.value ? this.string(pair.value, at, STORAGE_CLASS) : this.problem(pair.key, `${at} has no value; give the target cluster's StorageClass.`)
      if (to) into[from] = to
    }
  }

  dumps(node: Node): Plan['dumps'] {
    const names = new Set<string>()
    return this.list(node, 'dumps', (item, at) => {
      const dump: {name?: string; workload?: DumpSpec['target']; container?: string; command?: string; load?: string} = {}
      const seen = this.map(item, at, {
        name: (n) => (dump.name = this.string(n, `${at}.name`, DUMP)),
        workload: (n) => (dump.workload = this.target(n, `${at}.workload`)),
        container: (n) => (dump.container = this.string(n, `${at}.container`, CONTAINER)),
        command: (n) => (dump.command = this.string(n, `${at}.command`)),
        load: (n) => (dump.load = this.string(n, `${at}.load`)),
      })
      if (!seen) return undefined
      for (const key of ['name', 'workload', 'command'] as const) {
        if (!seen.has(key)) this.problem(item, `${at} has no ${key}; a dump needs name, workload and command.`)
      }
      if (dump.name && names.has(dump.name)) this.problem(item, `${at}: the dump name ${dump.name} is used twice; give each dump its own name.`)
      if (dump.name) names.add(dump.name)
      if (!dump.name || !dump.workload || !dump.command) return undefined
      const target = dump.container ? {...dump.workload, container: dump.container} : dump.workload
      return {name: dump.name, target, command: dump.command, ...(dump.load ? {load: dump.load} : {})}
    })
  }

  hook(node: Node, at: string): HookSpec | undefined {
    let target: HookSpec['target'] | undefined
    let container: string | undefined
    let command: string | undefined
    const seen = this.map(node, at, {
      workload: (n) => (target = this.target(n, `${at}.workload`)),
      container: (n) => (container = this.string(n, `${at}.container`, CONTAINER)),
      command: (n) => (command = this.string(n, `${at}.command`)),
    })
    if (!seen) return undefined
    for (const key of ['workload', 'command'] as const) {
      if (!seen.has(key)) this.problem(node, `${at} has no ${key}; a hook needs workload and command.`)
    }
    if (!target || !command) return undefined
    return {target: container ? {...target, container} : target, command}
  }

  target(node: Node, at: string): HookSpec['target'] | undefined {
    const text = this.string(node, at)
    if (text === undefined) return undefined
    try {
      // Only KIND/NAME here: the container has its own key.
      if (text.includes(',')) return this.problem(node, `${at} must be KIND/NAME (e.g. statefulset/mariadb); give the container with its own "container:" key.`)
      return parseTarget(text, at)
    } catch (err) {
      if (err instanceof DumpSyntaxError) return this.problem(node, `${at} must be KIND/NAME with KIND statefulset, deployment or pod (e.g. statefulset/mariadb), not "${text}".`)
      throw err
    }
  }

  retention(node: Node): RetentionPolicy | undefined {
    const policy: RetentionPolicy = {}
    const before = this.problems.length
    const keep = (key: keyof RetentionPolicy): Field => (n, at) => (policy[key] = this.integer(n, at, 0))
    const seen = this.map(node, 'retention', {
      keepLast: keep('keepLast'),
      keepHourly: keep('keepHourly'),
      keepDaily: keep('keepDaily'),
      keepWeekly: keep('keepWeekly'),
      keepMonthly: keep('keepMonthly'),
      keepYearly: keep('keepYearly'),
    })
    if (!seen || this.problems.length > before) return undefined
    if (!Object.values(policy).some((n) => n !== undefined && n > 0)) {
      return this.problem(node, 'retention keeps nothing; give at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly above 0, or remove it.')
    }
    return policy
  }
}

const NAMESPACE = {pattern: DNS_LABEL, description: 'a namespace name (lowercase letters, digits and "-", at most 63)'}
const CONTAINER = {pattern: DNS_LABEL, description: 'a container name (lowercase letters, digits and "-", at most 63)'}
const CLAIM = {pattern: OBJECT_NAME, description: 'a Kubernetes name (lowercase letters, digits, "-" and ".")'}
const DUMP = {pattern: DUMP_NAME, description: 'a dump name (lowercase letters, digits, "-", "_" and ".", at most 63)'}
const STORAGE_CLASS = {pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, description: 'a StorageClass name (lowercase letters, digits, "-" and ".")'}
const HTTP_URL = {pattern: /^https?:\/\/[^\s/]+/, description: 'an http:// or https:// URL'}
