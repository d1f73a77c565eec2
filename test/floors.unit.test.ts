/**
 * The floors of src/, bottom up, and the test that every import points down a
 * floor (or within its own unit, or sideways where the table below says why).
 * A violation is listed as `from → to`, so the message says what to move.
 * Only kubesnap's modules are checked, not the tests beside them (a test may
 * build its fixtures with anything). What the CLI loads at run time is
 * test/module-graph.test.ts's job, not this one's.
 */
import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import ts from 'typescript'
import {test} from 'uvu'
import * as assert from 'uvu/assert'

const SRC = join(import.meta.dirname, '..', 'src')

/** A floor of src/: its name and its units, a folder (`cluster/`), each file of a folder on its own (`commands/*`), or a file (`errors.ts`). */
interface Floor {
  name: string
  units: string[]
}

/** The floors, bottom up: a module imports from its own unit, from any lower floor, and sideways only as SIDEWAYS allows. README's Architecture section shows this table. */
const FLOORS: Floor[] = [
  {name: 'base', units: ['errors.ts', 'format.ts', 'heap.ts', 'json-scan.ts', 'labels.ts', 'names.ts', 'signals.ts']},
  {name: 'cluster and archive', units: ['cluster/', 'archive/']},
  {name: 'producers and consumers', units: ['resources/', 'volumes/', 'dumps/', 'rbac/', 'plan/', 'metrics/']},
  {name: 'pipelines', units: ['snapshot/', 'restore/']},
  {name: 'CLI', units: ['commands/*', 'base-command.ts', 'flags.ts', 'progress.ts', 'encryption.ts', 'signing.ts']},
]

/** Imports within a floor from one unit to another that are allowed, with the reason. */
const SIDEWAYS: Array<{from: string; to: string; why: string}> = [
  {from: 'plan/', to: 'dumps/', why: 'a plan file holds dumps and hooks in their own syntax, checked by their parser'},
  {from: 'plan/', to: 'volumes/', why: 'a plan file names a volume strategy and the helper image'},
  {from: 'rbac/', to: 'resources/', why: 'the rights kubesnap needs follow the types it collects and restores'},
  {from: 'rbac/', to: 'volumes/', why: 'check asks the API server whether a helper pod would be admitted'},
  {from: 'commands/*', to: 'base-command.ts', why: 'every command is a KubesnapCommand'},
  {from: 'commands/*', to: 'flags.ts', why: 'options shared by several commands'},
  {from: 'commands/*', to: 'progress.ts', why: 'the progress display and --quiet'},
  {from: 'commands/*', to: 'encryption.ts', why: 'the encryption options'},
  {from: 'commands/*', to: 'signing.ts', why: 'the signing options'},
]

/** npm packages only the CLI floor may import: below it, code is called, not run as a command. */
const CLI_PACKAGES = ['@oclif/core', 'listr2', 'chalk']

/** Modules below the CLI floor that import a CLI package all the same, with the reason. */
const CLI_PACKAGE_USERS: Array<{from: string; to: string; why: string}> = [
  {from: 'errors.ts', to: '@oclif/core', why: 'KubesnapError is an oclif CLIError, so oclif prints its one sentence and exits with its code'},
]

/** One import: the importing module and what it names, both relative to src/ (`archive/reader.ts`), or a package name. */
interface Import {
  from: string
  to: string
}

/** The unit a module of src/ belongs to (`archive/`, `commands/list.ts`, `errors.ts`), or undefined when no floor lists it. */
function unitOf(module: string, floors: Floor[] = FLOORS): string | undefined {
  for (const {units} of floors) {
    for (const unit of units) {
      if (unit === module) return unit
      if (unit.endsWith('/') && module.startsWith(unit)) return unit
      if (unit.endsWith('/*') && dirname(module) === unit.slice(0, -2)) return module
    }
  }
  return undefined
}

/** The unit as the tables name it: `commands/list.ts` is `commands/*`. */
function tableName(unit: string, floors: Floor[]): string {
  return floors.some((f) => f.units.includes(unit)) ? unit : `${dirname(unit)}/*`
}

/** The index of a unit's floor, bottom 0. */
function floorOf(unit: string, floors: Floor[]): number {
  const name = tableName(unit, floors)
  return floors.findIndex((f) => f.units.includes(name))
}

/**
 * The imports that break the floors, each as `from → to` and why: up a floor,
 * sideways without a SIDEWAYS row, from or to a module no floor lists, or a
 * CLI package below the CLI floor (but for CLI_PACKAGE_USERS). Pure.
 */
function floorViolations(imports: Import[], floors: Floor[] = FLOORS, sideways = SIDEWAYS, cliPackages = CLI_PACKAGES, cliPackageUsers = CLI_PACKAGE_USERS): string[] {
  const out: string[] = []
  const cli = floors.length - 1
  for (const {from, to} of imports) {
    const fromUnit = unitOf(from, floors)
    if (fromUnit === undefined) {
      out.push(`${from} → ${to}: ${from} is on no floor; add it (or its folder) to FLOORS`)
      continue
    }
    const fromFloor = floorOf(fromUnit, floors)
    if (!to.endsWith('.ts')) {
      const pkg = cliPackages.find((p) => to === p || to.startsWith(`${p}/`))
      if (pkg && fromFloor < cli && !cliPackageUsers.some((u) => u.from === from && u.to === pkg)) out.push(`${from} → ${to}: only the ${floors[cli].name} floor uses ${pkg}; move the code that needs it up there`)
      continue
    }
    const toUnit = unitOf(to, floors)
    if (toUnit === undefined) {
      out.push(`${from} → ${to}: ${to} is on no floor; add it (or its folder) to FLOORS`)
      continue
    }
    if (toUnit === fromUnit) continue
    const toFloor = floorOf(toUnit, floors)
    if (toFloor < fromFloor) continue
    if (toFloor > fromFloor) {
      out.push(`${from} → ${to}: up from ${floors[fromFloor].name} to ${floors[toFloor].name}`)
    } else if (!sideways.some((s) => s.from === tableName(fromUnit, floors) && s.to === tableName(toUnit, floors))) {
      out.push(`${from} → ${to}: sideways on ${floors[fromFloor].name}, and SIDEWAYS has no row ${tableName(fromUnit, floors)} → ${tableName(toUnit, floors)}`)
    }
  }
  return out
}

/** Every module of src/ but the tests, relative to src/. */
function modules(dir = SRC): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return modules(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [relative(SRC, path)] : []
  })
}

/** What a module imports (static, dynamic, type-only and re-exports, as TypeScript's own scanner finds them): modules relative to src/, packages by name. */
function importsOf(module: string): Import[] {
  const {importedFiles} = ts.preProcessFile(readFileSync(join(SRC, module), 'utf8'), true, true)
  return importedFiles.map(({fileName}) => ({
    from: module,
    to: fileName.startsWith('.') ? relative(SRC, join(SRC, dirname(module), fileName)).replace(/\.js$/, '.ts') : fileName,
  }))
}

test('floorViolations: what each rule allows and refuses', () => {
  const rows: Array<[string, Import, string | undefined]> = [
    ['down a floor', {from: 'restore/objects.ts', to: 'archive/reader.ts'}, undefined],
    ['down two floors', {from: 'commands/list.ts', to: 'errors.ts'}, undefined],
    ['within a unit', {from: 'archive/reader.ts', to: 'archive/layout.ts'}, undefined],
    ['sideways with a reason', {from: 'plan/plan.ts', to: 'dumps/spec.ts'}, undefined],
    ['a command to base-command', {from: 'commands/list.ts', to: 'base-command.ts'}, undefined],
    ['a package anywhere', {from: 'archive/reader.ts', to: 'tar'}, undefined],
    ['oclif on the CLI floor', {from: 'flags.ts', to: '@oclif/core'}, undefined],
    ['up a floor', {from: 'resources/label-selector.ts', to: 'restore/modifiers.ts'},
      'resources/label-selector.ts → restore/modifiers.ts: up from producers and consumers to pipelines'],
    ['up from the base', {from: 'errors.ts', to: 'cluster/api.ts'}, 'errors.ts → cluster/api.ts: up from base to cluster and archive'],
    ['sideways without a reason', {from: 'cluster/api.ts', to: 'archive/errors.ts'},
      'cluster/api.ts → archive/errors.ts: sideways on cluster and archive, and SIDEWAYS has no row cluster/ → archive/'],
    ['sideways the other way round', {from: 'dumps/spec.ts', to: 'plan/plan.ts'},
      'dumps/spec.ts → plan/plan.ts: sideways on producers and consumers, and SIDEWAYS has no row dumps/ → plan/'],
    ['one command to another', {from: 'commands/snapshot.ts', to: 'commands/prune.ts'},
      'commands/snapshot.ts → commands/prune.ts: sideways on CLI, and SIDEWAYS has no row commands/* → commands/*'],
    ['oclif in errors.ts, with its reason', {from: 'errors.ts', to: '@oclif/core'}, undefined],
    ['oclif below the CLI floor', {from: 'archive/select.ts', to: '@oclif/core'},
      'archive/select.ts → @oclif/core: only the CLI floor uses @oclif/core; move the code that needs it up there'],
    ['a module on no floor', {from: 'check.ts', to: 'errors.ts'}, 'check.ts → errors.ts: check.ts is on no floor; add it (or its folder) to FLOORS'],
    ['to a module on no floor', {from: 'commands/check.ts', to: 'check.ts'},
      'commands/check.ts → check.ts: check.ts is on no floor; add it (or its folder) to FLOORS'],
  ]
  for (const [name, i, expected] of rows) assert.equal(floorViolations([i]), expected ? [expected] : [], name)
})

test('every import in src/ points down a floor, within its unit, or sideways where SIDEWAYS says why', () => {
  const all = modules()
  assert.ok(all.length > 50, `${all.length} modules found in ${SRC}`)
  assert.equal(floorViolations(all.flatMap(importsOf)), [])
})

test('every SIDEWAYS row is sideways and still used', () => {
  const used = new Set(modules().flatMap(importsOf).flatMap(({from, to}) => {
    const a = unitOf(from)
    const b = unitOf(to)
    return a && b ? [`${tableName(a, FLOORS)} → ${tableName(b, FLOORS)}`] : []
  }))
  for (const {from, to} of SIDEWAYS) {
    assert.is(floorOf(from, FLOORS), floorOf(to, FLOORS), `${from} → ${to} is not sideways`)
    assert.ok(used.has(`${from} → ${to}`), `no module imports along ${from} → ${to}: remove the row`)
  }
})

test('README\'s Architecture table shows FLOORS, floor by floor', () => {
  const readme = readFileSync(join(SRC, '..', 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('\n## Architecture\n'), readme.indexOf('\n### ', readme.indexOf('\n## Architecture\n')))
  const rows = [...section.matchAll(/^\| (\d) ([^|]+?) \| ([^|]+) \|/gm)]
    .map(([, floor, name, units]) => ({floor: Number(floor), name, units: [...units.matchAll(/`([^`]+)`/g)].map((m) => m[1])}))
    .sort((a, b) => a.floor - b.floor)
  assert.equal(rows, FLOORS.map((f, floor) => ({floor, ...f})))
})

test.run()
