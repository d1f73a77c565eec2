/**
 * The selector grammar's table: the facts of apimachinery's own tests
 * (pkg/labels/selector_test.go: TestLexer, TestLexerSequence, TestSelectorParse,
 * TestSelectorMatches), so `-l` means locally what it means to the API server.
 */
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {lexSelector, matchesLabels, parseLabelSelector} from './label-selector.js'

const tokens: [string, string][] = [
  ['', 'end'],
  [',', ', end'],
  ['notin', 'notin end'],
  ['in', 'in end'],
  ['=', '= end'],
  ['==', '== end'],
  ['>', '> end'],
  ['<', '< end'],
  // The longest token wins: `!=` is one, `!` alone is "does not exist".
  ['!', '! end'],
  ['!=', '!= end'],
  ['(', '( end'],
  [')', ') end'],
  // Characters that are no operator are part of an identifier.
  ['~', 'identifier end'],
  ['||', 'identifier end'],
  ['key in ( value )', 'identifier in ( identifier ) end'],
  ['key notin ( value )', 'identifier notin ( identifier ) end'],
  ['key in ( value1, value2 )', 'identifier in ( identifier , identifier ) end'],
  ['!key', '! identifier end'],
  ['()', '( ) end'],
  ['x in (),y', 'identifier in ( ) , identifier end'],
  ['== != (), = notin', '== != ( ) , = notin end'],
  ['key>2', 'identifier > identifier end'],
  ['key<1', 'identifier < identifier end'],
  ['env in (a b)', 'identifier in ( identifier identifier ) end'],
]
for (const [text, expected] of tokens) {
  test(`lexes ${JSON.stringify(text)} as ${expected}`, () => {
    assert.is(lexSelector(text).map((s) => s.token).join(' '), expected)
  })
}

const labels = {app: 'db', tier: 'backend', env: 'prod', empty: '', replicas: '3', notin: 'in'}
const matches: [string, Record<string, string>, boolean][] = [
  ['', {x: 'y'}, true],
  ['x=y', {x: 'y'}, true],
  ['x=y,z=w', {x: 'y', z: 'w'}, true],
  ['x!=y,z!=w', {x: 'z', z: 'a'}, true],
  ['notin=in', {notin: 'in'}, true],
  ['x', {x: 'z'}, true],
  ['!x', {y: 'z'}, true],
  ['x>1', {x: '2'}, true],
  ['x<1', {x: '0'}, true],
  ['x=z', {}, false],
  ['x=y', {x: 'z'}, false],
  ['x=y,z=w', {x: 'w', z: 'w'}, false],
  ['x!=y,z!=w', {x: 'z', z: 'w'}, false],
  ['x', {y: 'z'}, false],
  ['!x', {x: 'z'}, false],
  ['x>1', {x: '0'}, false],
  ['x<1', {x: '2'}, false],
  ['x>1', {}, false],
  ['x>1', {x: 'many'}, false],
  ['foo=bar,baz=blah', {foo: 'bar', baz: 'blah'}, true],
  ['foo=blah', {foo: 'bar', baz: 'blah'}, false],
  ['foo=bar,foobar=bar,baz=blah', {foo: 'bar', baz: 'blah'}, false],
  ['app==db', labels, true],
  ['app = db', labels, true],
  ['missing!=x', labels, true],
  ['env in (prod, staging)', labels, true],
  ['env in (prod,staging)', labels, true],
  ['env notin (prod)', labels, false],
  ['env in (dev),app=db', labels, false],
  ['app in (db),env notin (dev, test)', labels, true],
  ['empty=', labels, true],
  ['empty in ()', labels, true],
  ['empty in (,a)', labels, true],
  ['env in (a,,b)', labels, false],
  ['replicas>2,replicas<4', labels, true],
  ['in in (db)', {in: 'db'}, true],
  ['example.com/team=a', {'example.com/team': 'a'}, true],
  ['  app=db ,  tier  ', labels, true],
]
for (const [selector, set, expected] of matches) {
  test(`${JSON.stringify(selector)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(set)}`, () => {
    assert.is(matchesLabels(parseLabelSelector(selector), set), expected)
  })
}

// apimachinery's TestSelectorParse good strings: all parse.
for (const good of ['x=a,y=b,z=c', '', 'x!=a,y=b', 'x=', 'x= ', 'x=,z= ', 'x= ,z= ', '!x', 'x>1', 'x>1,z<5']) {
  test(`${JSON.stringify(good)} parses`, () => {
    parseLabelSelector(good)
  })
}

const bad: [string, RegExp][] = [
  // apimachinery's TestSelectorParse bad strings.
  ['x=a||y=b', /"a\|\|y" is not a label value of x/],
  ['x==a==b', /"==" where "," or the end belongs/],
  ['!x=a', /"!x" takes no operator or value/],
  ['x<a', /"x <" needs a whole number/],
  // Values in a set are separated by commas, never by spaces.
  ['env in (a b)', /found "b" in the values of env, where "," or "\)" belongs/],
  ['env in (a', /found the end in the values of env/],
  ['env in prod', /"env in" needs its values in parentheses/],
  ['app=(db)', /found "\(" where a value belongs/],
  ['=x', /found "=" where a label name or "!" belongs/],
  ['app=db,', /found the end where a label name belongs after ","/],
  [',app=db', /found "," where a label name or "!" belongs/],
  ['app exists', /found "exists" where one of in, notin/],
  ['x>-1', /"-1" is not a label value of x/],
  ['x>9223372036854775808', /"x >" needs a whole number/],
  ['-app=db', /"-app" is not a label name/],
  ['Example.com/team=a', /"Example\.com\/team" is not a label name/],
  ['app=db.', /"db\." is not a label value of app/],
  [`app=${'a'.repeat(64)}`, /is not a label value of app/],
]
for (const [selector, reason] of bad) {
  test(`${JSON.stringify(selector)} is a usage error that says where`, () => {
    try {
      parseLabelSelector(selector)
      assert.unreachable()
    } catch (err) {
      assert.instance(err, KubesnapError)
      assert.is((err as KubesnapError).exitCode, 2)
      assert.match((err as Error).message, reason)
      assert.match((err as Error).message, /; use kubectl's syntax, e\.g\. /)
    }
  })
}

test.run()
