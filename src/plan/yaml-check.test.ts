import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {closest, describe, parseYamlFile, PlanError, YamlChecker} from './yaml-check.js'

/** A checker over a parsed text, for the tests. */
function checker(text: string): YamlChecker {
  const {doc, lines} = parseYamlFile(text, 'f.yaml')
  return new YamlChecker('f.yaml', doc, lines)
}

test('describe: plain values and YAML nodes read the same', () => {
  const c = checker('s: text\nn: 3\nb: true\nz:\nm: {a: 1}\nl: [1]\n')
  const rows: [string, unknown, string][] = [
    ['a string', 'text', '"text"'], ['a number', 3, '3'], ['a boolean', true, 'true'], ['null', null, 'nothing'], ['nothing', undefined, 'nothing'],
    ['a mapping', {a: 1}, 'a mapping'], ['a list', [1], 'a list'],
  ]
  for (const [name, value, expected] of rows) assert.is(describe(value), expected, name)
  const nodes: [string, string][] = [['s', '"text"'], ['n', '3'], ['b', 'true'], ['z', 'nothing'], ['m', 'a mapping'], ['l', 'a list']]
  for (const [key, expected] of nodes) assert.is(describe(c.doc.get(key, true)), expected, `node ${key}`)
})

test('closest: a known key within two edits, case aside, the nearest first', () => {
  const rows: [string, string[], string | undefined][] = [
    ['ouptut', ['output', 'namespace'], 'output'],
    ['keepdaily', ['keepDaily', 'keepLast'], 'keepDaily'],
    ['statsd', ['pushgateway'], undefined],
    ['resourceModifierRule', ['version', 'resourceModifierRules'], 'resourceModifierRules'],
    ['pre', ['pre', 'post'], 'pre'],
  ]
  for (const [key, known, expected] of rows) assert.is(closest(key, known), expected, key)
})

test('parseYamlFile: every syntax error with its place, what it is and what to do', () => {
  try {
    parseYamlFile('a: 1\na: 2\nb: [x\n', 'f.yaml')
    assert.unreachable()
  } catch (err) {
    assert.instance(err, PlanError)
    const {problems} = err as PlanError
    assert.ok(problems.length >= 2, problems.join('\n'))
    assert.is(problems[0], 'f.yaml:2:1: the file is not valid YAML (Map keys must be unique); fix its syntax.')
    for (const p of problems) assert.match(p, /^f\.yaml:\d+:\d+: the file is not valid YAML \(.+\); fix its syntax\.$/)
    assert.is((err as {exitCode: number}).exitCode, 2)
  }
})

test('problem: at a node, at a path, at the nearest node of a path that goes on past the file, at the file', () => {
  const c = checker('top:\n  list: [a, b]\n')
  c.problem(c.doc.getIn(['top', 'list'], true) as never, 'node')
  c.problem(['top', 'list', 1], 'path')
  c.problem(['top', 'missing', 'deeper'], 'missing')
  c.problem(undefined, 'file')
  assert.equal(c.problems, ['f.yaml:2:9: node', 'f.yaml:2:13: path', 'f.yaml:2:3: missing', 'f.yaml: file'])
})

test('items: a list node or a plain list, each element kept unless its check returns nothing; anything else is one problem', () => {
  const c = checker('l: [1, 2, 3]\ns: one\n')
  assert.equal(c.items([1, 2, 3], ['l'], 'l', (v) => (v === 2 ? undefined : v)), [1, 3])
  assert.equal(c.items(c.doc.get('l', true), ['l'], 'l', (_, i) => i), [0, 1, 2])
  assert.equal(c.items('one', ['s'], 'top.s', (v) => v), [])
  assert.equal(c.problems, ['f.yaml:2:4: top.s must be a list (lines starting with "- "), not "one".'])
})

test('unknownKey: named under its parent at the key, with the likely key or the known ones', () => {
  const c = checker('a:\n  colr: red\n  size: 3\n')
  c.unknownKey(c.keyAt(['a', 'colr']), 'a', 'colr', ['color', 'shape'], {one: 'setting', many: 'settings'})
  c.unknownKey(c.keyAt(['a', 'size']), 'a', 'size', ['color', 'shape'], {one: 'setting', many: 'settings'})
  c.unknownKey(undefined, '', undefined, ['x'], {one: 'field', many: 'fields'})
  assert.equal(c.problems, [
    'f.yaml:2:3: a.colr is not a setting; did you mean a.color?',
    'f.yaml:3:3: a.size is not a setting; the settings here are color, shape.',
    'f.yaml: this key is not a field; the fields here are x.',
  ])
})

test('finish: nothing recorded, nothing thrown; one problem is the message; several are listed', () => {
  const c = checker('a: 1\n')
  c.finish()
  c.problem(['a'], 'one')
  assert.throws(() => c.finish(), (err: Error) => err.message === 'f.yaml:1:4: one')
  c.problem(['a'], 'two')
  assert.throws(() => c.finish(), (err: Error) => err.message === 'f.yaml has 2 problems; fix them and run again:\n  f.yaml:1:4: one\n  f.yaml:1:4: two')
})

test.run()
