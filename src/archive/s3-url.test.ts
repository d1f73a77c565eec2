import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {KubesnapError} from '../errors.js'
import {isS3Url, joinS3, parseS3Dir, parseS3Url, s3Url} from './s3-url.js'

test('parseS3Url: bucket and prefix of good URLs', () => {
  const cases: Array<[string, {bucket: string; prefix: string}]> = [
    ['s3://backups', {bucket: 'backups', prefix: ''}],
    ['s3://backups/', {bucket: 'backups', prefix: ''}],
    ['s3://backups/kubesnap/shop', {bucket: 'backups', prefix: 'kubesnap/shop'}],
    ['s3://my.bucket-1/a/b/', {bucket: 'my.bucket-1', prefix: 'a/b/'}],
    ['s3://backups/shop-000001-20261121T163000Z.kubesnap.tar', {bucket: 'backups', prefix: 'shop-000001-20261121T163000Z.kubesnap.tar'}],
  ]
  for (const [url, expected] of cases) assert.equal(parseS3Url(url), expected, url)
})

test('parseS3Url: refuses credentials, bad buckets and odd prefixes in one sentence (exit 2), never echoing a secret', () => {
  const cases: Array<[string, RegExp]> = [
    ['s3://AKIA:secret@backups/x', /must not hold credentials/],
    ['s3://key@backups', /must not hold credentials/],
    ['s3://ab/x', /not a valid S3 bucket name/],
    ['s3://Backups/x', /not a valid S3 bucket name/],
    ['s3:///x', /not a valid S3 bucket name/],
    ['s3://backups//x', /plain key prefix/],
    ['s3://backups/a/../b', /plain key prefix/],
    ['s3://backups/a?versionId=1', /plain key prefix/],
    ['/var/backups', /starts with s3:\/\//],
  ]
  for (const [url, message] of cases) {
    try {
      parseS3Url(url)
      assert.unreachable(url)
    } catch (err) {
      assert.instance(err, KubesnapError, url)
      assert.match((err as Error).message, message, url)
      assert.not.match((err as Error).message, 'secret', url)
      assert.is((err as KubesnapError).exitCode, 2, url)
    }
  }
})

test('parseS3Dir and joinS3: a prefix is a directory, joined with exactly one slash', () => {
  const cases: Array<[string, string, string]> = [
    ['s3://backups', 'a.tar', 's3://backups/a.tar'],
    ['s3://backups/', 'a.tar', 's3://backups/a.tar'],
    ['s3://backups/kubesnap', 'a.tar', 's3://backups/kubesnap/a.tar'],
    ['s3://backups/kubesnap/', 'a.tar', 's3://backups/kubesnap/a.tar'],
  ]
  for (const [dir, file, expected] of cases) assert.is(joinS3(dir, file), expected, dir)
  assert.equal(parseS3Dir('s3://backups/kubesnap'), {bucket: 'backups', prefix: 'kubesnap/'})
  assert.is(s3Url('b-1', 'k/x'), 's3://b-1/k/x')
  assert.ok(isS3Url('s3://b'))
  assert.not.ok(isS3Url('./s3://b'))
})

test.run()
