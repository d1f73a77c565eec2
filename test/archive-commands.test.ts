/**
 * `kubesnap list`, `inspect` and `verify` run as a user runs them (the built
 * CLI, no TTY, no kubeconfig) on archives written here with the archive writer.
 */
import {randomBytes} from 'node:crypto'
import {copyFile, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {Readable} from 'node:stream'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {
  createArchiveWriter,
  entryMembers,
  isStreamEntry,
  openArchive,
  type Manifest,
  type ObjectEntry,
  type StreamEntry,
  type StreamPart,
} from '../src/archive/index.js'
import {formatBytes} from '../src/format.js'
import {kubesnap, type CliResult} from './helpers/cli.js'

/** Small parts, so a few MiB of volume make dozens of members. */
const PART = 64 * 1024

/** A home with no kubeconfig: these commands must not need one. */
const NO_CLUSTER = {KUBECONFIG: '/nonexistent/kubeconfig', HOME: '/nonexistent'}

const run = (args: string[]) => kubesnap(args, {env: NO_CLUSTER})

/** Runs several commands, a few at a time (each is a Node process), and returns their results in order. */
async function runAll(argsList: string[][], concurrency = 4): Promise<CliResult[]> {
  const results: CliResult[] = []
  let next = 0
  const worker = async () => {
    while (next < argsList.length) {
      const i = next++
      results[i] = await run(argsList[i])
    }
  }
  await Promise.all(Array.from({length: concurrency}, worker))
  return results
}

interface Written {
  path: string
  manifest: Manifest
}

/** Emits a buffer in uneven chunks, as an exec stream would. */
function chunked(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0, i = 0; at < data.length; i++) {
        const n = [4096, 65_536, 7, 100_000][i % 4]
        yield data.subarray(at, at + n)
        at += n
      }
    })(),
  )
}

/**
 * Writes one snapshot of a namespace: a Secret, a ConfigMap, a Deployment, a volume of `volumeBytes` random bytes and a dump;
 * with `failedClaim`, a claim whose copy failed (as the snapshot command records it: the archive is partial).
 */
async function writeSnapshot(dir: string, namespace: string, minute: number, options: {volumeBytes?: number; partSize?: number; failedClaim?: string} = {}): Promise<Written> {
  const start = new Date(Date.UTC(2026, 10, 21, 16, minute, 0))
  const writer = await createArchiveWriter({
    dir,
    namespace,
    kubesnapVersion: '0.1.0-test',
    cluster: {server: 'https://10.0.0.1:6443', context: 'prod'},
    partSize: options.partSize ?? PART,
    now: () => start,
  })
  const object = (kind: string, group: string, resource: string, name: string, body: object) =>
    writer.addObject({kind, group, version: 'v1', resource, name}, JSON.stringify({apiVersion: group ? `${group}/v1` : 'v1', kind, metadata: {name, namespace}, ...body}))
  await object('Secret', '', 'secrets', 'db', {type: 'Opaque', data: {password: 'aHVudGVyMg=='}})
  await object('ConfigMap', '', 'configmaps', 'app', {data: {mode: 'prod'}})
  await object('Deployment', 'apps', 'deployments', 'web', {spec: {replicas: 2}})
  await writer.addStream(
    {type: 'volume', name: 'data', kind: 'PersistentVolumeClaim', group: '', version: 'v1', resource: 'persistentvolumeclaims', extra: {mountPath: '/var/lib/data'}},
    chunked(randomBytes(options.volumeBytes ?? 3 * 1024 * 1024 + 77)),
  )
  await writer.addStream({type: 'dump', name: 'mysql', extra: {command: 'mysqldump --all-databases'}}, chunked(Buffer.from('CREATE TABLE t (id int);\n')), {compress: 'none'})
  return writer.finish({
    skipped: [
      {kind: 'Event', resource: 'events', reason: 'made by the cluster'},
      {kind: 'Secret', resource: 'secrets', name: 'default-token-x1', reason: 'service-account token'},
      ...(options.failedClaim ? [{kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: options.failedClaim, reason: 'data not copied: stream cut (attempt 3 of 3)', failed: true}] : []),
    ],
    warnings: ['The lock of a dead run was taken over.'],
  })
}

let root: string
/** Two namespaces: sf 1–3 and db 1–2 (db 2 partial: the data of claim logs could not be copied). */
let dir: string
let sf: Written[]
let db: Written[]

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kubesnap-archive-commands-'))
  dir = join(root, 'archives')
  sf = []
  db = []
  for (let i = 0; i < 3; i++) sf.push(await writeSnapshot(dir, 'sf', i * 10))
  for (let i = 0; i < 2; i++) db.push(await writeSnapshot(dir, 'db', i * 10 + 5, {failedClaim: i === 1 ? 'logs' : undefined}))
})

test.after(async () => {
  await rm(root, {recursive: true, force: true})
})

/** A fresh directory holding a copy of one archive, to damage. */
async function copyOf(archive: Written, label: string): Promise<string> {
  const target = join(root, label)
  await mkdir(target, {recursive: true})
  const path = join(target, basename(archive.path))
  await copyFile(archive.path, path)
  return path
}

// ── list ──────────────────────────────────────────────────────────────────

test('list prints a table by namespace then number, with human sizes and counts', async () => {
  const r = await run(['list', dir])
  assert.is(r.code, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  assert.match(lines[0], /^NUMBER\s+NAMESPACE\s+TIME\s+SIZE\s+OBJECTS\s+VOLUMES\s+ENCRYPTED\s+STATUS\s+FILE$/)
  const rows = lines.slice(1).map((l) => l.trim().split(/\s{2,}/))
  assert.equal(rows.map((c) => [c[0], c[1]]), [['1', 'db'], ['2', 'db'], ['1', 'sf'], ['2', 'sf'], ['3', 'sf']])
  const size = formatBytes((await readFile(sf[0].path)).length)
  assert.match(size, /^3\.\d MiB$/)
  assert.equal(rows[2], ['1', 'sf', '2026-11-21 16:00:00Z', size, '3', '1', 'no', 'complete', 'sf-000001-20261121T160000Z.kubesnap.tar'])
  assert.equal(rows.map((c) => c[7]), ['complete', 'partial', 'complete', 'complete', 'complete'], 'db 2 lacks the data of a claim: partial')
  assert.is(r.stderr, '')
})

test('list --json returns the rows; -n keeps one namespace', async () => {
  const all = await run(['list', dir, '--json'])
  assert.is(all.code, 0, all.stderr)
  assert.is(all.json.length, 5)
  const row = all.json.find((x: any) => x.namespace === 'sf' && x.number === 3)
  assert.is(row.ok, true)
  assert.is(row.path, sf[2].path)
  assert.is(row.time, '2026-11-21T16:20:00.000Z')
  assert.is(row.objects, 3)
  assert.is(row.volumes, 1)
  assert.is(row.dumps, 1)
  assert.is(row.encrypted, false)
  assert.is(row.status, 'complete')
  assert.ok(row.fileSize > 3 * 1024 * 1024)

  const onlyDb = await run(['list', dir, '-n', 'db', '--json'])
  assert.is(onlyDb.code, 0, onlyDb.stderr)
  assert.equal(onlyDb.json.map((x: any) => [x.namespace, x.number, x.status]), [['db', 1, 'complete'], ['db', 2, 'partial']])
  const human = await run(['list', dir, '--namespace', 'db'])
  assert.not.match(human.stdout, / sf /)
})

test('list shows a damaged archive as a row with its problem and still lists the others', async () => {
  const damaged = await copyOf(sf[0], 'list-damaged')
  await copyFile(sf[1].path, join(root, 'list-damaged', basename(sf[1].path)))
  const bytes = await readFile(damaged)
  await writeFile(damaged, bytes.subarray(0, bytes.length - 3000))

  const r = await run(['list', join(root, 'list-damaged')])
  assert.is(r.code, 0, r.stderr)
  const [header, first, second] = r.stdout.trimEnd().split('\n')
  assert.match(header, /PROBLEM$/)
  assert.match(first, /^\s*1\s+sf\s.*\s-\s+-\s+-\s+-\s+sf-000001-\S+\s+truncated$/)
  assert.match(second, /^\s*2\s+sf\s.*\s3\s+1\s+no\s+complete\s+sf-000002-\S+$/)
  assert.match(r.stderr, /1 of 2 archives could not be read; run kubesnap verify/)

  const json = await run(['list', join(root, 'list-damaged'), '--json'])
  assert.is(json.code, 0)
  assert.equal(json.json.map((x: any) => [x.number, x.ok, x.problem]), [[1, false, 'truncated'], [2, true, undefined]])
  assert.match(json.json[0].error, /truncated/)
})

test('list of an empty directory says so; a missing directory is an error', async () => {
  const empty = join(root, 'empty')
  await mkdir(empty, {recursive: true})
  const r = await run(['list', empty])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, `No kubesnap archives in ${empty}.\n`)
  const json = await run(['list', empty, '--json'])
  assert.equal(json.json, [])
  const none = await run(['list', dir, '-n', 'nothere'])
  assert.is(none.stdout, `No kubesnap archives of namespace nothere in ${dir}.\n`)

  const missing = await run(['list', join(root, 'no-such-dir')])
  assert.is(missing.code, 1)
  assert.match(missing.stderr, /^Error: Directory \S+no-such-dir does not exist; give the directory that holds the archives\.\n$/)
})

test('list works in the current directory by default', async () => {
  const r = await kubesnap(['list', '--json'], {env: NO_CLUSTER, cwd: dir})
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.length, 5)
})

// ── inspect ───────────────────────────────────────────────────────────────

test('inspect ARCHIVE prints the header, counts, entries by type, skipped items and warnings', async () => {
  const r = await run(['inspect', sf[1].path])
  assert.is(r.code, 0, r.stderr)
  const out = r.stdout
  const volume = volumeOf(sf[1])
  assert.match(out, `Archive:    ${sf[1].path} (${formatBytes((await readFile(sf[1].path)).length)})\n`)
  assert.match(out, 'Namespace:  sf\n')
  assert.match(out, 'Snapshot:   2\n')
  assert.match(out, 'Started:    2026-11-21T16:10:00.000Z\n')
  assert.match(out, 'Cluster:    https://10.0.0.1:6443 (context prod)\n')
  assert.match(out, 'Written by: kubesnap 0.1.0-test, archive format 1\n')
  assert.match(out, 'Encrypted:  no\n')
  assert.match(out, /Counts:\n {2}ConfigMap: +1\n {2}Deployment: +1\n {2}Secret: +1\n {2}volumes: +1\n {2}dumps: +1\n/)
  assert.match(out, 'Objects (3):\n  secrets (v1):\n    Secret/db\n  configmaps (v1):\n    ConfigMap/app\n  deployments.apps (apps/v1):\n    Deployment/web\n')
  assert.match(out, `Volumes (1):\n  data: 3.0 MiB raw, ${formatBytes(volume.size)} stored (gzip), ${volume.parts.length} parts  [mountPath: /var/lib/data]\n`)
  // A command line may hold credentials: inspect names it by its length only.
  assert.match(out, /Dumps \(1\):\n {2}mysql: 25 B raw, 25 B stored, 1 part {2}\[command: \(a 25-character command, not shown\)\]\n/)
  assert.match(out, 'Skipped (2):\n  events (Event): made by the cluster\n  secrets/default-token-x1 (Secret): service-account token\n')
  assert.match(out, 'Warnings (1):\n  The lock of a dead run was taken over.\n')
  assert.match(out, 'Status:     complete\n')
})

test('inspect shows a partial archive as partial and marks what failed under Skipped', async () => {
  const r = await run(['inspect', db[1].path])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, 'Status:     partial (what could not be stored is under Skipped, marked failed)\n')
  assert.match(r.stdout, 'Skipped (3):\n  events (Event): made by the cluster\n  secrets/default-token-x1 (Secret): service-account token\n'
    + '  failed: persistentvolumeclaims/logs (PersistentVolumeClaim): data not copied: stream cut (attempt 3 of 3)\n')
  const json = await run(['inspect', db[1].path, '--json'])
  assert.equal(json.json.skipped[2], {kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', name: 'logs', reason: 'data not copied: stream cut (attempt 3 of 3)', failed: true})
})

test('inspect --json returns the manifest', async () => {
  const r = await run(['inspect', sf[1].path, '--json'])
  assert.is(r.code, 0, r.stderr)
  assert.equal(r.json, sf[1].manifest)
})

test('inspect --number and --latest pick from -o DIR by -n NAMESPACE', async () => {
  const byNumber = await run(['inspect', '--number', '2', '-o', dir, '-n', 'sf', '--json'])
  assert.is(byNumber.code, 0, byNumber.stderr)
  assert.equal([byNumber.json.namespace, byNumber.json.number], ['sf', 2])
  const latest = await run(['inspect', '--latest', '--output', dir, '--namespace', 'db', '--json'])
  assert.is(latest.code, 0, latest.stderr)
  assert.equal([latest.json.namespace, latest.json.number], ['db', 2])
  // One namespace in the directory: -n is not needed.
  const single = join(root, 'single')
  await mkdir(single)
  for (const w of sf) await copyFile(w.path, join(single, basename(w.path)))
  const alone = await run(['inspect', '--latest', '-o', single])
  assert.is(alone.code, 0, alone.stderr)
  assert.match(alone.stdout, /Snapshot: {3}3\n/)
  // -o defaults to the current directory.
  const here = await kubesnap(['inspect', '--number', '1', '--json'], {env: NO_CLUSTER, cwd: single})
  assert.is(here.json.number, 1)
})

test('inspect refuses unclear selections with exit 2 and a missing snapshot with exit 1', async () => {
  const cases: {args: string[]; code: number; message: RegExp}[] = [
    {args: ['inspect', sf[0].path, '--latest'], code: 2, message: /^Error: Give either an archive path or --latest, not both\.$/},
    {args: ['inspect', sf[0].path, '--number', '1'], code: 2, message: /^Error: Give either an archive path or --number, not both\.$/},
    {args: ['inspect', '--latest', '--number', '1', '-o', dir, '-n', 'sf'], code: 2, message: /^Error: Give either --number or --latest, not both\.$/},
    {args: ['inspect', '--latest', '-o', dir], code: 2, message: /^Error: \S+ holds archives of several namespaces \(db, sf\); say which with -n NAMESPACE\.$/},
    {args: ['inspect'], code: 2, message: /^Error: Say which archive: give its path, or --latest or --number N/},
    {args: ['inspect', '--number'], code: 2, message: /--number expects a value/},
    {args: ['inspect', '--number', '0', '-o', dir], code: 2, message: /--number/},
    {args: ['inspect', dir], code: 2, message: /is a directory; give an archive file in it, or --latest -o/},
    {args: ['inspect', '--number', '7', '-o', dir, '-n', 'sf'], code: 1, message: /^Error: There is no snapshot 7 of namespace sf in \S+ \(it has 1, 2 and 3\); run kubesnap list \S+ to see them\.$/},
    {args: ['inspect', '--latest', '-o', dir, '-n', 'web'], code: 1, message: /^Error: There are no kubesnap archives of namespace web in /},
    {args: ['inspect', '--latest', '-o', join(root, 'nope'), '-n', 'sf'], code: 1, message: /^Error: Directory \S+nope does not exist/},
    {args: ['inspect', join(root, 'nope.kubesnap.tar')], code: 1, message: /^Error: \S+nope\.kubesnap\.tar does not exist; give the path of a \.kubesnap\.tar file\.$/},
  ]
  const results = await runAll(cases.map((c) => c.args))
  for (const [i, c] of cases.entries()) {
    const r = results[i]
    assert.is(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr.trim(), c.message, c.args.join(' '))
    assert.is(r.stdout, '', c.args.join(' '))
  }
  // --json keeps the exit code and says it in the error object.
  const json = await run(['inspect', '--latest', '-o', dir, '--json'])
  assert.is(json.code, 2)
  assert.is(json.json.error.exitCode, 2)
  assert.match(json.json.error.message, /say which with -n NAMESPACE/)
})

test('inspect reads only the trailer and manifest: a few KiB of a 20 MiB archive, whose contents it does not check', async () => {
  const bigDir = join(root, 'big')
  const big = await writeSnapshot(bigDir, 'big', 0, {volumeBytes: 20 * 1024 * 1024, partSize: 1024 * 1024})
  const reader = await openArchive(big.path)
  assert.ok(reader.fileSize > 20 * 1024 * 1024)
  assert.ok(reader.bytesRead < 16 * 1024, `openArchive read ${reader.bytesRead} bytes`)
  assert.is(reader.bytesRead, 2048 + reader.trailer.manifestSize)

  // Damage in the middle of the volume does not reach inspect (it never reads there); verify finds it.
  const volume = big.manifest.entries.find(isStreamEntry)!
  const bytes = await readFile(big.path)
  bytes[volume.parts[10].offset + 123] ^= 0xff
  await writeFile(big.path, bytes)
  const inspected = await run(['inspect', big.path, '--json'])
  assert.is(inspected.code, 0, inspected.stderr)
  assert.equal(inspected.json, big.manifest)
  const verified = await run(['verify', big.path])
  assert.is(verified.code, 1)
  assert.match(verified.stderr, `damaged at ${volume.parts[10].path} (sha256 mismatch)`)
})

test('inspect of a damaged or foreign file exits 1 with the reason', async () => {
  const truncated = await copyOf(sf[0], 'inspect-truncated')
  const bytes = await readFile(truncated)
  await writeFile(truncated, bytes.subarray(0, bytes.length - 100_000))
  const r = await run(['inspect', truncated])
  assert.is(r.code, 1)
  assert.match(r.stderr, /^Error: \S+ is truncated .*; use another archive\.\n$/)
  const json = await run(['inspect', truncated, '--json'])
  assert.is(json.code, 1)
  assert.is(json.json.error.code, 'truncated')

  const foreign = join(root, 'notes.txt')
  await writeFile(foreign, 'not an archive\n'.repeat(500))
  const f = await run(['inspect', foreign])
  assert.is(f.code, 1)
  assert.match(f.stderr, /is not a kubesnap archive/)
})

// ── verify ────────────────────────────────────────────────────────────────

test('verify of a whole archive exits 0 and says how much it checked', async () => {
  const members = 1 + sf[2].manifest.entries.flatMap(entryMembers).length + 2
  const size = (await readFile(sf[2].path)).length
  const r = await run(['verify', sf[2].path])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, `OK: ${sf[2].path}: ${members} members, ${size} bytes verified\n`)
  assert.is(r.stderr, '')

  const json = await run(['verify', '--latest', '-o', dir, '-n', 'sf', '--json'])
  assert.is(json.code, 0, json.stderr)
  assert.equal(json.json, {ok: true, path: sf[2].path, members, bytes: size})
})

/** The bytes one member occupies: its header block, content and padding. */
function span(m: StreamPart): [number, number] {
  return [m.offset - 512, m.offset + m.size + ((512 - (m.size % 512)) % 512)]
}

const objectsOf = (w: Written) => w.manifest.entries.filter((e): e is ObjectEntry => e.type === 'object')
const volumeOf = (w: Written) => w.manifest.entries.find((e): e is StreamEntry => e.type === 'volume')!

const damages: {name: string; damage: (data: Buffer, w: Written) => Buffer; entry: (w: Written) => string; problem: string}[] = [
  {
    name: 'a flipped byte in the Secret',
    damage: (d, w) => flip(d, objectsOf(w)[0].offset + 10),
    entry: () => 'objects/core/v1/secrets/db.json',
    problem: 'sha256 mismatch',
  },
  {
    name: 'a flipped byte in a volume part',
    damage: (d, w) => flip(d, volumeOf(w).parts[20].offset + 4000),
    entry: (w) => volumeOf(w).parts[20].path,
    problem: 'sha256 mismatch',
  },
  {
    name: 'a file cut inside a volume part',
    damage: (d, w) => d.subarray(0, volumeOf(w).parts[30].offset + 1000),
    entry: (w) => volumeOf(w).parts[30].path,
    problem: 'truncated',
  },
  {
    name: 'two volume parts swapped',
    damage: (d, w) => swap(d, volumeOf(w).parts[5], volumeOf(w).parts[6]),
    entry: (w) => volumeOf(w).parts[5].path,
    problem: 'out of order',
  },
  {
    name: 'a missing object',
    damage: (d, w) => {
      const [start, end] = span(objectsOf(w)[1])
      return Buffer.concat([d.subarray(0, start), d.subarray(end)])
    },
    entry: () => 'objects/core/v1/configmaps/app.json',
    problem: 'missing',
  },
]

function flip(data: Buffer, offset: number): Buffer {
  const copy = Buffer.from(data)
  copy[offset] ^= 0x01
  return copy
}

function swap(data: Buffer, a: StreamPart, b: StreamPart): Buffer {
  const [sa, sb] = [span(a), span(b)]
  return Buffer.concat([data.subarray(0, sa[0]), data.subarray(sb[0], sb[1]), data.subarray(sa[0], sa[1]), data.subarray(sb[1])])
}

test('verify exits 1 naming the first bad member: flipped bytes, a truncated file, reordered and missing members', async () => {
  const original = await readFile(sf[0].path)
  const paths = await Promise.all(damages.map(async (c, i) => {
    const path = join(root, `damaged-${i}`, basename(sf[0].path))
    await mkdir(join(root, `damaged-${i}`))
    await writeFile(path, c.damage(original, sf[0]))
    return path
  }))
  const human = await runAll(paths.map((p) => ['verify', p]))
  const json = await runAll(paths.map((p) => ['verify', p, '--json']))
  for (const [i, c] of damages.entries()) {
    const entry = c.entry(sf[0])
    assert.is(human[i].code, 1, `${c.name}: ${human[i].stdout}${human[i].stderr}`)
    assert.is(human[i].stdout, '', c.name)
    assert.is(
      human[i].stderr,
      `Error: Archive ${basename(sf[0].path)} is damaged at ${entry} (${c.problem}); restore from another snapshot.\n`,
      c.name,
    )
    assert.is(json[i].code, 1, c.name)
    assert.equal({ok: json[i].json.ok, path: json[i].json.path, entry: json[i].json.entry, problem: json[i].json.problem}, {ok: false, path: paths[i], entry, problem: c.problem}, c.name)
    assert.type(json[i].json.detail, 'string', c.name)
  }
})

test('verify of a file that is not a kubesnap archive, or not there, exits 1 with a clear sentence', async () => {
  const foreign = join(root, 'random.bin')
  await writeFile(foreign, randomBytes(10_000))
  const r = await run(['verify', foreign])
  assert.is(r.code, 1)
  assert.is(r.stderr, `Error: ${foreign} is not a kubesnap archive; give the path of a .kubesnap.tar file.\n`)
  const json = await run(['verify', foreign, '--json'])
  assert.is(json.code, 1)
  assert.equal([json.json.ok, json.json.problem], [false, 'not a kubesnap archive'])

  const empty = join(root, 'empty.kubesnap.tar')
  await writeFile(empty, '')
  const e = await run(['verify', empty])
  assert.is(e.code, 1)
  assert.match(e.stderr, /is not a kubesnap archive/)

  const missing = await run(['verify', join(root, 'gone.kubesnap.tar')])
  assert.is(missing.code, 1)
  assert.match(missing.stderr, /^Error: \S+gone\.kubesnap\.tar does not exist; give the path of a \.kubesnap\.tar file\.\n$/)
})

test('verify shows its progress on a large archive on stderr, nothing with --quiet, and nothing but JSON with --json', async () => {
  const largeDir = join(root, 'large')
  const writer = await createArchiveWriter({dir: largeDir, namespace: 'large', kubesnapVersion: 't', cluster: {server: 's', context: 'c'}, partSize: 16 * 1024 * 1024})
  const mib = Buffer.alloc(1024 * 1024, 7)
  await writer.addStream({type: 'volume', name: 'data'}, Readable.from((function* () {
    for (let i = 0; i < 65; i++) yield mib
  })()), {compress: 'none'})
  const {path, manifest} = await writer.finish()
  const members = 1 + manifest.entries.flatMap(entryMembers).length + 2

  const r = await run(['verify', path])
  assert.is(r.code, 0, r.stderr)
  // Not a TTY: listr2's line renderer, as in cron logs, on stderr; stdout holds the result alone.
  assert.match(r.stderr, /^\[STARTED\] \[\d\d:\d\d:\d\d\] Verify large-000001-\S+ \(65\.0 MiB\)$/m)
  assert.match(r.stderr, /^\[COMPLETED\] \[\d\d:\d\d:\d\d\] Verified large-000001-\S+: 65\.0 MiB$/m)
  assert.is(r.stdout, `OK: ${path}: ${members} members, ${(await readFile(path)).length} bytes verified\n`)

  const quiet = await run(['verify', path, '--quiet'])
  assert.is(quiet.code, 0, quiet.stderr)
  assert.is(quiet.stdout + quiet.stderr, '', 'no progress and no OK line: the exit code is the result')

  const json = await run(['verify', path, '--json'])
  assert.is(json.code, 0, json.stderr)
  assert.is(json.json.ok, true)
  assert.is(json.stdout.trim()[0], '{')
})

test('a namespace Kubernetes cannot have is a usage error (exit 2) on every command', async () => {
  const results = await runAll([['list', root, '-n', 'Shop_1'], ['verify', '--latest', '-o', root, '-n', 'Shop_1'], ['snapshot', '-n', 'Shop_1', '-o', root]])
  for (const r of results) {
    assert.is(r.code, 2, r.stderr)
    assert.is(r.stdout, '')
    assert.is(r.stderr, `Error: -n "Shop_1" is not a valid Kubernetes namespace name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit.\n`)
  }
})

test('the archive commands need no kubeconfig and ignore the connection flags', async () => {
  const r = await run(['verify', sf[0].path, '--kubeconfig', '/nonexistent', '--context', 'nope'])
  assert.is(r.code, 0, r.stderr)
  const l = await run(['list', dir, '--context', 'nope', '--json'])
  assert.is(l.code, 0, l.stderr)
})

test.run()
