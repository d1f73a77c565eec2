import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {
  crdMemberPath,
  checkNamespace,
  formatArchiveName,
  formatTimestamp,
  listArchiveFiles,
  nextNumber,
  objectMemberPath,
  parseArchiveName,
  parsePartialName,
  partialName,
  partMemberPath,
} from './naming.js'
import {removeDir, tempDir} from './sample.test.js'

const T = new Date(Date.UTC(2026, 10, 21, 16, 30, 0, 250))

test('formats archive names with a 6-digit number and a UTC second', () => {
  const cases: [string, number, Date, string][] = [
    ['sf', 42, T, 'sf-000042-20261121T163000Z.kubesnap.tar'],
    ['sf', 1, new Date(Date.UTC(2027, 0, 2, 3, 4, 5)), 'sf-000001-20270102T030405Z.kubesnap.tar'],
    ['kube-prod-2', 1_234_567, T, 'kube-prod-2-1234567-20261121T163000Z.kubesnap.tar'],
  ]
  for (const [namespace, number, time, name] of cases) {
    assert.is(formatArchiveName({namespace, number, time}), name)
  }
})

test('refuses names that would not parse back', () => {
  for (const [namespace, number] of [['SF', 1], ['sf_x', 1], ['-sf', 1], ['', 1], ['a'.repeat(64), 1], ['sf', 0], ['sf', 1.5]] as const) {
    assert.throws(() => formatArchiveName({namespace, number, time: T}), undefined, `${namespace} ${number}`)
  }
})

test('an invalid namespace name is a usage error (exit 2) that says what a valid one is', () => {
  for (const namespace of ['SF', 'sf_x', '-sf', 'sf-', '', 'a'.repeat(64), 'a.b']) {
    try {
      checkNamespace(namespace, '-n')
      assert.unreachable(namespace)
    } catch (err) {
      assert.instance(err, KubesnapError, namespace)
      assert.is((err as KubesnapError).exitCode, 2)
      assert.is((err as Error).message, `-n ${JSON.stringify(namespace)} is not a valid Kubernetes namespace name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit.`)
    }
  }
  for (const namespace of ['sf', 'a', 'shop-dr-2', 'a'.repeat(63)]) checkNamespace(namespace)
})

test('parses archive names, including namespaces with dashes and digits', () => {
  const cases: [string, {namespace: string; number: number; time: string} | undefined][] = [
    ['sf-000042-20261121T163000Z.kubesnap.tar', {namespace: 'sf', number: 42, time: '2026-11-21T16:30:00.000Z'}],
    ['team-000001-000002-20261121T163000Z.kubesnap.tar', {namespace: 'team-000001', number: 2, time: '2026-11-21T16:30:00.000Z'}],
    ['a-1234567-20261121T163000Z.kubesnap.tar', {namespace: 'a', number: 1_234_567, time: '2026-11-21T16:30:00.000Z'}],
    ['sf-42-20261121T163000Z.kubesnap.tar', undefined], // number too short
    ['sf-000042-20261121T163000Z.kubesnap.tar.partial', undefined],
    ['.sf-000042-20261121T163000Z.kubesnap.tar.partial', undefined],
    ['sf-000042-20261321T163000Z.kubesnap.tar', undefined], // month 13
    ['sf-000042-20261121T163000.kubesnap.tar', undefined], // no Z
    ['sf-000000-20261121T163000Z.kubesnap.tar', undefined], // numbers start at 1
    ['SF-000042-20261121T163000Z.kubesnap.tar', undefined],
    ['sf-000042-20261121T163000Z.tar', undefined],
  ]
  for (const [file, want] of cases) {
    const got = parseArchiveName(file)
    assert.equal(got && {namespace: got.namespace, number: got.number, time: got.time.toISOString()}, want, file)
  }
})

test('format and parse round-trip; partial names are separate', () => {
  const name = formatArchiveName({namespace: 'sf', number: 7, time: T})
  assert.is(parseArchiveName(name)?.number, 7)
  assert.is(partialName(name), `.${name}.partial`)
  assert.is(parsePartialName(partialName(name))?.number, 7)
  assert.is(parsePartialName(name), undefined)
  assert.is(formatTimestamp(T), '20261121T163000Z')
})

test('the next number is the highest of the namespace plus one', () => {
  const names = ['sf-000001', 'sf-000007', 'sf-000003', 'other-000099', 'sf-prod-000050'].map((s) => {
    const [namespace, n] = [s.slice(0, s.lastIndexOf('-')), Number(s.slice(s.lastIndexOf('-') + 1))]
    return {namespace, number: n, time: T}
  })
  const cases: [string, number][] = [
    ['sf', 8],
    ['other', 100],
    ['sf-prod', 51],
    ['new', 1],
  ]
  for (const [namespace, want] of cases) assert.is(nextNumber(names, namespace), want, namespace)
})

test('listArchiveFiles returns final archives only, by namespace then number', async () => {
  const dir = await tempDir()
  try {
    for (const file of [
      'sf-000010-20261121T163000Z.kubesnap.tar',
      'sf-000002-20261120T163000Z.kubesnap.tar',
      'db-000001-20261121T163000Z.kubesnap.tar',
      '.sf-000011-20261121T163000Z.kubesnap.tar.partial',
      '.kubesnap.lock',
      'notes.txt',
    ]) {
      await writeFile(join(dir, file), '')
    }
    await mkdir(join(dir, 'sub'))
    const all = await listArchiveFiles(dir)
    assert.equal(all.map((a) => a.file), ['db-000001-20261121T163000Z.kubesnap.tar', 'sf-000002-20261120T163000Z.kubesnap.tar', 'sf-000010-20261121T163000Z.kubesnap.tar'])
    assert.equal((await listArchiveFiles(dir, 'sf')).map((a) => a.number), [2, 10])
    assert.equal(await listArchiveFiles(join(dir, 'missing')), [])
  } finally {
    await removeDir(dir)
  }
})

test('member paths follow the layout', () => {
  assert.is(objectMemberPath({group: '', version: 'v1', resource: 'secrets', name: 'db'}), 'objects/core/v1/secrets/db.json')
  assert.is(objectMemberPath({group: 'apps', version: 'v1', resource: 'deployments', name: 'web'}), 'objects/apps/v1/deployments/web.json')
  assert.is(objectMemberPath({group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', name: 'system:reader'}), 'objects/rbac.authorization.k8s.io/v1/roles/system:reader.json')
  assert.is(crdMemberPath('widgets.example.com'), 'crds/widgets.example.com.json')
  assert.is(partMemberPath('volume', 'data', 0, '.tar.gz'), 'volumes/data/part-000000.tar.gz')
  assert.is(partMemberPath('dump', 'mysql', 12, '.dump'), 'dumps/mysql/part-000012.dump')
})

test('member paths refuse names that are not one path segment', () => {
  for (const name of ['', '.', '..', 'a/b', '../etc', 'a\\b', 'a\0b']) {
    assert.throws(() => objectMemberPath({group: '', version: 'v1', resource: 'secrets', name}), /single path segment/, JSON.stringify(name))
  }
  assert.throws(() => partMemberPath('volume', 'data', 1_000_000, '.tar.gz'), /larger part size/)
})

test.run()
