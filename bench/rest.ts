/**
 * Benchmark: the CLI at rest. Peak RSS and wall time of commands that load
 * kubesnap but do no cluster work (`--version`, `--help`, `list DIR`): what
 * every cron run and every runbook step pays before it does anything; and
 * `check`, the least a command that talks to the cluster loads.
 */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import type {TestCluster} from '../test/cluster/index.js'
import {KUBESNAP_BIN} from '../test/helpers/cli.js'
import {measure} from './measure.js'
import {loadObjects} from './objects.js'

export interface RestFigure {
  command: string
  /** Lowest and highest of the runs. */
  peakRssMiB: [number, number]
  seconds: [number, number]
}

const RUNS = 3

/**
 * Measures each command `RUNS` times. `list` lists a snapshot of 100 objects
 * taken here and, when given, the directory of `archive` (the objects case's,
 * whose 3.5 MB manifest list reads one entry at a time); `check` runs on the
 * namespace of 100 objects as the namespace-only user.
 */
export async function benchRest(cluster: TestCluster, archive?: string): Promise<RestFigure[]> {
  const ns = await loadObjects(cluster, 100)
  const small = await snapshotOf(cluster, ns)
  const commands: {label: string; args: string[]}[] = [
    {label: '--version', args: ['--version']},
    {label: '--help', args: ['--help']},
    {label: 'list DIR (100 objects)', args: ['list', small]},
    ...(archive ? [{label: 'list DIR (10,000 objects)', args: ['list', dirname(archive)]}] : []),
    {label: 'check -n NS', args: ['check', '-n', ns, '--kubeconfig', cluster.kubeconfigs.user]},
  ]
  const figures: RestFigure[] = []
  for (const {label, args} of commands) {
    const runs = []
    for (let i = 0; i < RUNS; i++) {
      const run = await measure(process.execPath, [KUBESNAP_BIN, ...args])
      if (run.code !== 0) throw new Error(`kubesnap ${args.join(' ')} failed (exit ${run.code}): ${run.stderr}`)
      runs.push(run)
    }
    const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)]
    figures.push({command: label, peakRssMiB: range(runs.map((r) => r.peakRssMiB)), seconds: range(runs.map((r) => r.ms / 1000))})
  }
  return figures
}

/** A directory holding one snapshot of `ns`. */
async function snapshotOf(cluster: TestCluster, ns: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'kubesnap-bench-rest-'))
  const run = await measure(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', out, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
  if (run.code !== 0) throw new Error(`snapshot failed (exit ${run.code}): ${run.stderr}`)
  return out
}
