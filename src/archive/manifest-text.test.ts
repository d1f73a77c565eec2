import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {splitManifestJson} from './manifest-text.js'

/** What the split gives back joined: the head with its entries as JSON.parse would have them. */
function parsedBySplit(text: string): unknown {
  const {head, entries} = splitManifestJson(Buffer.from(text))
  if (entries === undefined || head === null || typeof head !== 'object' || Array.isArray(head)) return head
  return {...head, entries: [...entries]}
}

// Each text must give exactly what JSON.parse gives, or fail where JSON.parse fails.
const texts: Array<[string, string]> = [
  ['entries split off', '{"a":1,"entries":[{"x":1},{"y":[1,{"z":"]"}]}],"b":2}'],
  ['no entries', '{"a":1}'],
  ['empty entries', '{"entries":[  ]}'],
  ['entries first and last key', '{"entries":[1,2,3]}'],
  ['whitespace everywhere', ' { "entries" :\n [ {"a" : "b"} ,\t{ } ] , "c" : [ ] } '],
  ['brackets, commas and quotes inside strings', '{"entries":[{"s":"a,b]}[{\\"\\\\"},"t\\\\"],"k":"entries"}'],
  ['a nested key named entries is not split', '{"x":{"entries":[1,2]},"entries":[3]}'],
  ['entries not a list', '{"entries":{"a":[1,2]}}'],
  ['a repeated entries key: the last wins', '{"entries":[1],"entries":[2,3]}'],
  ['an escaped key that decodes to entries', '{"entr\\u0069es":[1,2]}'],
  ['multi-byte UTF-8 in entries and keys', '{"ключ":"значение","entries":[{"name":"日本語,[]"},"😀"]}'],
  ['a top-level list', '["entries",[1,2]]'],
  ['a string value before a list is no key', '{"a":"entries","b":[1]}'],
  ['an empty element', '{"entries":[1,,2]}'],
  ['a leading comma', '{"entries":[,1]}'],
  ['a trailing comma', '{"entries":[1,]}'],
  ['a missing comma', '{"entries":[1 2]}'],
  ['a list closed by a brace', '{"entries":[1,2}'],
  ['an unclosed list', '{"entries":[1,2'],
  ['an unterminated string in an element', '{"entries":["abc]}'],
  ['an invalid element', '{"entries":[{"a":tru}]}'],
  ['no colon before the list', '{"entries" [1]}'],
  ['garbage after the object', '{"entries":[1]} x'],
  ['a non-JSON space in an empty list', '{"entries":[\u00a0]}'],
  ['not JSON at all', 'kubesnap'],
  ['empty', ''],
]

for (const [name, text] of texts) {
  test(`splitManifestJson: ${name}`, () => {
    let expected: unknown
    try {
      expected = JSON.parse(text)
    } catch {
      assert.throws(() => parsedBySplit(text), (err: unknown) => err instanceof SyntaxError)
      return
    }
    assert.equal(parsedBySplit(text), expected)
  })
}

test('splitManifestJson: parses an element only when iteration reaches it', () => {
  const {entries} = splitManifestJson(Buffer.from('{"entries":[1,{bad}]}'))
  const it = entries![Symbol.iterator]()
  assert.equal(it.next().value, 1)
  assert.throws(() => it.next(), (err: unknown) => err instanceof SyntaxError)
})

test.run()
