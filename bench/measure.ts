/**
 * Runs a command as a child and measures what a user would feel: wall time
 * and peak resident memory (GNU time's maximum RSS).
 */
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'

export interface Measured {
  ms: number
  peakRssMiB: number
  stdout: string
  stderr: string
  code: number
}

/** Runs `command args` under /usr/bin/time and returns time, peak RSS and output. */
export async function measure(command: string, args: string[], options: {env?: NodeJS.ProcessEnv} = {}): Promise<Measured> {
  const rssFile = join(mkdtempSync(join(tmpdir(), 'kubesnap-bench-')), 'rss')
  const started = process.hrtime.bigint()
  const r = await execa('/usr/bin/time', ['-f', '%M', '-o', rssFile, command, ...args], {reject: false, env: options.env, maxBuffer: 1024 ** 3})
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  const kib = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop())
  return {ms, peakRssMiB: kib / 1024, stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? 1}
}

/** A fixed-width table row. */
export function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 12)).join('  ')
}
