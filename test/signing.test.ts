/**
 * Signed snapshots end to end, as the namespace-only user: `snapshot
 * --sign-with` signs, the README's `ssh-keygen -Y verify` recipe accepts what
 * kubesnap signed, and `verify`/`restore --trust` refuse an unsigned archive,
 * one signed by another key, and a tampered one whose hashes were all fixed
 * (so only the signature can tell), before any write.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {copyFile, mkdtemp, open} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {createHash} from 'node:crypto'
import {KubeApi} from '../src/cluster/api.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {openArchive, type ObjectEntry} from '../src/archive/index.js'
import {BLOCK, encodeTrailer, TRAILER_SPAN, type Trailer} from '../src/archive/layout.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'

let cluster: TestCluster
let admin: KubeApi
let namespace: string
let dir: string
/** The signing key, another key, and the archives: signed, unsigned. */
const keys = {sign: '', other: ''}
let signed = ''
let unsigned = ''

const README = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const configMap = (name: string, value: string) => ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name}, data: {greeting: value}})
const cmPath = (name: string) => `/api/v1/namespaces/${namespace}/configmaps/${name}`

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  namespace = await cluster.createNamespace({prefix: 'sign'})
  await admin.post(`/api/v1/namespaces/${namespace}/configmaps`, configMap('app', 'hello from the archive'))
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-sign-'))
  keys.sign = join(dir, 'signing-key')
  keys.other = join(dir, 'other-key')
  for (const key of [keys.sign, keys.other]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'backups@test', '-f', key])
})

test.after(async () => {
  await cluster?.deleteNamespace(namespace)
})

/** Runs kubesnap as the namespace-only user. */
const user = (args: string[]) => kubesnap([...args, '--kubeconfig', cluster.kubeconfigs.user])

test('snapshot --sign-with signs; verify --trust accepts it and says by which key', async () => {
  const out = join(dir, 'out')
  const s = await user(['snapshot', '-n', namespace, '-o', out, '--volumes', 'none', '--sign-with', keys.sign, '--json'])
  assert.is(s.code, 0, s.stderr)
  signed = s.json.path
  const u = await user(['snapshot', '-n', namespace, '-o', out, '--volumes', 'none', '--json'])
  assert.is(u.code, 0, u.stderr)
  unsigned = u.json.path

  // A key that cannot sign stops the run before it starts: exit 2, no archive.
  const bad = await user(['snapshot', '-n', namespace, '-o', join(dir, 'never'), '--volumes', 'none', '--sign-with', `${keys.sign}.pub`])
  assert.is(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, 'is a public key; --sign-with needs the private key file (without .pub).')
  assert.not.ok(existsSync(join(dir, 'never')))

  const inspect = await kubesnap(['inspect', signed, '--json'])
  assert.is(inspect.json.signedBy, readFileSync(`${keys.sign}.pub`, 'utf8').split(' ').slice(0, 2).join(' '))
  const print = execFileSync('ssh-keygen', ['-l', '-f', `${keys.sign}.pub`]).toString().split(' ')[1]
  const v = await kubesnap(['verify', signed, '--trust', `${keys.sign}.pub`, '--json'])
  assert.is(v.code, 0, v.stdout + v.stderr)
  assert.equal(v.json.signature, {signed: true, fingerprint: print, trusted: true})
  const plain = await kubesnap(['verify', signed])
  assert.is(plain.code, 0, plain.stderr)
  assert.match(plain.stdout, `signed by ${print} (not checked against trusted keys: give --trust)`)
  // Unsigned archives verify as before: nothing to say about a signature.
  const none = await kubesnap(['verify', unsigned, '--json'])
  assert.is(none.code, 0, none.stderr)
  assert.is(none.json.signature, undefined)
})

/** The README's recipe (the shell block that runs ssh-keygen -Y verify), for archive `archive` and key `pub`. */
function recipe(archive: string, pub: string): {code: number | null; out: string} {
  const block = /```sh\n(A=[^\n]*\n(?:(?!```)[\s\S])*?ssh-keygen -Y verify[^\n]*\n)```/.exec(README)
  assert.ok(block, 'the README has a shell block that ends in ssh-keygen -Y verify')
  const script = block![1].replace(/^A=.*$/m, `A='${archive}'`).replaceAll('signing-key.pub', `'${pub}'`)
  const cwd = execFileSync('mktemp', ['-d', join(dir, 'recipe-XXXXXX')]).toString().trim()
  const r = spawnSync('sh', ['-c', script], {cwd, encoding: 'utf8'})
  return {code: r.status, out: r.stdout + r.stderr}
}

test("the README's ssh-keygen -Y verify recipe accepts kubesnap's signature, and only for the right key and manifest", async () => {
  const good = recipe(signed, `${keys.sign}.pub`)
  assert.is(good.code, 0, good.out)
  assert.match(good.out, 'Good "kubesnap" signature for backups')
  assert.is.not(recipe(signed, `${keys.other}.pub`).code, 0, 'another key')
  assert.is.not(recipe(unsigned, `${keys.sign}.pub`).code, 0, 'no signature')
  assert.is.not(recipe(await tampered(), `${keys.sign}.pub`).code, 0, 'a changed manifest')
})

/**
 * Copies the signed archive and changes the ConfigMap's stored bytes (same
 * length), then fixes its sha256 in the manifest and the manifest's sha256 in
 * the trailer: every hash holds, only the signature can tell.
 */
async function tampered(): Promise<string> {
  const copy = join(dir, `tampered-${Math.random().toString(36).slice(2)}.kubesnap.tar`)
  await copyFile(signed, copy)
  const reader = await openArchive(copy)
  const entry = reader.manifest.entries.find((e): e is ObjectEntry => e.type === 'object' && e.resource === 'configmaps' && e.name === 'app')!
  const fh = await open(copy, 'r+')
  try {
    const content = Buffer.alloc(entry.size)
    await fh.read(content, 0, entry.size, entry.offset)
    const changed = Buffer.from(content.toString('utf8').replace('hello from the archive', 'HELLO FROM AN ATTACKER'))
    assert.is(changed.length, content.length)
    await fh.write(changed, 0, changed.length, entry.offset)
    const manifest = Buffer.alloc(reader.trailer.manifestSize)
    await fh.read(manifest, 0, manifest.length, reader.trailer.manifestOffset)
    const fixed = Buffer.from(manifest.toString('utf8').replace(entry.sha256, sha256(changed)))
    await fh.write(fixed, 0, fixed.length, reader.trailer.manifestOffset)
    await writeTrailer(fh, {...reader.trailer, manifestSha256: sha256(fixed)})
  } finally {
    await fh.close()
  }
  return copy
}

/** Rewrites the trailer body in place (its header, which holds no checksum of the body, stays). */
async function writeTrailer(fh: Awaited<ReturnType<typeof open>>, trailer: Trailer): Promise<void> {
  const {size} = await fh.stat()
  const {format: _f, formatVersion: _v, ...fields} = trailer
  const body = encodeTrailer(fields, new Date()).subarray(BLOCK)
  await fh.write(body, 0, BLOCK, size - TRAILER_SPAN + BLOCK)
}

/** A copy of the signed archive with the signature taken out of the trailer (the manifest still names the signer). */
async function stripped(): Promise<string> {
  const copy = join(dir, 'stripped.kubesnap.tar')
  await copyFile(signed, copy)
  const reader = await openArchive(copy)
  const {signature: _s, ...rest} = reader.trailer
  const fh = await open(copy, 'r+')
  try {
    await writeTrailer(fh, rest)
  } finally {
    await fh.close()
  }
  return copy
}

test('verify refuses a tampered archive whose hashes were fixed, with or without --trust; every other check passes', async () => {
  const bad = await tampered()
  for (const trust of [[], ['--trust', `${keys.sign}.pub`]]) {
    const v = await kubesnap(['verify', bad, ...trust])
    assert.is(v.code, 1, v.stdout + v.stderr)
    assert.match(v.stderr, /^Error: The signature of tampered-\S+ does not hold \(the signature does not match the manifest\): the archive was changed after it was signed; nothing was read from it: use another snapshot\.\n$/)
  }
  const json = await kubesnap(['verify', bad, '--json'])
  assert.equal(json.json.error.code, 'bad signature')
  const strip = await kubesnap(['verify', await stripped()])
  assert.is(strip.code, 1)
  assert.match(strip.stderr, /names signer SHA256:\S+ but carries no signature/)
})

test('verify --trust refuses an unsigned archive and one signed by another key; a bad --trust file is a usage error', async () => {
  const none = await kubesnap(['verify', unsigned, '--trust', `${keys.sign}.pub`, '--json'])
  assert.is(none.code, 1)
  assert.equal(none.json.error.code, 'unsigned')
  assert.match(none.json.error.message, 'is not signed, and a signature by a trusted key is required (--trust)')
  const other = await kubesnap(['verify', signed, '--trust', `${keys.other}.pub`])
  assert.is(other.code, 1)
  assert.match(other.stderr, /is signed by SHA256:\S+, which is not a trusted key \(--trust\); give --trust with that key's \.pub if you trust it, or use another snapshot\./)
  // Several keys: any one of them will do (an allowed_signers file and a .pub).
  const list = join(dir, 'allowed_signers')
  writeFileSync(list, `ops ${readFileSync(`${keys.other}.pub`, 'utf8')}backups namespaces="kubesnap" ${readFileSync(`${keys.sign}.pub`, 'utf8')}`)
  assert.is((await kubesnap(['verify', signed, '--trust', `${keys.other}.pub`, '--trust', list])).code, 0)
  const usage = await kubesnap(['verify', signed, '--trust', keys.sign])
  assert.is(usage.code, 2)
  assert.match(usage.stderr, 'is a private key; --trust needs the public key')
})

test('a plan signs (signWith) an encrypted snapshot; its signature is checked without the decryption key', async () => {
  const key = join(dir, 'age-key.txt')
  execFileSync('age-keygen', ['-o', key], {stdio: 'ignore'})
  const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim()
  const plan = join(dir, 'signed-plan.yaml')
  writeFileSync(plan, `version: 1\nnamespace: ${namespace}\nkubeconfig: ${cluster.kubeconfigs.user}\noutput: out-encrypted\nvolumes: {strategy: none}\nencryption: {recipients: [${recipient}]}\nsignWith: signing-key\ntrust: [signing-key.pub]\n`)
  const s = await kubesnap(['snapshot', '--config', plan, '--json'])
  assert.is(s.code, 0, s.stderr)
  const v = await kubesnap(['verify', s.json.path, '--config', plan, '--json'])
  assert.is(v.code, 0, v.stdout + v.stderr)
  assert.is(v.json.signature.trusted, true)
  const withKey = await kubesnap(['verify', s.json.path, '--trust', `${keys.sign}.pub`, '--identity', key, '--json'])
  assert.is(withKey.code, 0, withKey.stdout + withKey.stderr)
  assert.ok(withKey.json.decrypted > 0)
  assert.is((await kubesnap(['verify', s.json.path, '--trust', `${keys.other}.pub`])).code, 1)
})

test('restore --trust: refused before any write when unsigned, signed by another key or tampered; restores when trusted', async () => {
  await admin.delete(cmPath('app'))
  const restore = (archive: string, ...extra: string[]) => user(['restore', archive, '-n', namespace, '--volumes', 'none', '--include-kinds', 'configmaps', ...extra])
  const plan = join(dir, 'plan.yaml')
  writeFileSync(plan, `version: 1\nnamespace: ${namespace}\ntrust:\n  - ${readFileSync(`${keys.other}.pub`, 'utf8').trim()}\n`)
  const refused: Array<[string, Promise<Awaited<ReturnType<typeof restore>>>, RegExp]> = [
    ['unsigned', restore(unsigned, '--trust', `${keys.sign}.pub`), /is not signed/],
    ['another key', restore(signed, '--trust', `${keys.other}.pub`), /which is not a trusted key/],
    ['the plan trusts another key', restore(signed, '--config', plan), /which is not a trusted key/],
    ['tampered', restore(await tampered(), '--trust', `${keys.sign}.pub`), /does not hold/],
  ]
  for (const [name, run, message] of refused) {
    const r = await run
    assert.is(r.code, 1, `${name}: ${r.stdout}${r.stderr}`)
    assert.match(r.stderr, message, name)
    // Nothing written: the deleted ConfigMap is still gone (the tampered one would have brought back the attacker's text).
    await admin.get(cmPath('app')).then(() => assert.unreachable(`${name}: the ConfigMap was restored`), (err: {statusCode?: number}) => assert.is(err.statusCode, 404, name))
  }
  const ok = await restore(signed, '--trust', `${keys.sign}.pub`, '--json')
  assert.is(ok.code, 0, ok.stdout + ok.stderr)
  assert.equal(ok.json.signature.trusted, true)
  const back = await admin.get<{data: {greeting: string}}>(cmPath('app'))
  assert.is(back.data.greeting, 'hello from the archive')
})

test.run()
