import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {UploadParts, type ReadyPart} from './upload-parts.js'

type Step = ['append', string] | ['hold', number, number] | ['rewrite', string, number] | ['finish']

/** Runs steps on parts of `size(n)` bytes; returns the parts in the order they became ready, as [number, text]. */
function run(size: (n: number) => number, steps: Step[]): Array<[number, string]> {
  const parts = new UploadParts(size)
  const out: ReadyPart[] = []
  for (const step of steps) {
    if (step[0] === 'append') {
      let rest = Buffer.from(step[1])
      while (rest.length > 0) {
        const n = Math.min(rest.length, parts.room)
        const ready = parts.append(rest.subarray(0, n))
        if (ready) out.push({number: ready.number, body: Buffer.from(ready.body)})
        rest = rest.subarray(n)
      }
    } else if (step[0] === 'hold') {
      parts.hold(step[1], step[2])
    } else if (step[0] === 'rewrite') {
      out.push(...parts.rewrite(Buffer.from(step[1]), step[2]).map((p) => ({number: p.number, body: Buffer.from(p.body)})))
    } else {
      const last = parts.finish()
      if (last) out.push({number: last.number, body: Buffer.from(last.body)})
    }
  }
  return out.map((p) => [p.number, p.body.toString()])
}

const four = () => 4

const cases: Array<[string, (n: number) => number, Step[], Array<[number, string]>]> = [
  ['no holds: parts in order, the last one short', four, [['append', 'abcdefghij'], ['finish']], [[1, 'abcd'], [2, 'efgh'], [3, 'ij']]],
  ['an object smaller than a part: one part, handed out by finish', four, [['append', 'ab'], ['finish']], [[1, 'ab']]],
  ['nothing written: one empty part (an empty PUT)', four, [['finish']], [[1, '']]],
  ['an exact multiple: no empty last part', four, [['append', 'abcdefgh'], ['finish']], [[1, 'abcd'], [2, 'efgh']]],
  [
    'a held header in part 1: parts 2 and 3 go first, part 1 once rewritten',
    four,
    [['append', 'a'], ['hold', 1, 2], ['append', '__cdefghijk'], ['rewrite', 'HH', 1], ['finish']],
    [[2, 'defg'], [3, 'hijk'], [1, 'aHHc']],
  ],
  [
    'a held range across two parts keeps both until its rewrite',
    four,
    [['hold', 3, 2], ['append', 'abc__fghijkl'], ['rewrite', 'XY', 3], ['finish']],
    [[3, 'ijkl'], [1, 'abcX'], [2, 'Yfgh']],
  ],
  [
    'a rewrite while the held part is still filling: it goes when full, with the new bytes',
    four,
    [['hold', 0, 1], ['append', '_b'], ['rewrite', 'A', 0], ['append', 'cdef'], ['finish']],
    [[1, 'Abcd'], [2, 'ef']],
  ],
  [
    'two holds in one part: the part waits for both',
    four,
    [['hold', 0, 1], ['hold', 2, 1], ['append', '_b_defgh'], ['rewrite', 'A', 0], ['rewrite', 'C', 2], ['finish']],
    [[2, 'efgh'], [1, 'AbCd']],
  ],
  ['growing parts: part n has n × 2 bytes', (n) => 2 * n, [['append', 'abcdefghijk'], ['finish']], [[1, 'ab'], [2, 'cdef'], [3, 'ghijk']]],
]

for (const [name, size, steps, expected] of cases) {
  test(`UploadParts: ${name}`, () => {
    assert.equal(run(size, steps), expected)
  })
}

test('UploadParts refuses what would corrupt the object: holding sent bytes, rewriting unheld ones, finishing with a hold open', () => {
  assert.throws(() => run(four, [['append', 'abcdefgh'], ['hold', 2, 1]]), /cannot hold bytes at 2: the part holding them \(from 8\) was already handed out/)
  assert.throws(() => run(four, [['append', 'abc'], ['rewrite', 'X', 1]]), /bytes 1-2 were not held once/)
  assert.throws(() => run(four, [['hold', 1, 1], ['append', 'abc'], ['rewrite', 'X', 1], ['rewrite', 'X', 1]]), /were not held once/)
  assert.throws(() => run(four, [['hold', 1, 1], ['append', 'abc'], ['finish']]), /bytes 1-2 were held and never rewritten/)
  assert.throws(() => run(four, [['append', 'ab'], ['rewrite', 'XYZ', 1]]), /past the end/)
})

test('UploadParts reuses the buffers of sent parts: a long upload allocates a handful', () => {
  const parts = new UploadParts(() => 8192)
  const seen = new Set<ArrayBufferLike>()
  const chunk = Buffer.alloc(8192, 1)
  for (let i = 0; i < 100; i++) {
    const ready = parts.append(chunk)!
    seen.add(ready.body.buffer)
    parts.recycle(ready.body)
  }
  assert.ok(seen.size <= 2, `${seen.size} buffers for 100 parts`)
})

test.run()
