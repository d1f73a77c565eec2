/**
 * `npm test`: starts one real control plane for the whole run, runs every
 * `*.test.ts` under uvu against it, stops it (also on failure or Ctrl-C), and
 * ends with the line `N passed, N failed`.
 *
 * `npm test -- PATTERN` runs only the test files whose path matches PATTERN.
 */
import {spawn} from 'node:child_process'
import {join} from 'node:path'
import {startTestCluster, type TestCluster} from './cluster/index.js'

const root = join(import.meta.dirname, '..')
const pattern = process.argv[2] ?? ''

/** Runs uvu in a child (test/uvu.ts) so a crashing test cannot take the cluster teardown with it. */
function runUvu(env: NodeJS.ProcessEnv): Promise<{code: number; output: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      '--import', 'tsx', join(root, 'test/uvu.ts'), '.', `(?:${pattern}).*\\.test\\.ts$`,
      'node_modules', '^dist', '^\\.git',
    ], {cwd: root, env: {...env, FORCE_COLOR: '1'}, stdio: ['ignore', 'pipe', 'inherit']})
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk)
      output += chunk.toString()
    })
    child.on('close', (code) => resolve({code: code ?? 1, output}))
  })
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
try {
  const started = Date.now()
  cluster = await startTestCluster()
  console.log(`test cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${cluster.server}`)
  const {code, output} = await runUvu({...process.env, KUBESNAP_TEST_CLUSTER: join(cluster.dir, 'cluster.json')})
  result = summarize(output, code)
} catch (err) {
  console.error(err)
} finally {
  await stop()
}
console.log(`${result.passed} passed, ${result.failed} failed${result.skipped ? `, ${result.skipped} skipped` : ''}`)
process.exit(result.failed === 0 ? 0 : 1)
