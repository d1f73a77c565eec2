import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {scanList} from './list-scan.js'

/** The items' texts as the scan cuts them out. */
function itemTexts(text: string): string[] {
  const bytes = Buffer.from(text)
  return scanList(bytes).items.map((s) => bytes.toString('utf8', s.start, s.end))
}

// Each list: the scan must find exactly the items JSON.parse sees, each cut as valid JSON of it.
const lists: [string, string][] = [
  ['no items', '{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[]}'],
  ['an empty object', '{}'],
  ['items null', '{"metadata":{},"items":null}'],
  ['empty items', '{"items":[{},{}, {} ]}'],
  ['nested braces and brackets', '{"items":[{"a":{"b":{"c":[1,[2,{"d":[]}]]}}},{"e":[[[]]]}]}'],
  ['braces and brackets in strings', '{"items":[{"s":"}{][","t":"{\\"items\\":[1]}"},{"u":"]"}]}'],
  ['escaped quotes', '{"items":[{"q":"say \\"hi\\""},{"k\\"ey":"v"}]}'],
  ['backslashes before a closing quote', '{"items":[{"a":"C:\\\\"},{"b":"\\\\\\\\"},{"c":"\\\\\\"}\\\\"}]}'],
  ['unicode', '{"items":[{"name":"café ☕ 𝄞 日本"},{"esc":"\\u00e9\\ud834\\udd1e\\u2028"},{"ключ":"значение"}]}'],
  ['whitespace everywhere', ' \n{ "kind" : "List" ,\r\n\t"items" : [ { "a" : 1 } ,\n {\n"b":[ 2 , 3 ] }\n ] , "metadata" : { "continue" : "x" } }\n'],
  ['scalars around items', '{"n":-1.5e+3,"t":true,"f":false,"z":null,"items":[{"x":0}],"after":"s"}'],
  ['items that are not objects', '{"items":[1,"two",null,[3],true]}'],
  ['a repeated items key', '{"items":[{"old":1}],"items":[{"new":2}]}'],
  ['items before metadata', '{"items":[{"a":1}],"metadata":{"continue":"tok","remainingItemCount":3}}'],
]

for (const [name, text] of lists) {
  test(`scanList finds the items of a list with ${name}`, () => {
    const expected = (JSON.parse(text) as {items?: unknown[] | null}).items ?? []
    const texts = itemTexts(text)
    assert.equal(texts.map((t) => JSON.parse(t)), expected)
    for (const t of texts) assert.is(t, t.trim(), 'cut without surrounding whitespace')
  })
}

test('scanList parses the metadata with its continue token', () => {
  const list = scanList(Buffer.from('{"metadata":{"resourceVersion":"9","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ","remainingItemCount":12},"items":[{}]}'))
  assert.equal(list.metadata, {resourceVersion: '9', continue: 'eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ', remainingItemCount: 12})
  assert.is(list.items.length, 1)
})

test('scanList cuts items byte for byte as they were sent', () => {
  // Large integers and escapes that a parse and re-stringify would change.
  const item = '{"n":12345678901234567890,"s":"\\u003cb\\u003e","f":1.0}'
  assert.equal(itemTexts(`{"items":[${item}, ${item}]}`), [item, item])
  assert.is.not(JSON.stringify(JSON.parse(item)), item)
})

test('scanList finds 500 items of a large page', () => {
  const items = Array.from({length: 500}, (_, i) => ({metadata: {name: `obj-${i}`, uid: `u-${i}`}, data: {value: 'x{"]'.repeat(i * 10)}}))
  const texts = itemTexts(JSON.stringify({kind: 'ConfigMapList', apiVersion: 'v1', metadata: {continue: 'c'}, items}))
  assert.is(texts.length, 500)
  assert.equal(JSON.parse(texts[499]), items[499])
})

const invalid: [string, string][] = [
  ['nothing', ''],
  ['an array', '[{"a":1}]'],
  ['a cut-off page', '{"items":[{"a":"b"},{"c":'],
  ['a cut-off string', '{"items":[{"a":"b'],
  ['an unclosed item', '{"items":[{"a":{"b":1}]}'],
  ['a mismatched bracket', '{"items":[{"a":[1}]}'],
  ['a missing comma', '{"items":[{"a":1} {"b":2}]}'],
  ['a missing colon', '{"items" [{}]}'],
  ['an unquoted key', '{items:[]}'],
  ['trailing bytes', '{"items":[]} {}'],
  ['an invalid scalar', '{"kind":tru,"items":[]}'],
  ['invalid metadata', '{"metadata":{"continue":},"items":[]}'],
  ['a trailing comma', '{"items":[],}'],
]

for (const [name, text] of invalid) {
  test(`scanList rejects ${name}`, () => {
    assert.throws(() => scanList(Buffer.from(text)), (err: Error) => err instanceof SyntaxError)
  })
}

test.run()
