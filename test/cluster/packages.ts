/**
 * The Debian packages the project's own commands need — `npm test`, `npm run
 * test:unit`, `demo`, `cluster` and `bench` — in one list, and the preflight
 * each of them runs first: as root it installs what is missing with apt-get,
 * saying what and why in one line; otherwise it stops before anything starts
 * with one sentence naming the `sudo apt-get install …` command (exit 2).
 *
 * Adding a package is one line in PACKAGES. kubesnap itself (the CLI) needs
 * none of them.
 */
import {spawnSync} from 'node:child_process'
import {accessSync, constants} from 'node:fs'
import path from 'node:path'
import {SetupError} from './setup-error.js'

/** An npm script of this project that needs Debian packages. */
export type Command = 'test' | 'test:unit' | 'demo' | 'cluster' | 'bench'

/** One Debian package, why it is needed and by which commands. */
export interface DebianPackage {
  name: string
  /** Why, in a few words, as the install line shows it. */
  why: string
  /** The commands that need it. */
  for: readonly Command[]
  /** Needed only when this program is not on PATH. */
  unlessOnPath?: string
}

/** The commands that build (once) and run the test cluster. */
const CLUSTER: readonly Command[] = ['test', 'demo', 'cluster', 'bench']
/** The commands that run test files, unit tests included. */
const TESTS: readonly Command[] = ['test', 'test:unit']

/** Every Debian package a command of this project needs (see TEST-CLUSTER.md for the cluster's). */
export const PACKAGES: readonly DebianPackage[] = [
  {name: 'golang-1.19', why: "builds the v1.20.2 control plane and the test node's container-init, once, into the cache", for: CLUSTER},
  {name: 'golang-github-modern-go-reflect2-dev', why: 'reflect2 1.0.2 for that build (the vendored 1.0.1 crashes)', for: CLUSTER},
  {name: 'rsync', why: "that build's `make gen_openapi`", for: CLUSTER},
  {name: 'make', why: "that build's `make gen_openapi`", for: CLUSTER},
  {name: 'dpkg-dev', why: "`apt-get source` of Debian's kubernetes package for that build", for: CLUSTER},
  {name: 'etcd-server', why: "the control plane's store", for: CLUSTER},
  {name: 'openssl', why: "the cluster's certificates", for: CLUSTER},
  {name: 'util-linux', why: "setpriv, unshare and flock for the cluster's processes and pods", for: CLUSTER},
  {name: 'busybox-static', why: "the test node's pod file systems", for: CLUSTER},
  // The machines ship a newer kubectl at /usr/bin/kubectl; Debian's is only a fallback.
  {name: 'kubernetes-client', why: 'kubectl, driving the test node as it drives a kubelet', for: ['test', 'bench'], unlessOnPath: 'kubectl'},
  {name: 'age', why: 'archives checked against the age CLI', for: TESTS},
  {name: 'openssh-client', why: 'ssh-keygen, for ssh-ed25519 recipients and the signing recipe', for: TESTS},
  {name: 'prometheus-pushgateway', why: 'a real Pushgateway for the metrics tests', for: ['test']},
  {name: 'time', why: 'peak RSS in the benchmarks', for: ['bench']},
  // A real S3 server (radosgw) for the s3:// tests and bench (OBJECT-STORAGE.md); started only by them.
  {name: 'ceph-mon', why: "the monitor of the one-host Ceph behind the S3 tests' radosgw", for: ['test', 'bench']},
  {name: 'ceph-osd', why: "the memstore OSD that holds the S3 tests' objects", for: ['test', 'bench']},
  {name: 'radosgw', why: 'a real S3 server (SigV4, multipart, ranged GETs) for the s3:// tests', for: ['test', 'bench']},
  {name: 'ceph-common', why: 'ceph, ceph-authtool, monmaptool and radosgw-admin to set that Ceph up', for: ['test', 'bench']},
]

/**
 * Test-only: package names (space- or comma-separated) added to every
 * command's list, so the preflight's own test can name one that is surely not
 * installed. Never set it otherwise: as root the preflight would install them.
 */
export const EXTRA_PACKAGES_VARIABLE = 'KUBESNAP_TEST_EXTRA_PACKAGES'

/** What the machine looks like to the preflight. */
export interface MachineState {
  /** Packages dpkg reports as installed; undefined when there is no dpkg-query (not Debian). */
  installed: ReadonlySet<string> | undefined
  /** Programs found on PATH, of those packages name in `unlessOnPath`. */
  onPath: ReadonlySet<string>
  root: boolean
}

/** What the preflight does. */
export type PreflightPlan =
  | {action: 'nothing'}
  | {action: 'install'; packages: string[]; line: string}
  | {action: 'stop'; message: string}

/** How a command is typed. */
export function commandLine(command: Command): string {
  return command === 'test' ? 'npm test' : `npm run ${command}`
}

/** The exact command that installs `packages`, as the sentence names it and the preflight runs it. */
export function installCommand(packages: readonly string[]): string[] {
  return ['apt-get', 'install', '-y', '--no-install-recommends', ...packages]
}

/** Decides what the preflight of `command` does on a machine: nothing, install the missing packages, or stop with a sentence. */
export function planPreflight(command: Command, packages: readonly DebianPackage[], machine: MachineState): PreflightPlan {
  const needed = packages.filter((p) => p.for.includes(command) && !(p.unlessOnPath && machine.onPath.has(p.unlessOnPath)))
  const {installed} = machine
  if (!installed) {
    return needed.length === 0 ? {action: 'nothing'} : {
      action: 'stop',
      message: `${commandLine(command)} needs these Debian packages and this machine has no dpkg-query: ${needed.map((p) => p.name).join(' ')}; run it on Debian 12 (bookworm), or install their equivalents by hand.`,
    }
  }
  const missing = needed.filter((p) => !installed.has(p.name))
  if (missing.length === 0) return {action: 'nothing'}
  const names = missing.map((p) => p.name)
  if (!machine.root) {
    return {
      action: 'stop',
      message: `${commandLine(command)} needs Debian packages that are not installed: run \`sudo ${installCommand(names).join(' ')}\`, then ${commandLine(command)} again.`,
    }
  }
  return {
    action: 'install',
    packages: names,
    line: `${commandLine(command)}: installing the Debian packages it needs with apt-get: ${missing.map((p) => `${p.name} (${p.why})`).join(', ')}`,
  }
}

/** Every package a preflight considers: PACKAGES, plus the test-only names of EXTRA_PACKAGES_VARIABLE in `env`. */
export function packagesFor(env: NodeJS.ProcessEnv = process.env): DebianPackage[] {
  const extra = (env[EXTRA_PACKAGES_VARIABLE] ?? '').split(/[\s,]+/).filter(Boolean)
  return [...PACKAGES, ...extra.map((name) => ({name, why: `named in ${EXTRA_PACKAGES_VARIABLE}`, for: [...new Set([...CLUSTER, ...TESTS])]}))]
}

/**
 * Runs `command`'s preflight: checks with dpkg-query which of its packages
 * are installed, installs the missing ones when root (one `apt-get update`,
 * then one `apt-get install`), or throws a SetupError naming the `sudo`
 * command. Call it before anything starts.
 */
export function ensurePackages(command: Command): void {
  const packages = packagesFor()
  const programs = [...new Set(packages.flatMap((p) => (p.unlessOnPath ? [p.unlessOnPath] : [])))]
  const state = (): MachineState => ({
    installed: installedPackages(packages.map((p) => p.name)),
    onPath: new Set(programs.filter(onPath)),
    root: process.getuid?.() === 0,
  })
  const plan = planPreflight(command, packages, state())
  if (plan.action === 'nothing') return
  if (plan.action === 'stop') throw new SetupError(plan.message)
  process.stderr.write(`${plan.line}\n`)
  // Another apt-get (a second command's preflight) may hold dpkg's lock: wait for it rather than fail.
  const wait = ['-o', 'DPkg::Lock::Timeout=300']
  // Once, so a fresh machine (no package lists yet) and a stale one both find today's versions.
  apt(['apt-get', ...wait, 'update'])
  const [aptGet, ...install] = installCommand(plan.packages)
  apt([aptGet, ...wait, ...install])
  // apt-get can exit 0 and still leave a package unconfigured; dpkg says what is really there.
  if (planPreflight(command, packages, state()).action !== 'nothing') {
    throw new SetupError(`apt-get exited 0 but dpkg does not list every package as installed: run \`${installCommand(plan.packages).join(' ')}\` by hand to see why.`)
  }
}

/** Runs an apt-get command, its output kept (not shown); on failure throws a SetupError with its last lines. */
function apt(argv: string[]): void {
  const result = spawnSync(argv[0], argv.slice(1), {
    env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'},
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  })
  if (result.status === 0) return
  const why = result.error ? result.error.message : `exit ${result.status ?? result.signal}`
  const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trimEnd().split('\n').slice(-10).join('\n')
  throw new SetupError(`\`${argv.join(' ')}\` failed (${why}): run it by hand to see why and fix it, then try again.${tail ? `\n${tail}` : ''}`)
}

/** The names among `names` that dpkg reports as installed, or undefined when dpkg-query is missing. */
function installedPackages(names: string[]): Set<string> | undefined {
  // Exit 1 and a stderr line for each unknown name are expected: only stdout counts.
  const result = spawnSync('dpkg-query', ['-W', '-f=${Package}\t${db:Status-Status}\n', ...names], {encoding: 'utf8'})
  if (result.error) return undefined
  const installed = new Set<string>()
  for (const line of result.stdout.split('\n')) {
    const [name, status] = line.split('\t')
    if (status === 'installed') installed.add(name)
  }
  return installed
}

/** Whether an executable `program` is on PATH. */
function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).some((dir) => {
    try {
      accessSync(path.join(dir, program), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}
