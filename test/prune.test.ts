/**
 * `kubesnap prune` as a user runs it (the built CLI, no kubeconfig) on archives
 * written here with the archive writer at chosen times.
 */
import {copyFile, readdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {acquireLock, createArchiveWriter, formatArchiveName, LOCK_FILE} from '../src/archive/index.js'
import {planRetention} from '../src/archive/retention.js'
import {kubesnap} from './helpers/cli.js'

const NO_CLUSTER = {KUBECONFIG: '/nonexistent/kubeconfig', HOME: '/nonexistent'}
const run = (args: string[]) => kubesnap(args, {env: NO_CLUSTER})

/** shop: 8 snapshots over two weeks (two on some days); db: 2. */
const SHOP_TIMES = [
  '2026-11-02T03:00', '2026-11-05T03:00', '2026-11-09T03:00', '2026-11-09T15:00',
  '2026-11-12T03:00', '2026-11-14T03:00', '2026-11-14T15:00', '2026-11-15T03:00',
]
const DB_TIMES = ['2026-11-01T01:00', '2026-11-15T01:00']

/** Writes one small snapshot (a ConfigMap) of a namespace taken at `time`. */
async function writeSnapshot(dir: string, namespace: string, number: number, time: string): Promise<string> {
  const at = new Date(`${time}:00Z`)
  const writer = await createArchiveWriter({
    dir, namespace, number, kubesnapVersion: '0.1.0-test', cluster: {server: 'https://10.0.0.1:6443', context: 'prod'}, now: () => at,
  })
  await writer.addObject({kind: 'ConfigMap', group: '', version: 'v1', resource: 'configmaps', name: 'app'},
    JSON.stringify({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'app', namespace}, data: {n: String(number)}}))
  return (await writer.finish()).path
}

let root: string

/** A fresh directory with shop 1–8, db 1–2, and a leftover .partial. */
async function fixtureDir(label: string): Promise<string> {
  const dir = join(root, label)
  for (const [i, t] of SHOP_TIMES.entries()) await writeSnapshot(dir, 'shop', i + 1, t)
  for (const [i, t] of DB_TIMES.entries()) await writeSnapshot(dir, 'db', i + 1, t)
  await writeFile(join(dir, `.${formatArchiveName({namespace: 'shop', number: 9, time: new Date('2026-11-15T04:00:00Z')})}.partial`), 'half')
  return dir
}

/** The file names the pure planner removes for a namespace. */
function plannedRemovals(namespace: string, times: string[], policy: Parameters<typeof planRetention>[1]): string[] {
  const snapshots = times.map((t, i) => ({number: i + 1, time: new Date(`${t}:00Z`)}))
  return planRetention(snapshots, policy).remove.map((n) => formatArchiveName({namespace, number: n, time: snapshots[n - 1].time})).sort()
}

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kubesnap-prune-'))
})

test.after(async () => {
  await rm(root, {recursive: true, force: true})
})

test('prune removes exactly the planned files of every namespace, never the .partial or the lock', async () => {
  const dir = await fixtureDir('all')
  const before = (await readdir(dir)).sort()
  const r = await run(['prune', '-o', dir, '--keep-daily', '3', '--keep-last', '1', '--json'])
  assert.is(r.code, 0, r.stderr)
  const expected = [
    ...plannedRemovals('shop', SHOP_TIMES, {keepDaily: 3, keepLast: 1}),
    ...plannedRemovals('db', DB_TIMES, {keepDaily: 3, keepLast: 1}),
  ].sort()
  // shop keeps Nov 15, 14 (15:00) and 12; db keeps both (daily has counts left, so the oldest too).
  assert.equal(expected, ['shop-000001-20261102T030000Z.kubesnap.tar', 'shop-000002-20261105T030000Z.kubesnap.tar',
    'shop-000003-20261109T030000Z.kubesnap.tar', 'shop-000004-20261109T150000Z.kubesnap.tar', 'shop-000006-20261114T030000Z.kubesnap.tar'])
  assert.equal([...r.json.removed].sort(), expected)
  const after = (await readdir(dir)).sort()
  assert.equal(after, before.filter((f) => !expected.includes(f)))
  assert.ok(after.some((f) => f.endsWith('.partial')), 'the .partial file is left alone')
  assert.not.ok(after.includes(LOCK_FILE), 'the lock is released')
  const shop = r.json.namespaces.find((n: any) => n.namespace === 'shop')
  assert.equal(shop.keep.map((k: any) => [k.number, k.reasons]), [
    [8, ['last', 'daily 2026-11-15']], [7, ['daily 2026-11-14']], [5, ['daily 2026-11-12']],
  ])
})

test('prune --dry-run prints the plan and removes nothing', async () => {
  const dir = await fixtureDir('dry')
  const before = (await readdir(dir)).sort()
  const r = await run(['prune', '-o', dir, '--keep-last', '2', '--dry-run'])
  assert.is(r.code, 0, r.stderr)
  assert.equal((await readdir(dir)).sort(), before)
  assert.match(r.stdout, /^shop: keeping 2, would remove 6$/m)
  assert.match(r.stdout, /^ {2}keep {4}8 {2}2026-11-15 03:00:00Z {2}shop-000008-20261115T030000Z\.kubesnap\.tar {2}\(last\)$/m)
  assert.match(r.stdout, /^ {2}remove {2}1 {2}2026-11-02 03:00:00Z {2}shop-000001-20261102T030000Z\.kubesnap\.tar$/m)
  assert.match(r.stdout, /^db: keeping 2, would remove 0$/m)
  assert.match(r.stdout, /Dry run: nothing was deleted\./)
})

test('prune -n only touches that namespace', async () => {
  const dir = await fixtureDir('one')
  const r = await run(['prune', '-o', dir, '-n', 'db', '--keep-last', '1', '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.equal(r.json.removed, ['db-000001-20261101T010000Z.kubesnap.tar'])
  assert.is((await readdir(dir)).filter((f) => f.startsWith('shop-')).length, 8)
})

test('prune with a live lock exits 5 and removes nothing', async () => {
  const dir = await fixtureDir('locked')
  const before = (await readdir(dir)).sort()
  const lock = await acquireLock(dir)
  try {
    const r = await run(['prune', '-o', dir, '--keep-last', '1'])
    assert.is(r.code, 5, r.stderr)
    assert.match(r.stderr, /Another kubesnap run \(pid \d+\) holds .*\.kubesnap\.lock/)
    const j = await run(['prune', '-o', dir, '--keep-last', '1', '--json'])
    assert.is(j.code, 5)
    assert.is(j.json.error.exitCode, 5)
  } finally {
    await lock.release()
  }
  assert.equal((await readdir(dir)).sort(), before)
})

test('prune without a policy is a usage error (exit 2) and removes nothing', async () => {
  const dir = await fixtureDir('nopolicy')
  const before = (await readdir(dir)).sort()
  for (const args of [[], ['--keep-last', '0']]) {
    const r = await run(['prune', '-o', dir, ...args])
    assert.is(r.code, 2, r.stderr)
    assert.match(r.stderr, /Say what to keep: give at least one of --keep-last/)
  }
  assert.equal((await readdir(dir)).sort(), before)
})

test('prune of a missing directory exits 1 with one sentence', async () => {
  const r = await run(['prune', '-o', join(root, 'nope'), '--keep-last', '1'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /Directory .*nope does not exist/)
})

test('prune goes by the manifest: a copy named as another snapshot neither counts nor is removed', async () => {
  const dir = join(root, 'misnamed')
  for (const [i, t] of SHOP_TIMES.slice(0, 3).entries()) await writeSnapshot(dir, 'shop', i + 1, t)
  const db = await writeSnapshot(join(root, 'misnamed-db'), 'db', 1, DB_TIMES[0])
  // Named as the newest shop snapshot: trusted by name, it would be "the last" and shop 3 would go.
  const forged = formatArchiveName({namespace: 'shop', number: 99, time: new Date('2026-11-20T03:00:00Z')})
  await copyFile(db, join(dir, forged))
  const r = await run(['prune', '-o', dir, '--keep-last', '1', '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.equal(r.json.namespaces.map((n: any) => [n.namespace, n.keep.map((k: any) => k.number), n.remove.map((k: any) => k.number)]), [['shop', [3], [2, 1]]])
  assert.equal(r.json.misnamed.map((m: any) => m.file), [forged])
  assert.match(r.json.misnamed[0].error, /is named as snapshot 99 of shop, but its manifest says snapshot 1 of db/)
  assert.ok((await readdir(dir)).includes(forged), 'the misnamed copy is left alone')
})

test.run()
