import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ApiError, ByteBuffer, type KubeApi, type RequestOptions} from './api.js'
import type {ResourceType} from './discovery.js'
import {BUILTIN_TYPES, listAll, listObjects, withTypeFields} from './paging.js'

const secrets: ResourceType = {group: '', version: 'v1', apiVersion: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, verbs: ['list'], shortNames: []}

const typed: [string, string, string][] = [
  ['a built-in item gets kind and apiVersion first, as a GET writes them', '{"metadata":{"name":"a"},"type":"Opaque"}', '{"kind":"Secret","apiVersion":"v1","metadata":{"name":"a"},"type":"Opaque"}'],
  ['an item that has both is left as sent', '{"apiVersion":"x.io/v1","kind":"Widget","metadata":{"name":"w"}}', '{"apiVersion":"x.io/v1","kind":"Widget","metadata":{"name":"w"}}'],
  ['an item with only kind gets apiVersion', '{"kind":"Secret","metadata":{}}', '{"apiVersion":"v1","kind":"Secret","metadata":{}}'],
  ['an empty item', '{}', '{"kind":"Secret","apiVersion":"v1"}'],
  ['an empty item with whitespace', '{ \n }', '{"kind":"Secret","apiVersion":"v1"}'],
  ['an item with whitespace after its brace', '{\n  "metadata": {"name": "b"}\n}', '{"kind":"Secret","apiVersion":"v1","metadata": {"name": "b"}\n}'],
]

for (const [name, json, expected] of typed) {
  test(`withTypeFields: ${name}`, () => {
    const listed = withTypeFields(secrets, JSON.parse(json), json)
    assert.is(listed.json, expected)
    assert.equal(listed.object, JSON.parse(expected))
  })
}

/** A KubeApi that answers list pages from a script: each answer is a list, an error, or raw text. */
function fakeApi(answers: (object | Error | string)[]): {api: KubeApi; queries: RequestOptions['query'][]} {
  const queries: RequestOptions['query'][] = []
  const api = {
    async getBytes(_path: string, into: ByteBuffer, options?: RequestOptions): Promise<Buffer> {
      queries.push(options?.query)
      const answer = answers.shift()
      if (answer === undefined) throw new Error('no more answers')
      if (answer instanceof Error) throw answer
      into.reset()
      const text = typeof answer === 'string' ? answer : JSON.stringify(answer)
      // In pieces, as a response arrives.
      for (let i = 0; i < text.length; i += 7) into.append(Buffer.from(text.slice(i, i + 7)))
      return into.bytes()
    },
  }
  return {api: api as unknown as KubeApi, queries}
}

const item = (name: string, extra: object = {}) => ({metadata: {name, uid: `uid-${name}`}, ...extra})

test('listAll follows continue tokens through pages of any size in one reused buffer', async () => {
  const {api, queries} = fakeApi([
    {metadata: {continue: 'p2'}, items: [item('a', {data: {big: 'x'.repeat(5000)}}), item('b')]},
    {metadata: {continue: 'p3'}, items: [item('c')]},
    {metadata: {}, items: [item('d', {data: {v: '{"]'}})]},
  ])
  const got: string[] = []
  for await (const {object, json} of listAll(api, secrets, {namespace: 'ns', limit: 2})) {
    assert.equal(JSON.parse(json), object)
    got.push(object.metadata!.name!)
  }
  assert.equal(got, ['a', 'b', 'c', 'd'])
  assert.equal(queries.map((q) => [q?.limit, q?.continue]), [[2, undefined], [2, 'p2'], [2, 'p3']])
})

test('listAll starts over after 410 Gone and yields no object twice', async () => {
  const gone = new ApiError('GET', '/api/v1/namespaces/ns/secrets', 410, undefined)
  const {api, queries} = fakeApi([
    {metadata: {continue: 'p2'}, items: [item('a'), item('b')]},
    gone,
    {metadata: {continue: 'q2'}, items: [item('a'), item('b')]},
    {metadata: {}, items: [item('c')]},
  ])
  const names: string[] = []
  for await (const {object} of listAll(api, secrets, {namespace: 'ns'})) names.push(object.metadata!.name!)
  assert.equal(names, ['a', 'b', 'c'])
  assert.equal(queries.map((q) => q?.continue), [undefined, 'p2', undefined, 'q2'])
  assert.is(queries[0]?.limit, 500, 'pages of 500 by default')
})

test('listAll rethrows 410 on the first page', async () => {
  const {api} = fakeApi([new ApiError('GET', '/x', 410, undefined)])
  try {
    for await (const _ of listAll(api, secrets)) break
    assert.unreachable('should throw')
  } catch (err) {
    assert.is((err as ApiError).statusCode, 410)
  }
})

test('listObjects gathers every page of a type into one array, with the selector on every page', async () => {
  const {api, queries} = fakeApi([
    {metadata: {continue: 'p2'}, items: [item('a'), item('b')]},
    {metadata: {}, items: [item('c')]},
  ])
  const pods = await listObjects(api, BUILTIN_TYPES.pods, {namespace: 'ns', labelSelector: 'app=db'})
  assert.equal(pods.map((p) => [p.kind, p.apiVersion, p.metadata?.name]), [['Pod', 'v1', 'a'], ['Pod', 'v1', 'b'], ['Pod', 'v1', 'c']])
  assert.equal(queries.map((q) => [q?.continue, q?.labelSelector]), [[undefined, 'app=db'], ['p2', 'app=db']])
})

const broken: [string, string][] = [
  ['a cut-off page', '{"items":[{"metadata":{"name":"a"}},{"meta'],
  ['an item that is not an object', '{"items":[42]}'],
  ['an item with a control character in a string', '{"items":[{"s":"a\nb"}]}'],
]

for (const [name, text] of broken) {
  test(`listAll reports ${name} as invalid JSON`, async () => {
    const {api} = fakeApi([text])
    try {
      for await (const _ of listAll(api, secrets, {namespace: 'ns'})) continue
      assert.unreachable('should throw')
    } catch (err) {
      assert.match((err as Error).message, /^GET \/api\/v1\/namespaces\/ns\/secrets returned invalid JSON: /)
    }
  })
}

test('ByteBuffer keeps its room across resets and holds only the latest answer', () => {
  const buffer = new ByteBuffer()
  buffer.append(Buffer.from('a'.repeat(100_000)))
  buffer.append(Buffer.from('b'))
  assert.is(buffer.bytes().length, 100_001)
  assert.is(buffer.bytes().at(-1), 'b'.charCodeAt(0))
  buffer.reset()
  buffer.append(Buffer.from('short'))
  assert.is(buffer.bytes().toString(), 'short')
  buffer.reset(200_000)
  assert.is(buffer.bytes().length, 0)
  buffer.append(Buffer.from('x'))
  assert.is(buffer.bytes().toString(), 'x')
})

test.run()
