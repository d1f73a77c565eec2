/**
 * Encrypted snapshots end to end, as the namespace-only user: the archive
 * holds no Secret value in plain text, opens with the real `age` CLI by the
 * README's recipe (age and ssh keys), verifies with and without the key, and
 * restores with it; a missing or wrong key is a usage error before any write.
 */
import {execFileSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {mkdir, mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubeApi} from '../src/cluster/api.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {hashTree} from '../fixtures/seed.js'
import {sharedCluster, type TestCluster} from './cluster/index.js'
import {kubesnap} from './helpers/cli.js'
import {seedTree} from './helpers/restore.js'

let cluster: TestCluster
let admin: KubeApi
let namespace: string
let dir: string
let archive: string
/** An age key (recipient of the archive), an ssh key (recipient too), and a key it is not encrypted to. */
const keys = {age: '', agePub: '', ssh: '', wrong: ''}
/** Every value of every Secret in the namespace, decoded and as stored (base64). */
let secretValues: string[] = []

const sh = (cmd: string, cwd?: string) => execFileSync('sh', ['-c', cmd], {cwd, encoding: 'buffer', maxBuffer: 64 << 20})

test.before(async () => {
  cluster = await sharedCluster()
  admin = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  namespace = await cluster.createNamespace({prefix: 'crypt', fixture: 'jenkins'})
  dir = await mkdtemp(join(tmpdir(), 'kubesnap-crypt-'))
  keys.age = join(dir, 'key.txt')
  keys.wrong = join(dir, 'other.txt')
  keys.ssh = join(dir, 'id_ed25519')
  sh(`age-keygen -o ${keys.age} 2>/dev/null && age-keygen -o ${keys.wrong} 2>/dev/null && ssh-keygen -q -t ed25519 -N '' -f ${keys.ssh}`)
  keys.agePub = sh(`age-keygen -y ${keys.age}`).toString().trim()
  // The fixture's own Secrets (a generated token Secret holds the namespace's name and the public CA, and is not archived).
  const secrets = await admin.get<{items: {type: string; data?: Record<string, string>}[]}>(`/api/v1/namespaces/${namespace}/secrets`)
  secretValues = secrets.items.filter((s) => s.type !== 'kubernetes.io/service-account-token').flatMap((s) => Object.values(s.data ?? {}).flatMap((b64) => [b64, Buffer.from(b64, 'base64').toString('utf8')]))
})

test.after(async () => {
  await cluster?.deleteNamespace(namespace)
})

test('snapshot --encrypt-to and --recipients-file: every entry is an age file, the manifest names the recipients', async () => {
  const recipients = join(dir, 'recipients.txt')
  sh(`{ echo '# the team'; cat ${keys.ssh}.pub; } > ${recipients}`)
  const r = await kubesnap(['snapshot', '-n', namespace, '-o', join(dir, 'out'), '--kubeconfig', cluster.kubeconfigs.user, '--encrypt-to', keys.agePub, '--recipients-file', recipients, '--json'])
  assert.is(r.code, 0, r.stderr)
  archive = r.json.path
  const inspect = await kubesnap(['inspect', archive, '--json'])
  assert.is(inspect.json.encrypted, true)
  assert.equal(inspect.json.recipients, [keys.agePub, readFileSync(`${keys.ssh}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')])
  const members = sh(`tar tf ${archive}`).toString().trim().split('\n')
  const contents = members.filter((m) => !m.startsWith('kubesnap/'))
  assert.ok(contents.length > 10)
  for (const m of contents) assert.ok(m.endsWith('.age'), `${m} is not encrypted`)
  const list = await kubesnap(['list', join(dir, 'out'), '--json'])
  assert.is(list.json[0].encrypted, true)
})

test('no Secret value appears anywhere in the archive bytes', async () => {
  const bytes = readFileSync(archive)
  assert.ok(secretValues.filter((v) => v.length >= 10).length >= 2, 'the fixture has Secret values to look for')
  // Short values ("admin") also occur in names; the passwords and keys are what must not.
  for (const value of secretValues.filter((v) => v.length >= 10)) assert.is(bytes.indexOf(value), -1, `the Secret value ${value.slice(0, 3)}… is in the archive in plain text`)
})

test('the README recipe: tar, then age -d with the age key or the ssh key, then gunzip and tar', async () => {
  const out = await mkdtemp(join(tmpdir(), 'kubesnap-crypt-x-'))
  sh(`tar xf ${archive} -C ${out}`)
  const secret = readdirSync(join(out, 'objects/core/v1/secrets')).find((f) => f.startsWith('jenkins-admin'))!
  for (const key of [keys.age, keys.ssh]) {
    const json = JSON.parse(sh(`age -d -i ${key} objects/core/v1/secrets/${secret}`, out).toString())
    assert.is(json.metadata.name, 'jenkins-admin')
    assert.ok(secretValues.includes(json.data['jenkins-admin-password']))
  }
  const data = join(out, 'data')
  await mkdir(data)
  sh(`cat volumes/jenkins-home-jenkins-0/part-*.tar.gz.age | age -d -i ${keys.age} | gunzip | tar xpf - -C ${data}`, out)
  assert.equal(await hashTree(data), await seedTree('jenkins/jenkins-home'))
})

test('verify: as stored without a key, every entry decrypted with it; a wrong key exits 2 naming the recipients', async () => {
  const plain = await kubesnap(['verify', archive])
  assert.is(plain.code, 0, plain.stderr)
  assert.match(plain.stdout, 'contents are encrypted and were not decrypted (give --identity to check them too)')
  const full = await kubesnap(['verify', archive, '--identity', keys.ssh, '--json'])
  assert.is(full.code, 0, full.stderr)
  assert.ok(full.json.decrypted > 10)
  const wrong = await kubesnap(['verify', archive, '--identity', keys.wrong])
  assert.is(wrong.code, 2)
  assert.is(wrong.stderr, `Error: None of the identities in ${keys.wrong} can decrypt ${archive}; give --identity with a key of one of its recipients ${keys.agePub.slice(0, 20)}…, ssh-ed25519 AAAAC3Nz….\n`)
})

test('inspect --show decrypts an object but never prints a Secret value', async () => {
  const r = await kubesnap(['inspect', archive, '--show', 'secret/jenkins-admin', '--identity', keys.age])
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, '"jenkins-admin-password": "(hidden: 16 bytes)"')
  for (const value of secretValues.filter((v) => v.length >= 10)) assert.not.match(r.stdout, value)
  const files = await kubesnap(['inspect', archive, '--show', 'volume/jenkins-home-jenkins-0', '--identity', keys.age])
  assert.is(files.code, 0, files.stderr)
  assert.match(files.stdout, /^-rw-r--r-- +\d+ \.\/config\.xml$/m)
})

test('restore: without a key exits 2 before any write; with it the Secret comes back', async () => {
  await admin.delete(`/api/v1/namespaces/${namespace}/secrets/jenkins-admin`)
  const without = await kubesnap(['restore', archive, '-n', namespace, '--kubeconfig', cluster.kubeconfigs.user, '--only-secrets'])
  assert.is(without.code, 2)
  assert.match(without.stderr, `is encrypted; give --identity FILE with a key of one of its recipients`)
  await admin.get(`/api/v1/namespaces/${namespace}/secrets/jenkins-admin`).then(() => assert.unreachable('restored without a key'), () => {})
  const r = await kubesnap(['restore', archive, '-n', namespace, '--kubeconfig', cluster.kubeconfigs.user, '--only-secrets', '--identity', keys.age, '--json'])
  assert.is(r.code, 0, r.stderr)
  const back = await admin.get<{data: Record<string, string>}>(`/api/v1/namespaces/${namespace}/secrets/jenkins-admin`)
  assert.is(back.data['jenkins-admin-password'], 'Sms3LXdxMkx6OVJiNHNWeA==')
})

test.run()
