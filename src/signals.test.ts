import {spawn} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'

/** Runs `body` (a module's text, with `signals` imported) in a child; resolves once it printed `ready`. */
async function child(dir: string, body: string) {
  const script = join(dir, 'run.mts')
  await writeFile(script, `import * as signals from ${JSON.stringify(new URL('./signals.ts', import.meta.url).pathname)}\n${body}\nconsole.log('ready')\nsetInterval(() => {}, 1000)\n`)
  const proc = spawn(process.execPath, ['--import', 'tsx', script], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()))
  const exit = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => proc.on('exit', (code, signal) => resolve({code, signal})))
  return {proc, exit}
}

test('interruptOnSignals aborts with the signal as reason; the work cleans up, then endBySignal ends the process by that signal', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-signals-'))
  try {
    const marker = join(dir, 'cleaned')
    const {proc, exit} = await child(dir, `
import {writeFileSync} from 'node:fs'
const interrupt = signals.interruptOnSignals()
interrupt.signal.addEventListener('abort', () => setTimeout(() => {
  writeFileSync(${JSON.stringify(marker)}, \`\${interrupt.received}: \${interrupt.signal.reason.message}\`)
  interrupt.stop()
  signals.endBySignal(interrupt.received)
}, 100))`)
    proc.kill('SIGTERM')
    assert.equal(await exit, {code: null, signal: 'SIGTERM'})
    assert.is(await readFile(marker, 'utf8'), 'SIGTERM: interrupted by SIGTERM', 'the cleanup ran before the process ended')
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test('a second signal during the cleanup ends the process at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-signals-'))
  try {
    // The cleanup never finishes: the user's second Ctrl-C must still end the run.
    const {proc, exit} = await child(dir, `
const interrupt = signals.interruptOnSignals()
interrupt.signal.addEventListener('abort', () => console.log('stopping'))`)
    const stopping = new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()))
    proc.kill('SIGINT')
    await stopping
    proc.kill('SIGINT')
    assert.equal(await exit, {code: null, signal: 'SIGINT'})
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
})

test.run()
