import {execFileSync} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {gunzipSync, createGunzip} from 'node:zlib'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ParallelGzip, compressBlock, incompressible} from './parallel-gzip.js'

/** Runs data through ParallelGzip in uneven chunks and returns the output. */
async function compress(data: Buffer, options: ConstructorParameters<typeof ParallelGzip>[0] = {}): Promise<Buffer> {
  return (await compressWith(data, options)).out
}

/** compress(), also returning the stream (for the input size and sha256 it took). */
async function compressWith(data: Buffer, options: ConstructorParameters<typeof ParallelGzip>[0] = {}): Promise<{out: Buffer; gzip: ParallelGzip}> {
  const gzip = new ParallelGzip(options)
  const chunks: Buffer[] = []
  const sizes = [1, 4096, 65_537, 300_000]
  await pipeline(
    Readable.from((function* () {
      for (let at = 0, i = 0; at < data.length; i++) {
        yield data.subarray(at, at + sizes[i % sizes.length])
        at += sizes[i % sizes.length]
      }
    })()),
    gzip,
    new Writable({write: (c: Buffer, _e, cb) => (chunks.push(c), cb())}),
  )
  return {out: Buffer.concat(chunks), gzip}
}

const mixed = Buffer.concat([randomBytes(700_000), Buffer.from('compressible text line\n'.repeat(60_000)), randomBytes(123)])

const cases: [string, Buffer, number][] = [
  ['empty input: one empty member', Buffer.alloc(0), 1024],
  ['smaller than a block', Buffer.from('hello\n'), 1024],
  ['exactly one block', randomBytes(4096), 4096],
  ['many blocks, a partial last one', mixed, 64 * 1024],
]

for (const [name, data, blockSize] of cases) {
  test(`parallel gzip: ${name}; gunzip and gzip -dc give back every byte in order`, async () => {
    const {out, gzip} = await compressWith(data, {blockSize, inFlight: 3})
    assert.ok(out.length > 0)
    // The raw size and sha256 the manifest records come from the stream itself.
    assert.is(gzip.size, data.length)
    assert.is(gzip.sha256(), createHash('sha256').update(data).digest('hex'))
    assert.ok(gunzipSync(out).equals(data))
    const cli = execFileSync('gzip', ['-dc'], {input: out, maxBuffer: 64 << 20})
    assert.is(createHash('sha256').update(cli).digest('hex'), createHash('sha256').update(data).digest('hex'))
  })
}

const KiB = 1024
const text = (n: number) => Buffer.from('a line of plain text that compresses well\n'.repeat(Math.ceil(n / 42))).subarray(0, n)

/** [case, block, judged incompressible, largest output/input ratio]. */
const blocks: [string, Buffer, boolean, number][] = [
  ['random bytes', randomBytes(256 * KiB), true, 1.001],
  ['text', text(256 * KiB), false, 0.01],
  ['zeros', Buffer.alloc(256 * KiB), false, 0.01],
  ['random with text in its middle', Buffer.concat([randomBytes(100 * KiB), text(56 * KiB), randomBytes(100 * KiB)]), false, 0.8],
  ['text with random in its middle', Buffer.concat([text(100 * KiB), randomBytes(56 * KiB), text(100 * KiB)]), false, 0.25],
  // The sample sees the text: compressed, for a small saving.
  ['random ending in 4 KiB of text', Buffer.concat([randomBytes(252 * KiB), text(4 * KiB)]), false, 0.99],
  ['a short random block (not judged: zlib stores it by itself)', randomBytes(8 * KiB), false, 1.01],
]

for (const [name, data, stored, maxRatio] of blocks) {
  test(`compressBlock: ${name} ${stored ? 'is stored' : 'is compressed'}; gunzip gives the block back`, async () => {
    assert.is(await incompressible(data, 1), stored)
    const member = await compressBlock(data, 1)
    assert.ok(gunzipSync(member).equals(data))
    // Stored, a member is its input plus gzip's header and trailer and a few bytes per stored deflate block.
    assert.ok(member.length <= data.length * maxRatio + 18, `${member.length} bytes for ${data.length}`)
  })
}

test('compressBlock: level 0 asks for nothing to be judged', async () => {
  assert.is(await incompressible(text(256 * KiB), 0), false)
  assert.ok(gunzipSync(await compressBlock(text(256 * KiB), 0)).equals(text(256 * KiB)))
})

test('parallel gzip: a streaming gunzip reads the members as one stream; the ratio stays close to one stream', async () => {
  const out = await compress(mixed, {blockSize: 256 * 1024})
  const back: Buffer[] = []
  await pipeline(Readable.from([out]), createGunzip(), new Writable({write: (c: Buffer, _e, cb) => (back.push(c), cb())}))
  assert.ok(Buffer.concat(back).equals(mixed))
  const single = execFileSync('gzip', ['-1', '-c'], {input: mixed, maxBuffer: 64 << 20})
  assert.ok(out.length < single.length * 1.02, `${out.length} bytes vs ${single.length} for one stream`)
})

test('parallel gzip: a slow reader holds the input back (at most inFlight blocks plus one)', async () => {
  const blockSize = 64 * 1024
  let produced = 0
  let consumed = 0
  let maxAhead = 0
  const source = Readable.from((function* () {
    for (let i = 0; i < 64; i++) {
      produced += blockSize
      yield randomBytes(blockSize)
    }
  })(), {highWaterMark: 1})
  const slow = new Writable({
    highWaterMark: 1,
    write(_chunk: Buffer, _e, cb) {
      consumed += blockSize
      maxAhead = Math.max(maxAhead, produced - consumed)
      setTimeout(cb, 5)
    },
  })
  await pipeline(source, new ParallelGzip({blockSize, inFlight: 2}), slow)
  assert.ok(maxAhead <= 8 * blockSize, `the input ran ${maxAhead / blockSize} blocks ahead`)
})

test.run()
