/**
 * kubesnap from cron: `snapshot --config kubesnap.yaml` with no TTY and no
 * stdin, as the namespace-only user, against the test cluster. The plan's
 * paths are relative to the plan; the run prints plain timestamped lines (no
 * control characters), --quiet prints nothing, --prune applies the plan's
 * retention, an overlapping run exits 5, a bad plan exits 2 naming the line,
 * and a real Pushgateway shows every run's outcome.
 */
import {readdirSync, writeFileSync} from 'node:fs'
import {copyFile, mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap, type CliResult} from './helpers/cli.js'
import {scrape, startPushgateway, valueOf, type Gateway} from './helpers/pushgateway.js'

let cluster: TestCluster
let gateway: Gateway
let namespace: string

test.before(async () => {
  cluster = await sharedCluster()
  gateway = await startPushgateway()
  namespace = await cluster.createNamespace({prefix: 'cron', fixture: 'jenkins'})
})

test.after(async () => {
  await gateway?.stop()
  await cluster?.deleteNamespace(namespace)
})

/** A plan directory as an operator sets it up: the plan, the kubeconfig beside it, archives in ./backups. */
async function planDir(extra = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-cron-'))
  await copyFile(cluster.kubeconfigs.user, join(dir, 'kubeconfig'))
  await writeFile(join(dir, 'kubesnap.yaml'), `version: 1
namespace: ${namespace}
kubeconfig: kubeconfig
output: backups
retention:
  keepLast: 1
metrics:
  pushgateway: ${gateway.url}
${extra}`)
  return dir
}

/** As cron runs it: another working directory, no stdin, no TTY, no kubeconfig in the environment. */
function cron(args: string[]): Promise<CliResult> {
  return kubesnap(args, {cwd: tmpdir(), env: {CI: '', TERM: 'dumb', KUBECONFIG: '/nonexistent/kubeconfig', HOME: '/nonexistent'}})
}

const archives = (dir: string) => readdirSync(join(dir, 'backups')).filter((f) => f.endsWith('.kubesnap.tar')).sort()

/** Control characters other than newline: ANSI colours, cursor moves, carriage returns, spinners' backspaces. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f\u009b]/

test('a cron run of a plan: plain timestamped lines, the archive where the plan says, metrics pushed', async () => {
  const dir = await planDir()
  const r = await cron(['snapshot', '--config', join(dir, 'kubesnap.yaml')])
  assert.is(r.code, 0, r.stderr)
  assert.not.match(r.stdout + r.stderr, CONTROL)
  const lines = r.stderr.trimEnd().split('\n')
  assert.ok(lines.length >= 4, r.stderr)
  // listr2's plain renderer on stderr: every progress line has its event and time, beside the warnings.
  for (const line of lines) assert.match(line, /^(\[(STARTED|OUTPUT|COMPLETED)\] \[\d\d:\d\d:\d\d\] |Warning: )/)
  // stdout holds the result alone: the summary line.
  assert.match(r.stdout, new RegExp(`^Snapshot 1 of ${namespace} \\(complete\\): \\d+ objects, 2 volumes, \\d+ left out → ${dir}/backups/${namespace}-000001-\\S+\\n$`))
  assert.equal(archives(dir).length, 1)

  const samples = await scrape(gateway.url)
  const metric = (name: string, labels?: Record<string, string>) => valueOf(samples, name, namespace, labels)
  assert.is(metric('kubesnap_status', {status: 'success'}), 1)
  assert.is(metric('kubesnap_exit_code'), 0)
  assert.ok(metric('kubesnap_objects')! > 5)
  assert.is(metric('kubesnap_volumes'), 2)
  assert.ok(metric('kubesnap_archive_bytes')! > 10_000)
  assert.ok(Math.abs(metric('kubesnap_last_success_timestamp_seconds')! - Date.now() / 1000) < 120)
})

test('--quiet --prune: nothing printed, only the newest archive kept by the plan\'s keepLast 1', async () => {
  const dir = await planDir()
  const plan = join(dir, 'kubesnap.yaml')
  for (let i = 0; i < 2; i++) {
    const r = await cron(['snapshot', '--config', plan, '--quiet', '--prune'])
    assert.is(r.code, 0, r.stderr)
    assert.is(r.stdout, '')
    // Warnings still reach cron's mail (jenkins' cache claim goes through a helper pod).
    for (const line of r.stderr.split('\n').filter(Boolean)) assert.match(line, /^Warning: /)
  }
  const kept = archives(dir)
  assert.is(kept.length, 1)
  assert.match(kept[0], `${namespace}-000002-`)
})

test('an overlapping run fails at once with exit 5, and the gateway says so', async () => {
  const dir = await planDir()
  await mkdir(join(dir, 'backups'))
  writeFileSync(join(dir, 'backups/.kubesnap.lock'), JSON.stringify({pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString()}), {flag: 'w'})
  const r = await cron(['snapshot', '--config', join(dir, 'kubesnap.yaml'), '--quiet'])
  assert.is(r.code, 5)
  assert.is(r.stdout, '')
  assert.match(r.stderr, /^Error: Another kubesnap run \(pid \d+\) holds /)
  assert.is(r.stderr.trimEnd().split('\n').length, 1)
  const samples = await scrape(gateway.url)
  assert.is(valueOf(samples, 'kubesnap_status', namespace, {status: 'failed'}), 1)
  assert.is(valueOf(samples, 'kubesnap_exit_code', namespace), 5)
  // The success of the earlier runs still stands beside the failure.
  assert.ok(valueOf(samples, 'kubesnap_last_success_timestamp_seconds', namespace)! > 0)
})

test('a plan with mistakes exits 2 naming each line, before touching anything', async () => {
  const dir = await planDir('volumes:\n  strategy: rsync\nretention2: {}\n')
  const r = await cron(['snapshot', '--config', join(dir, 'kubesnap.yaml')])
  assert.is(r.code, 2)
  assert.is(r.stdout, '')
  const plan = join(dir, 'kubesnap.yaml')
  assert.is(r.stderr, `Error: ${plan} has 2 problems; fix them and run again:\n  ${plan}:10:13: volumes.strategy must be one of tar, csi, none, not "rsync".\n  ${plan}:11:1: retention2 is not a plan setting; did you mean retention?\n`)
  assert.throws(() => archives(dir), /ENOENT/)
})

test('flags override the plan: -o elsewhere, --volumes none', async () => {
  const dir = await planDir()
  const elsewhere = await mkdtemp(join(tmpdir(), 'kubesnap-cron-o-'))
  const r = await cron(['snapshot', '--config', join(dir, 'kubesnap.yaml'), '-o', elsewhere, '--volumes', 'none', '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.volumes, 0)
  assert.ok(r.json.path.startsWith(elsewhere))
  assert.ok(r.json.skipped.some((s: {name?: string; reason: string}) => s.reason === 'data not copied: its volume strategy is none'))
})

test.run()
