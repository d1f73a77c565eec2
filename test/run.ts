/**
 * `npm test`: runs every `*.test.ts` under uvu against one real control plane
 * started for the whole run, stops it (also on failure or Ctrl-C), and ends
 * with the line `N passed, N failed`.
 *
 * `npm test -- PATTERN` runs only the test files whose path matches PATTERN;
 * when none of them needs the cluster, none is started.
 *
 * `npm run test:unit [-- PATTERN]` (`--unit`) runs only the unit tests (see
 * isUnitTest): no cluster, in seconds.
 *
 * Test files run two at a time (KUBESNAP_TEST_JOBS), each in its own
 * process; a file with the line `// npm test: runs alone` runs after them,
 * by itself (see runAll).
 *
 * First of all, the preflight (cluster/packages.ts) installs the Debian
 * packages the run needs, or stops. A set-up failure (a package missing and
 * not root, a failed build, a port, the cache directory) is one sentence on
 * stderr, then `0 passed, 1 failed` and exit code 2.
 */
import {spawn} from 'node:child_process'
import {readFileSync, statSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {parseArgs} from 'node:util'
import {parse} from 'uvu/parse'
import {binaryDir} from './cluster/controlplane.js'
import {SHARED_RUN_VARIABLE, startTestCluster, type TestCluster} from './cluster/index.js'
import {ensurePackages} from './cluster/packages.js'
import {SetupError, setupFailureMessage} from './cluster/setup-error.js'

const root = join(import.meta.dirname, '..')

/** The run's arguments, `[--unit] [PATTERN]`, or a SetupError saying what they should be. */
function runArgs(): {unit: boolean; pattern: string} {
  const usage = 'give at most one PATTERN, a regular expression matching test file paths, e.g. `npm test -- \'archive|restore\'`'
  let parsed
  try {
    parsed = parseArgs({options: {unit: {type: 'boolean', default: false}}, allowPositionals: true})
  } catch {
    throw new SetupError(`Unknown arguments ${JSON.stringify(process.argv.slice(2).join(' '))}: ${usage}.`)
  }
  const {values, positionals} = parsed
  if (positionals.length > 1) throw new SetupError(`${positionals.length} patterns given: ${usage}.`)
  const pattern = positionals[0] ?? ''
  try {
    new RegExp(pattern)
  } catch (err) {
    throw new SetupError(`${JSON.stringify(pattern)} is not a regular expression (${(err as Error).message}): ${usage}.`)
  }
  return {unit: values.unit, pattern}
}

/**
 * Whether a test file is a unit test: the tests beside kubesnap's own modules
 * (`src/`, `fixtures/`), and anywhere else a file named `*.unit.test.ts`.
 * A unit test exercises kubesnap's modules in-process: it needs no test
 * cluster and runs no kubesnap CLI (small tools such as age may run beside
 * it); KUBESNAP_TEST_UNIT makes a cluster start fail in a unit run.
 */
export function isUnitTest(file: string): boolean {
  return /^(src|fixtures)\//.test(file) || file.endsWith('.unit.test.ts')
}

/** The test files to run, relative to the project root, in uvu's order. */
async function testFiles(flags: {unit: boolean; pattern: string}): Promise<string[]> {
  const {pattern} = flags
  const {suites} = await parse(root, `(?:${pattern}).*\\.test\\.ts$`, {ignore: ['node_modules', '^dist', '^\\.git']})
  const files = suites.map((s) => s.name)
  return flags.unit ? files.filter(isUnitTest) : files
}

/** Runs uvu on `files` in a child (test/uvu.ts) so a crashing test cannot take the cluster teardown with it; its output is returned, not printed. */
function runUvu(files: string[], env: NodeJS.ProcessEnv): Promise<{code: number; output: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/uvu.ts'), ...files],
      {cwd: root, env: {...env, FORCE_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('close', (code) => resolve({code: code ?? 1, output}))
  })
}

/** A file that must have the cluster to itself says so on a line of its own (it cordons the shared node, say). */
const ALONE_MARKER = /^\/\/ npm test: runs alone\b/m

/** How many test files run at once: KUBESNAP_TEST_JOBS, default 2 (the suite mostly waits on the cluster, not the CPU). */
export function testJobs(value = process.env.KUBESNAP_TEST_JOBS): number {
  if (value === undefined || value === '') return 2
  const jobs = Number(value)
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 16) throw new SetupError(`KUBESNAP_TEST_JOBS=${value} is not a number of parallel test files from 1 to 16; unset it for the default of 2.`)
  return jobs
}

/** Where the last run's duration of each batch is kept, to start the longest first. */
const durationsFile = () => join(dirname(binaryDir()), 'test-durations.json')

/**
 * Runs the files in batches, `jobs` batches at a time, each batch in its own
 * uvu process against the same cluster (test files share nothing but the
 * cluster: each makes its own namespaces). The unit tests are one batch (they
 * take milliseconds each, a process of their own would cost more); every
 * other file is a batch of its own. Batches start longest first, by the last
 * run's durations (else by size); files marked ALONE_MARKER run afterwards,
 * one at a time. Each batch's output is printed whole when it ends; returns
 * the totals of all of them.
 */
async function runAll(files: string[], env: NodeJS.ProcessEnv, jobs: number): Promise<{passed: number; failed: number; skipped: number}> {
  const known: Record<string, number> = await readFile(durationsFile(), 'utf8').then((t) => JSON.parse(t) as Record<string, number>, () => ({}))
  const alone = files.filter((file) => ALONE_MARKER.test(readFileSync(join(root, file), 'utf8')))
  const units = files.filter((file) => isUnitTest(file) && !alone.includes(file))
  const batches = [...(units.length > 0 ? [units] : []), ...files.filter((file) => !isUnitTest(file) && !alone.includes(file)).map((file) => [file])]
  const label = (batch: string[]) => (batch.length === 1 ? batch[0] : `${batch.length} unit test files`)
  const estimate = (batch: string[]) => known[label(batch)] ?? batch.reduce((sum, file) => sum + statSync(join(root, file)).size, 0)
  const pool = batches.sort((a, b) => estimate(b) - estimate(a))
  const totals = {passed: 0, failed: 0, skipped: 0}
  const durations: Record<string, number> = {...known}
  const runBatch = async (batch: string[], shared: boolean) => {
    const started = Date.now()
    const {code, output} = await runUvu(batch, shared ? {...env, [SHARED_RUN_VARIABLE]: '1'} : env)
    const seconds = (Date.now() - started) / 1000
    durations[label(batch)] = seconds
    const r = summarize(output, code)
    totals.passed += r.passed
    totals.failed += r.failed
    totals.skipped += r.skipped
    // uvu's own totals are per batch here; the run's are the last line.
    process.stdout.write(`${output.replace(/\n\s*Total:[\s\S]*$/, '\n')}  ${label(batch)}: ${r.passed} passed, ${r.failed} failed in ${seconds.toFixed(1)} s\n`)
  }
  const worker = async () => {
    for (let batch = pool.shift(); batch !== undefined; batch = pool.shift()) await runBatch(batch, jobs > 1)
  }
  await Promise.all(Array.from({length: Math.min(jobs, pool.length)}, worker))
  for (const file of alone) await runBatch([file], false)
  await mkdir(dirname(binaryDir()), {recursive: true}).then(() => writeFile(durationsFile(), JSON.stringify(durations, null, 2) + '\n')).catch(() => {})
  return totals
}

/** Reads uvu's totals; a run that died before printing them counts as one failure. */
export function summarize(output: string, code: number): {passed: number; failed: number; skipped: number} {
  // eslint-disable-next-line no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '')
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN)
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN)
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0)
  if (!Number.isFinite(total) || !Number.isFinite(passed)) return {passed: 0, failed: 1, skipped: 0}
  const failed = total - passed - skipped
  return {passed, failed: failed === 0 && code !== 0 ? 1 : failed, skipped}
}

let cluster: TestCluster | undefined
const stop = async () => {
  await cluster?.stop().catch((err: unknown) => console.error(`stopping the test cluster failed: ${String(err)}`))
  cluster = undefined
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stop().then(() => process.exit(130))
  })
}

let result = {passed: 0, failed: 1, skipped: 0}
let exitCode: number | undefined
const env: NodeJS.ProcessEnv = {...process.env}
try {
  const flags = runArgs()
  const files = await testFiles(flags)
  if (files.length === 0) throw new SetupError(`No ${flags.unit ? 'unit ' : ''}test file matches ${JSON.stringify(flags.pattern)}: give part of a test file's path, e.g. \`npm test -- archive\`.`)
  const needsCluster = files.some((file) => !isUnitTest(file))
  ensurePackages(needsCluster ? 'test' : 'test:unit')
  if (needsCluster) {
    const started = Date.now()
    cluster = await startTestCluster()
    console.log(`test cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${cluster.server}`)
    env.KUBESNAP_TEST_CLUSTER = join(cluster.dir, 'cluster.json')
  } else {
    env.KUBESNAP_TEST_UNIT = '1'
  }
  const started = Date.now()
  result = await runAll(files, env, testJobs())
  console.log(`${files.length} test files in ${((Date.now() - started) / 1000).toFixed(0)} s`)
} catch (err) {
  // Nothing ran yet: whatever failed was setting up.
  console.error(setupFailureMessage(err))
  exitCode = 2
} finally {
  await stop()
}
console.log(`${result.passed} passed, ${result.failed} failed${result.skipped ? `, ${result.skipped} skipped` : ''}`)
process.exit(exitCode ?? (result.failed === 0 ? 0 : 1))
