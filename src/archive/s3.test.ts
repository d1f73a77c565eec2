import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FIRST_PART_SIZE, uploadPartSize} from './s3.js'

const MiB = 1024 ** 2
const GiB = 1024 ** 3

test('uploadPartSize: 8 MiB parts, doubling every 1,000; 1 TiB fits in S3\'s 10,000 parts with parts under its 5 GiB', () => {
  const cases: Array<[number, number]> = [[1, 8 * MiB], [1000, 8 * MiB], [1001, 16 * MiB], [2000, 16 * MiB], [2001, 32 * MiB], [7001, 1 * GiB]]
  for (const [n, size] of cases) assert.is(uploadPartSize(n), size, `part ${n}`)
  assert.is(FIRST_PART_SIZE, 8 * MiB)
  let total = 0
  let parts = 0
  while (total < 1024 * GiB) total += uploadPartSize(++parts)
  assert.ok(parts < 10_000, `${parts} parts for 1 TiB`)
  assert.ok(uploadPartSize(parts) <= 5 * GiB)
  // S3's own ceiling, 5 TiB an object, is reached before the part count or size runs out.
  for (total = 0, parts = 0; total < 5 * 1024 * GiB; ) total += uploadPartSize(++parts)
  assert.ok(parts < 10_000 && uploadPartSize(parts) <= 5 * GiB, `${parts} parts for 5 TiB`)
})

test.run()
