/**
 * Runs a command as a child and measures what a user would feel: wall time
 * and peak resident memory (GNU time's maximum RSS), and what it cost the
 * machine: CPU-seconds, its own and its children's apart.
 */
import {mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'

export interface Measured {
  ms: number
  peakRssMiB: number
  /** CPU-seconds (user + system) of the command, every thread of it, and the children it waited for (GNU time's %U + %S). */
  cpuSeconds: number
  /** Of those, the children's: cutime + cstime in the command's /proc/PID/stat, as last seen (sampled every 100 ms). */
  childCpuSeconds: number
  stdout: string
  stderr: string
  code: number
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux, whatever the kernel's HZ). */
const USER_HZ = 100

/** Runs `command args` under /usr/bin/time and returns time, peak RSS, CPU-seconds and output. */
export async function measure(command: string, args: string[], options: {env?: NodeJS.ProcessEnv} = {}): Promise<Measured> {
  const rssFile = join(mkdtempSync(join(tmpdir(), 'kubesnap-bench-')), 'rss')
  const started = process.hrtime.bigint()
  const run = execa('/usr/bin/time', ['-f', '%M %U %S', '-o', rssFile, command, ...args], {reject: false, env: options.env, maxBuffer: 1024 ** 3})
  // GNU time forks the command: its pid is the process whose parent is time.
  let pid: number | undefined
  let children = 0
  const sampler = setInterval(() => {
    pid ??= childOf(run.pid!)
    const seen = pid === undefined ? undefined : childrenCpu(pid)
    if (seen !== undefined) children = seen
  }, 100)
  const r = await run
  clearInterval(sampler)
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const [kib, user, system] = readFileSync(rssFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
  return {ms, peakRssMiB: kib / 1024, cpuSeconds: user + system, childCpuSeconds: children, stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? 1}
}

/** The pid of a child of `parent`, from /proc (the kernel here offers no /proc/PID/task/TID/children). */
function childOf(parent: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = readStat(Number(name))
    if (stat && Number(stat[1]) === parent) return Number(name)
  }
  return undefined
}

/** CPU-seconds of the children `pid` has waited for, from /proc/PID/stat (cutime + cstime). */
function childrenCpu(pid: number): number | undefined {
  const f = readStat(pid)
  // Fields 16 and 17 of proc(5), counted here from field 3 (state) at index 0.
  return f ? (Number(f[13]) + Number(f[14])) / USER_HZ : undefined
}

/**
 * CPU-seconds (user + system) the test cluster's control plane has spent so
 * far: every kube-apiserver, etcd, controller-manager and scheduler process
 * whose command line names `clusterDir`. Two readings around a run give what
 * serving it cost the machine; on 2 cores, the client's CPU is taken from them.
 */
export function controlPlaneCpuSeconds(clusterDir: string): number {
  let ticks = 0
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8')
    } catch {
      continue
    }
    if (!cmdline.includes(clusterDir) || !/(^|\/)(kube-apiserver|etcd|kube-controller-manager|kube-scheduler)\0/.test(cmdline)) continue
    const f = readStat(Number(name))
    // Fields 14 and 15 of proc(5) (utime, stime), counted from field 3 (state) at index 0.
    if (f) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks / USER_HZ
}

/** The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses), or undefined when it is gone. */
function readStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** A fixed-width table row. */
export function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join('  ')
}
