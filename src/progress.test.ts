import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {taskList, type ProgressOptions} from './progress.js'

/** Runs a two-step task list and returns what it wrote to stdout and to stderr. */
async function render(options: ProgressOptions): Promise<{stdout: string; stderr: string}> {
  const written = {stdout: '', stderr: ''}
  const original = {stdout: process.stdout.write, stderr: process.stderr.write}
  process.stdout.write = ((chunk: string | Uint8Array) => ((written.stdout += String(chunk)), true)) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => ((written.stderr += String(chunk)), true)) as typeof process.stderr.write
  try {
    await taskList([
      {title: 'Verify the archive', task: async (_ctx, task) => {
        task.output = '1.0 MiB of 2.0 MiB verified (50%)'
        task.title = 'Verified the archive'
      }},
      {title: 'Restore objects', task: async () => {}},
    ], options).run()
  } finally {
    process.stdout.write = original.stdout
    process.stderr.write = original.stderr
  }
  return written
}

test('plain progress (not a terminal) goes to stderr, timestamped and uncoloured; stdout stays the result\'s', async () => {
  // The test runner sets FORCE_COLOR: listr2 would colour these lines if kubesnap let it.
  const {stdout, stderr} = await render({json: false, tty: false})
  assert.is(stdout, '')
  const lines = stderr.trimEnd().split('\n')
  assert.equal(lines.map((l) => l.replace(/\[\d\d:\d\d:\d\d\]/, '[T]')), [
    '[STARTED] [T] Verify the archive',
    '[OUTPUT] [T] 1.0 MiB of 2.0 MiB verified (50%)',
    '[COMPLETED] [T] Verified the archive',
    '[STARTED] [T] Restore objects',
    '[COMPLETED] [T] Restore objects',
  ])
})

test('--json and --quiet show no progress at all', async () => {
  for (const options of [{json: true, tty: false}, {json: false, quiet: true, tty: false}, {json: false, quiet: true, tty: true}]) {
    assert.equal(await render(options), {stdout: '', stderr: ''}, JSON.stringify(options))
  }
})

test.run()
