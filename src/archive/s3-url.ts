/**
 * `s3://BUCKET/PREFIX` locations: parsing and joining, with no SDK import, so
 * every command can tell an S3 location from a directory at no cost.
 */
import {EXIT, KubesnapError} from '../errors.js'

/** The scheme that marks an S3 location wherever a directory or archive path is accepted. */
export const S3_SCHEME = 's3://'

/** A bucket and a key prefix: empty, or ending in `/` for a directory-like location; a whole key for one archive. */
export interface S3Location {
  bucket: string
  prefix: string
}

/** What the command line adds to the AWS SDK's own configuration. */
export interface S3Settings {
  /** `--s3-endpoint URL`; AWS_ENDPOINT_URL(_S3) works too. */
  endpoint?: string
  /** `--profile NAME`; AWS_PROFILE works too, read by the SDK. */
  profile?: string
}

let settings: S3Settings = {}

/** Sets the endpoint and profile of the S3 client (the base command calls it from its flags, before any S3 use). */
export function configureS3(next: S3Settings): void {
  settings = {...next}
}

/** The settings configureS3 gave. */
export function s3Settings(): S3Settings {
  return settings
}

/** S3's bucket naming rules (3–63 characters, lower case, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Whether a path or directory argument names an S3 location. */
export function isS3Url(location: string): boolean {
  return location.startsWith(S3_SCHEME)
}

/**
 * Parses `s3://BUCKET[/PREFIX]`. Refuses (exit 2) a URL with credentials, a
 * query, or a bucket name S3 does not allow; the URL is never echoed in full,
 * since a mistyped one may hold a secret.
 */
export function parseS3Url(url: string): S3Location {
  if (!isS3Url(url)) throw new KubesnapError('An S3 location starts with s3://; give s3://BUCKET/PREFIX.', {exit: EXIT.usage})
  const rest = url.slice(S3_SCHEME.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1)
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new KubesnapError('An s3:// URL must not hold credentials; give them with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or --profile.', {exit: EXIT.usage})
  }
  if (!BUCKET.test(bucket)) throw new KubesnapError(`"${bucket}" is not a valid S3 bucket name; give s3://BUCKET/PREFIX with a bucket of 3–63 lower-case letters, digits, dots or hyphens.`, {exit: EXIT.usage})
  if (/[?#]/.test(prefix) || prefix.startsWith('/') || prefix.split('/').some((s) => s === '..' || s === '.')) {
    throw new KubesnapError('The prefix of an s3:// URL must be a plain key prefix (no ?, #, . or .. segments, no leading /); give s3://BUCKET/PREFIX.', {exit: EXIT.usage})
  }
  return {bucket, prefix}
}

/** The location of a directory-like prefix: its prefix ends in `/` (or is empty, the bucket's top). */
export function parseS3Dir(url: string): S3Location {
  const location = parseS3Url(url)
  return {bucket: location.bucket, prefix: location.prefix === '' || location.prefix.endsWith('/') ? location.prefix : location.prefix + '/'}
}

/** Formats a bucket and key as `s3://BUCKET/KEY`. */
export function s3Url(bucket: string, key: string): string {
  return `${S3_SCHEME}${bucket}/${key}`
}

/** Joins a directory-like s3:// location and a file name, as path.join does for directories. */
export function joinS3(dir: string, file: string): string {
  const {bucket, prefix} = parseS3Dir(dir)
  return s3Url(bucket, prefix + file)
}
