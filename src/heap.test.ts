import {execFileSync} from 'node:child_process'
import {test} from 'uvu'
import * as assert from 'uvu/assert'

/**
 * The size of V8's new space (MiB) in a fresh Node before and after it keeps
 * 40 MiB of objects alive while allocating them, with keepYoungGenerationSmall
 * called first or not: a child, so the setting acts on a process of its own.
 */
function newSpaceAroundSurvivors(small: boolean): {before: number; after: number} {
  const script = `
    import v8 from 'node:v8'
    import {keepYoungGenerationSmall} from './src/heap.ts'
    if (${small}) keepYoungGenerationSmall()
    const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1024 / 1024
    const before = newSpace()
    const kept = []
    for (let i = 0; i < 400_000; i++) kept.push({i, s: 'x'.repeat(64) + i})
    process.stdout.write(JSON.stringify({before, after: newSpace(), kept: kept.length}))
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {encoding: 'utf8'})
  return JSON.parse(out)
}

test('keepYoungGenerationSmall: the young generation keeps its size however much survives', () => {
  // Without it, the same program grows it (so this Node honours the setting, and the test can fail).
  const grown = newSpaceAroundSurvivors(false)
  assert.ok(grown.after >= 4 * grown.before, `new space without the setting: ${JSON.stringify(grown)} MiB`)
  const kept = newSpaceAroundSurvivors(true)
  assert.equal(kept.after, kept.before, `new space with the setting: ${JSON.stringify(kept)} MiB`)
})

test.run()
