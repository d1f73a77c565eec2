/**
 * The canonical tar restore sends (src/volumes/canonical-tar.ts), checked
 * with the real tars a pod has: archives of one tree written by busybox, GNU
 * tar and GNU tar --format=posix re-encode to the same bytes, which busybox
 * 1.35 tar and GNU tar (as root, --numeric-owner) extract as the tree; and a
 * table of hostile encodings, built byte by byte, each refused before
 * anything is sent or shown harmless by extracting its canonical stream.
 * Needs no cluster:
 *
 *   node --import tsx test/canonical-tar.test.ts
 */
import {createHash} from 'node:crypto'
import {lstat, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {execa} from 'execa'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {approvedCanonicalTar, canonicalVolumeTar, scanVolumeTar, type TarScanResult} from '../src/volumes/tar-in.js'
import {Parser, type ReadEntry} from 'tar'
import {describeTree, longEntry, paxData, rawEntry, rawHeader, rawTar} from './helpers/tar.js'

const dirs: string[] = []
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-canon-'))
  dirs.push(dir)
  return dir
}

/** The canonical stream of an archived one, in full, and the scan's verdict (whose digest must be the stream's). */
async function canonicalOf(archived: Buffer): Promise<{scan: TarScanResult; bytes: Buffer}> {
  const scan = await scanVolumeTar(Readable.from([archived]))
  const chunks: Buffer[] = []
  if (scan.canonical) for await (const chunk of canonicalVolumeTar(Readable.from([archived]))) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  if (scan.canonical) assert.equal(scan.canonical, {bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex')}, 'the scan counted and hashed what is sent')
  return {scan, bytes}
}

const TARS = {busybox: ['busybox', 'tar'], gnu: ['tar']} as const

/** Extracts a stream as the untar script does (as root here: owners kept), umask 0 so modes are the archived ones. */
async function extract(tar: keyof typeof TARS, data: Buffer): Promise<string> {
  const dir = await tempDir()
  await execa('sh', ['-c', 'umask 0; "$@" --numeric-owner -xf - -C "$0"', dir, ...TARS[tar]], {input: data})
  return dir
}

// ---------------------------------------------------------------------------
// What real tars write comes back as it was

/** A tree with what volumes hold: owners, modes, long names and link targets, hard links, a FIFO, a name that is not UTF-8. */
const TREE_SCRIPT = String.raw`set -e
cd "$1"
long=$(printf 'n%.0s' $(seq 1 120))
deep=$(printf 'd%.0s' $(seq 1 90))/$(printf 'e%.0s' $(seq 1 90))/$(printf 'f%.0s' $(seq 1 90))
mkdir -p "data/$deep" empty sticky setgid
echo secret > data/private; chmod 0600 data/private; chown 999:1000 data/private
echo run > data/tool; chmod 4755 data/tool
printf 'deep\n' > "data/$deep/$long"; chown 1000:999 "data/$deep/$long"
ln "data/$deep/$long" hard-to-long
ln data/private hard-to-private
ln -s "data/$deep/$long" link-to-long
ln -s ../data/private empty/up-link
ln -s nowhere/at/all dangling
mkfifo pipe; chmod 0640 pipe
printf 'latin\n' > "$(printf 'caf\351')"
chmod 1777 sticky; chmod 2775 setgid; chown 999:999 setgid data
chown -h 999:999 dangling
touch -h -d @1700000000 data/private data/tool "data/$deep/$long" pipe dangling "$(printf 'caf\351')"
`

test('busybox, GNU and GNU posix archives of one tree re-encode to the same bytes, which busybox and GNU tar extract as the tree', async () => {
  const source = await tempDir()
  await execa('sh', ['-c', TREE_SCRIPT, 'tree', source])
  const expected = await describeTree(source)
  const writers = {
    busybox: await execa('busybox', ['tar', '-cf', '-', '-C', source, '.'], {encoding: 'buffer'}),
    gnu: await execa('tar', ['-cf', '-', '-C', source, '.'], {encoding: 'buffer'}),
    posix: await execa('tar', ['--format=posix', '-cf', '-', '-C', source, '.'], {encoding: 'buffer'}),
  }
  const canonical: Record<string, Buffer> = {}
  for (const [writer, result] of Object.entries(writers)) {
    const {scan, bytes} = await canonicalOf(Buffer.from(result.stdout))
    assert.is(scan.unsafe, undefined, `${writer}: ${JSON.stringify(scan.unsafe)}`)
    canonical[writer] = bytes
  }
  assert.ok(canonical.busybox.equals(canonical.gnu), 'busybox and GNU archives give the same canonical bytes')
  assert.ok(canonical.posix.equals(canonical.gnu), 'GNU posix (PAX long names, times) gives the same canonical bytes')
  assert.not.match(canonical.gnu.toString('latin1'), /PaxHeader|\d+ (path|mtime)=/, 'no PAX in the canonical stream')
  assert.equal(await describeTree(await extract('gnu', canonical.gnu)), expected, 'GNU tar extracts the canonical stream as the tree')
  // Measured: busybox 1.35 tar does not lchown the symlinks it creates, from any archive.
  const symlinksAsRoot = Object.fromEntries(Object.entries(expected).map(([path, d]) => [path, d.replace(/^symlink \d+:\d+/, 'symlink 0:0')]))
  assert.equal(await describeTree(await extract('busybox', canonical.gnu)), symlinksAsRoot, 'busybox tar extracts the canonical stream as the tree')
  // And as each tar makes of the archives it reads (busybox ignores PAX): the re-encoding changes nothing.
  for (const [tar, writer] of [['busybox', 'busybox'], ['busybox', 'gnu'], ['gnu', 'busybox'], ['gnu', 'gnu'], ['gnu', 'posix']] as const) {
    assert.equal(await describeTree(await extract(tar, Buffer.from(writers[writer].stdout))), tar === 'gnu' ? expected : symlinksAsRoot, `${tar} tar reading the ${writer} archive`)
  }
})

test('owners over 2097151 (OpenShift ranges) are written base-256 and kept by busybox and GNU tar; busybox 1.35 tar c truncates them', async () => {
  const source = await tempDir()
  await execa('sh', ['-c', 'cd "$1" && echo x > f && chown 1000650000:1000650000 f && touch -d @1700000000 f', 'tree', source])
  const {scan, bytes} = await canonicalOf(Buffer.from((await execa('tar', ['-cf', '-', '-C', source, '.'], {encoding: 'buffer'})).stdout))
  assert.equal(scan.owners.map((o) => [o.uid, o.gid]), [[0, 0], [1000650000, 1000650000]])
  for (const tar of ['busybox', 'gnu'] as const) {
    const stats = await lstat(join(await extract(tar, bytes), 'f'))
    assert.equal([stats.uid, stats.gid], [1000650000, 1000650000], tar)
  }
  // Measured: busybox writes the last 8 octal digits with no NUL (the id only survives as a decimal uname), so its own archives hold 10794256.
  const busybox = await canonicalOf(Buffer.from((await execa('busybox', ['tar', '-cf', '-', '-C', source, '.'], {encoding: 'buffer'})).stdout))
  assert.equal(busybox.scan.owners.map((o) => o.uid), [0, 10794256])
})

test('sending re-encodes deterministically and stops rather than send more, fewer or other bytes than the scan approved', async () => {
  const archived = rawTar(rawEntry({name: 'd/', flag: '5'}), file('d/a', 'x'.repeat(100_000)), file('d/b', 'small'))
  const {scan, bytes} = await canonicalOf(archived)
  const send = async (approved: {bytes: number; sha256: string}) => {
    const sent: Buffer[] = []
    const error = await (async () => {
      for await (const chunk of approvedCanonicalTar(Readable.from([archived]), approved)) sent.push(chunk)
    })().then(() => undefined, (err: Error) => err.message)
    return {sent: Buffer.concat(sent), error}
  }
  const same = await send(scan.canonical!)
  assert.is(same.error, undefined)
  assert.ok(same.sent.equals(bytes), 'the same bytes as the scan counted')
  const shorter = await send({...scan.canonical!, bytes: scan.canonical!.bytes - 512})
  assert.match(shorter.error ?? '', /more than the \d+ bytes/)
  assert.ok(shorter.sent.length <= scan.canonical!.bytes - 512, 'never more than approved')
  assert.match((await send({...scan.canonical!, bytes: scan.canonical!.bytes + 512})).error ?? '', /fewer/)
  assert.match((await send({...scan.canonical!, sha256: '0'.repeat(64)})).error ?? '', /other bytes/)
})

// ---------------------------------------------------------------------------
// Hostile encodings

test('the defect: a PAX size busybox ignores hid a character device from node-tar, and busybox created it', async () => {
  const hidden = hiddenDevice()
  const seen: string[] = []
  // node-tar's parser, as the scan used it before.
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({onReadEntry: (entry: ReadEntry) => void (seen.push(`${entry.type} ${entry.path}`), entry.resume())})
    parser.on('end', resolve)
    parser.on('error', reject)
    parser.end(hidden)
  })
  assert.equal(seen, ['File innocent'], 'node-tar (the scan before) sees one harmless file')
  const dir = await extract('busybox', hidden)
  assert.ok((await lstat(join(dir, 'dev'))).isCharacterDevice(), 'busybox tar (the pod) created the device')
  const {scan} = await canonicalOf(hidden)
  assert.equal(scan.unsafe, {path: 'innocent', reason: 'its PAX size "1024" disagrees with the size 0 in its tar header, and tars read it either way'})
  assert.is(scan.canonical, undefined, 'nothing to send')
})

/** An `x` header saying size=1024 for a file whose ustar size is 0: the 1024 bytes are a character device's header and another file's. */
function hiddenDevice(): Buffer {
  return rawTar(
    rawEntry({name: 'PaxHeaders/innocent', flag: 'x'}, paxData([['size', '1024']])),
    rawHeader({name: 'innocent', size: 0}),
    rawHeader({name: 'dev', flag: '3', mode: 0o666, devmajor: 1, devminor: 3}),
    rawHeader({name: 'filler', size: 0}),
  )
}

const base256 = (bytes: number[], length: number) => Buffer.concat([Buffer.from(bytes), Buffer.alloc(length - bytes.length)])
const file = (name: string, content = 'x', extra: Partial<Parameters<typeof rawHeader>[0]> = {}) => rawEntry({name, ...extra}, content)

/** [what, stream, refused (reason), unreadable (error), or harmless (the tree busybox and GNU tar extract from the canonical stream)]. */
const HOSTILE: Array<[string, Buffer, {refused: RegExp} | {unreadable: RegExp} | {harmless: Record<string, string>}]> = [
  ['PAX size override hiding a character device', hiddenDevice(), {refused: /PAX size "1024" disagrees with the size 0/}],
  ['PAX size override smaller than the header', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['size', '0']])), file('f', 'hidden')), {refused: /PAX size "0" disagrees with the size 6/}],
  ['PAX path override of a short name', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['path', 'evil']])), file('harmless')), {refused: /PAX path "evil" disagrees with the name "harmless"/}],
  ['PAX path override leaving the mount', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['path', `${'a'.repeat(100)}/../../../etc/cron.d/x`]])), file('a'.repeat(100))), {refused: /\.\. component/}],
  ['PAX global path', rawTar(rawEntry({name: 'g', flag: 'g'}, paxData([['path', 'evil']])), file('a')), {refused: /PAX path "evil" disagrees/}],
  ['PAX linkpath on a file', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['linkpath', '/etc']])), file('f')), {refused: /PAX linkpath but is not a link/}],
  ['PAX sparse map', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['GNU.sparse.map', '0,1']])), file('f')), {refused: /PAX record "GNU\.sparse\.map"/}],
  ['malformed PAX record', rawTar(rawEntry({name: 'x', flag: 'x'}, '99 size=1\n'), file('f')), {refused: /malformed record/}],
  ['repeated PAX record', rawTar(rawEntry({name: 'x', flag: 'x'}, paxData([['size', '1'], ['size', '1']])), file('f')), {refused: /repeats the record "size"/}],
  ['GNU long name with ..', rawTar(longEntry('L', '../../escape'), file('ok')), {refused: /\.\. component/}],
  ['GNU long name that is absolute', rawTar(longEntry('L', '/etc/cron.d/evil'), file('ok')), {refused: /absolute path/}],
  ['two GNU long names for one member', rawTar(longEntry('L', 'a'), longEntry('L', 'b'), file('ok')), {refused: /two GNU long names/}],
  ['GNU long name with no member after it', rawTar(file('ok'), longEntry('L', 'lost')), {refused: /not followed by its member/}],
  ['GNU long link on a file', rawTar(longEntry('K', '/etc/shadow'), file('ok')), {refused: /long link name but is not a link/}],
  ['GNU long link leaving the mount', rawTar(longEntry('K', `${'../'.repeat(40)}etc`), rawEntry({name: 'l', flag: '2', linkname: '../etc'})), {refused: /leaves the mount/}],
  ['GNU long name and a PAX path that disagree', rawTar(longEntry('L', 'one'), rawEntry({name: 'x', flag: 'x'}, paxData([['path', 'two']])), file('x')), {refused: /PAX path "two" disagrees with the name "one"/}],
  ['GNU long name with bytes after its NUL', rawTar(longEntry('L', 'ok\u0000../../escape'), file('ignored')), {harmless: {ok: 'file 2d711642b726b044 0644 0:0 mtime=1700000000'}}],
  ['base-256 size beyond 2^53', rawTar(rawHeader({name: 'big', size: base256([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 12)})), {refused: /size field is not a number/}],
  ['negative base-256 mtime', rawTar(file('f', 'x', {mtime: base256(Array(12).fill(0xff), 12)})), {refused: /mtime field is not a number/}],
  ['octal size with junk', rawTar(rawHeader({name: 'f', size: Buffer.from('0000000001x\u0000')})), {refused: /size field is not a number/}],
  ['base-256 size past the stream', rawTar(rawHeader({name: 'f', size: base256([0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], 12)})), {unreadable: /ends \d+ bytes before the end/}],
  ['sparse file', rawTar(rawEntry({name: 'sparse', flag: 'S'}, 'x')), {refused: /SparseFile, which a volume restore does not create/}],
  ['unknown type flag', rawTar(rawEntry({name: 'what', flag: 'Z'}, 'x')), {refused: /unknown type "Z"/}],
  ['character device', rawTar(rawHeader({name: 'null', flag: '3', devmajor: 1, devminor: 3})), {refused: /CharacterDevice/}],
  ['block device', rawTar(rawHeader({name: 'sda', flag: '4', devmajor: 8, devminor: 0})), {refused: /BlockDevice/}],
  ['hard link to a missing member', rawTar(rawEntry({name: 'h', flag: '1', linkname: 'nothing'})), {refused: /hard link to nothing, which is not an earlier member/}],
  ['hard link to a later member', rawTar(rawEntry({name: 'h', flag: '1', linkname: 'later'}), file('later')), {refused: /hard link to later, which is not an earlier member/}],
  ['hard link to a directory', rawTar(rawEntry({name: 'd/', flag: '5', mode: 0o755}), rawEntry({name: 'h', flag: '1', linkname: 'd'})), {refused: /hard link to the directory d/}],
  ['hard link to a symlink (tars that follow it would link elsewhere)', rawTar(rawEntry({name: 's', flag: '2', linkname: 'sub'}), rawEntry({name: 'h', flag: '1', linkname: 's'})), {refused: /hard link through the symlink s/}],
  ['hard link to a FIFO (kept)', rawTar(rawHeader({name: 'p', flag: '6'}), rawEntry({name: 'h', flag: '1', linkname: './p'})), {harmless: {h: 'fifo 0644 0:0 mtime=1700000000', p: 'fifo 0644 0:0 mtime=1700000000 link-of h'}}],
  ['duplicate path', rawTar(file('a', 'one'), file('./a', 'two')), {refused: /repeats the path of an earlier member/}],
  ['duplicate directory', rawTar(rawEntry({name: 'd/', flag: '5'}), rawEntry({name: './d', flag: '5'})), {refused: /repeats the path/}],
  ['member under a file', rawTar(file('a'), file('a/b')), {refused: /parent a is not a directory/}],
  ['file replacing a directory of earlier members', rawTar(file('d/x'), file('d')), {refused: /earlier members are inside it/}],
  ['directory with data hiding a header', rawTar(rawEntry({name: 'd/', flag: '5'}, rawHeader({name: 'dev', flag: '3'}))), {refused: /Directory whose header announces 512 bytes/}],
  ['symlink with data', rawTar(rawEntry({name: 's', flag: '2', linkname: 'a'}, 'x')), {refused: /SymbolicLink whose header announces 1 bytes/}],
  ['file named like a directory', rawTar(file('d/')), {refused: /name ends with \//}],
  ['the mount root as a file', rawTar(file('./')), {refused: /name ends with \/|names the mount itself/}],
  ['POSIX prefix leaving the mount', rawTar(rawEntry({name: 'x', magic: 'posix', prefix: '../..'}, 'x')), {refused: /\.\. component/}],
  ['a header after the end-of-archive marker', Buffer.concat([file('a'), Buffer.alloc(512), rawHeader({name: 'dev', flag: '3'}), Buffer.alloc(1024)]), {unreadable: /data after its end-of-archive marker/}],
  ['a wrong checksum', rawTar(rawHeader({name: 'f', badChecksum: true})), {unreadable: /wrong checksum/}],
  ['no end-of-archive marker', file('a'), {unreadable: /without an end-of-archive marker/}],
  ['not a tar header', rawTar(Buffer.alloc(512, 'A')), {unreadable: /not a POSIX ustar or GNU tar header/}],
  ['a FIFO (kept: it names no device)', rawTar(rawHeader({name: 'pipe', flag: '6', mode: 0o600})), {harmless: {pipe: 'fifo 0600 0:0 mtime=1700000000'}}],
  ['a GNU header whose time fields look like a prefix', rawTar(rawEntry({name: 'f', magic: 'gnu', prefix: '../..'}, 'x')), {harmless: {f: 'file 2d711642b726b044 0644 0:0 mtime=1700000000'}}],
]

test('hostile tar encodings: each refused before anything is sent, or its canonical stream extracts harmlessly with busybox and GNU tar', async () => {
  for (const [what, stream, expected] of HOSTILE) {
    if ('unreadable' in expected) {
      const err = await scanVolumeTar(Readable.from([stream])).then(() => undefined, (e: Error) => e)
      assert.ok(err, `${what}: refused as unreadable`)
      assert.match(err!.message, /^the volume's tar stream is not readable/, what)
      assert.match(err!.message, expected.unreadable, what)
      continue
    }
    const {scan, bytes} = await canonicalOf(stream)
    if ('refused' in expected) {
      assert.ok(scan.unsafe, `${what}: refused`)
      assert.match(scan.unsafe!.reason, expected.refused, `${what}: ${scan.unsafe!.reason}`)
      assert.is(scan.canonical, undefined, what)
    } else {
      assert.is(scan.unsafe, undefined, `${what}: ${JSON.stringify(scan.unsafe)}`)
      for (const tar of ['busybox', 'gnu'] as const) assert.equal(await describeTree(await extract(tar, bytes)), expected.harmless, `${what} (${tar} tar)`)
    }
  }
})

test.after(async () => {
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
})

test.run()
