/**
 * The syntax of application dumps and hooks on the command line (pure: no
 * cluster access). A TARGET names where a command runs:
 *
 *   KIND/NAME[,container=CONTAINER]
 *
 * KIND is statefulset (sts), deployment (deploy) or pod; the command runs in
 * the first Ready pod of the workload (by pod name), in CONTAINER or else the
 * pod's first container. Then:
 *
 *   --dump      NAME=TARGET:COMMAND   COMMAND's stdout is stored as dumps/NAME/
 *   --load      NAME=COMMAND          restore pipes dump NAME into COMMAND's stdin
 *   --pre-hook  TARGET:COMMAND        run before the volume copy
 *   --post-hook TARGET:COMMAND        run after it, also when it fails
 *
 * COMMAND is everything after the first `:` that follows TARGET (it may hold
 * `:` and `=` itself) and runs as `sh -c COMMAND`. NAME is a DNS-label-like
 * word (lowercase letters, digits, `-`, `_`, `.`), so it is a safe archive path.
 *
 *   --dump 'db=statefulset/mariadb,container=mariadb:mysqldump --all-databases'
 *   --load 'db=mysql'
 */

import {DNS_LABEL, OBJECT_NAME} from '../names.js'

export type DumpWorkloadKind = 'statefulset' | 'deployment' | 'pod'

/** Where a dump or hook command runs. */
export interface DumpTarget {
  kind: DumpWorkloadKind
  name: string
  /** The container to run in; the pod's first container when absent. */
  container?: string
}

export interface DumpSpec {
  name: string
  target: DumpTarget
  command: string
}

export interface HookSpec {
  target: DumpTarget
  command: string
}

export interface LoadSpec {
  name: string
  command: string
}

/** A flag value that does not follow the syntax; the message says what the syntax is. */
export class DumpSyntaxError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DumpSyntaxError'
  }
}

const KINDS: Record<string, DumpWorkloadKind> = {
  statefulset: 'statefulset', statefulsets: 'statefulset', sts: 'statefulset',
  deployment: 'deployment', deployments: 'deployment', deploy: 'deployment',
  pod: 'pod', pods: 'pod', po: 'pod',
}

/** A dump's name: safe as an archive path. */
export const DUMP_NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/

const TARGET_SYNTAX = 'KIND/NAME[,container=CONTAINER] with KIND statefulset, deployment or pod'

/** `statefulset/mariadb` as written in flags and recorded in dump entries. */
export function formatTarget(target: DumpTarget): string {
  return `${target.kind}/${target.name}${target.container ? `,container=${target.container}` : ''}`
}

/** Parses `KIND/NAME[,container=CONTAINER]`. */
export function parseTarget(text: string, flag: string): DumpTarget {
  const [workload, ...options] = text.trim().split(',')
  const slash = workload.indexOf('/')
  const kind = slash > 0 ? KINDS[workload.slice(0, slash).toLowerCase()] : undefined
  const name = workload.slice(slash + 1)
  if (!kind || !OBJECT_NAME.test(name)) {
    throw new DumpSyntaxError(`${flag}: "${text}" is not a workload; write ${TARGET_SYNTAX}, e.g. statefulset/mariadb.`)
  }
  const target: DumpTarget = {kind, name}
  for (const option of options) {
    const match = /^container=(.*)$/.exec(option.trim())
    if (!match || !DNS_LABEL.test(match[1]) || target.container) throw new DumpSyntaxError(`${flag}: "${option}" in "${text}" is not an option; the only one is container=CONTAINER.`)
    target.container = match[1]
  }
  return target
}

/** Splits `TARGET:COMMAND` at the first colon. */
function splitTargetCommand(text: string, flag: string, syntax: string): HookSpec {
  const colon = text.indexOf(':')
  if (colon < 0) throw new DumpSyntaxError(`${flag}: "${text}" has no command; write ${syntax}.`)
  const command = text.slice(colon + 1).trim()
  if (!command) throw new DumpSyntaxError(`${flag}: "${text}" has an empty command; write ${syntax}.`)
  return {target: parseTarget(text.slice(0, colon), flag), command}
}

function splitName(text: string, flag: string, syntax: string): {name: string; rest: string} {
  const eq = text.indexOf('=')
  const name = eq < 0 ? '' : text.slice(0, eq).trim()
  if (eq < 0) throw new DumpSyntaxError(`${flag}: "${text}" has no NAME=; write ${syntax}.`)
  if (!DUMP_NAME.test(name)) {
    throw new DumpSyntaxError(`${flag}: "${name}" is not a dump name; use lowercase letters, digits, '-', '_' and '.' (at most 63), e.g. db.`)
  }
  return {name, rest: text.slice(eq + 1)}
}

/** Parses one `--dump NAME=TARGET:COMMAND`. */
export function parseDump(text: string): DumpSpec {
  const syntax = `NAME=${TARGET_SYNTAX.split(' ')[0]}:COMMAND`
  const {name, rest} = splitName(text, '--dump', syntax)
  return {name, ...splitTargetCommand(rest, '--dump', syntax)}
}

/** Parses one `--pre-hook`/`--post-hook TARGET:COMMAND`. */
export function parseHook(text: string, flag = '--pre-hook'): HookSpec {
  return splitTargetCommand(text, flag, `${TARGET_SYNTAX.split(' ')[0]}:COMMAND`)
}

/** Parses one `--load NAME=COMMAND`. */
export function parseLoad(text: string): LoadSpec {
  const {name, rest} = splitName(text, '--load', 'NAME=COMMAND')
  const command = rest.trim()
  if (!command) throw new DumpSyntaxError(`--load: "${text}" has an empty command; write NAME=COMMAND.`)
  return {name, command}
}

/** The dumps of a snapshot, each with its load command: names unique, every --load names a --dump. */
export interface DumpPlan {
  dumps: Array<DumpSpec & {load?: string}>
  preHooks: HookSpec[]
  postHooks: HookSpec[]
}

/** Parses and cross-checks the four flags. */
export function planDumps(flags: {dump?: string[]; load?: string[]; preHook?: string[]; postHook?: string[]}): DumpPlan {
  const dumps = (flags.dump ?? []).map(parseDump)
  const seen = new Set<string>()
  for (const d of dumps) {
    if (seen.has(d.name)) throw new DumpSyntaxError(`--dump: the name ${d.name} is used twice; give each dump its own name.`)
    seen.add(d.name)
  }
  const loads = new Map<string, string>()
  for (const l of (flags.load ?? []).map(parseLoad)) {
    if (!seen.has(l.name)) throw new DumpSyntaxError(`--load: there is no --dump named ${l.name}; a load command belongs to a dump of the same name.`)
    if (loads.has(l.name)) throw new DumpSyntaxError(`--load: dump ${l.name} has two load commands; give one.`)
    loads.set(l.name, l.command)
  }
  return {
    dumps: dumps.map((d) => (loads.has(d.name) ? {...d, load: loads.get(d.name)} : d)),
    preHooks: (flags.preHook ?? []).map((h) => parseHook(h, '--pre-hook')),
    postHooks: (flags.postHook ?? []).map((h) => parseHook(h, '--post-hook')),
  }
}
