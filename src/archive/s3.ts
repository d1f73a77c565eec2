/**
 * Archives on S3-compatible object storage (`s3://BUCKET/PREFIX`): the client,
 * ranged reads, listings, number claims and the streamed multipart upload.
 * Loaded only when an s3:// location is used (store.ts imports it lazily), so
 * the AWS SDK costs nothing to commands that work on directories.
 *
 * Credentials, region and endpoint come the AWS SDK's way (environment,
 * ~/.aws profiles, AWS_PROFILE, AWS_ENDPOINT_URL), plus `--profile` and
 * `--s3-endpoint` (configureS3). Keys and secrets are never put in a message.
 */
import type {Readable} from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import {KubesnapError} from '../errors.js'
import {parseArchiveName, type ArchiveFile} from './naming.js'
import {parseS3Dir, parseS3Url, s3Settings, s3Url, type S3Location} from './s3-url.js'
import {UploadParts, type ReadyPart} from './upload-parts.js'

/** Where number claims live under a prefix (not archives, so no listing shows them as such). */
const CLAIMS = '.kubesnap-claims/'

let cached: S3Client | undefined

/** The one S3 client of this process, made on first use from the SDK's configuration and configureS3's flags. */
export function s3Client(): S3Client {
  if (cached) return cached
  const settings = s3Settings()
  // The SDK warns on every run that its releases after January 2027 need Node 22; the lockfile pins one that runs on 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const endpoint = settings.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL
  const custom = endpoint !== undefined && endpoint !== ''
  cached = new S3Client({
    ...(settings.endpoint ? {endpoint: settings.endpoint} : {}),
    ...(settings.profile ? {profile: settings.profile} : {}),
    // A custom endpoint (radosgw, MinIO, R2…) rarely has virtual-host DNS, and its region is a formality.
    ...(custom ? {forcePathStyle: true, ...(process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION ? {} : {region: 'us-east-1'})} : {}),
    // The SDK's default streamed checksum framing is refused by radosgw and others (411 MissingContentLength, velero#10543).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  return cached
}

/**
 * Turns an SDK error into one sentence of cause and fix, naming the bucket and
 * never a key or secret. `what` says what was being done, e.g. "list s3://b/p".
 */
export function s3Error(err: unknown, location: S3Location, what: string): KubesnapError {
  const name = (err as {name?: string}).name ?? ''
  const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
  const where = s3Url(location.bucket, location.prefix)
  let sentence: string
  if (name === 'SignatureDoesNotMatch' || name === 'InvalidAccessKeyId' || name === 'InvalidToken' || name === 'ExpiredToken') {
    sentence = `The S3 server refused the credentials (${name}) when kubesnap tried to ${what}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the --profile.`
  } else if (name === 'NoSuchBucket' || (name === 'NotFound' && what.startsWith('open bucket'))) {
    sentence = `Bucket ${location.bucket} does not exist (${where}); create it or correct the s3:// URL.`
  } else if (name === 'AccessDenied' || status === 403) {
    sentence = `The S3 server denied access when kubesnap tried to ${what}; grant the bucket user the actions listed in the README's "Off-site storage".`
  } else if (name === 'CredentialsProviderError') {
    sentence = `No S3 credentials were found to ${what}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --profile NAME.`
  } else if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|socket hang up|ETIMEDOUT/.test(String((err as Error).message ?? '') + String((err as {code?: string}).code ?? ''))) {
    sentence = `Cannot reach the S3 endpoint to ${what} (${(err as {code?: string}).code ?? (err as Error).message}); check --s3-endpoint or AWS_ENDPOINT_URL and the network.`
  } else {
    sentence = `S3 refused to ${what} (${name || 'error'}${status ? `, HTTP ${status}` : ''}: ${(err as Error).message}); check the URL and the bucket user's rights.`
  }
  return new KubesnapError(sentence, {cause: err, code: 's3'})
}

/** Checks that the bucket of an s3:// location exists and the credentials work, before any other work. */
export async function checkBucket(url: string): Promise<void> {
  const location = parseS3Dir(url)
  try {
    await s3Client().send(new HeadBucketCommand({Bucket: location.bucket}))
  } catch (err) {
    // HEAD has no body: a 403 with no code may be a bad secret as well as a denial; ask once with a listing, which says which.
    if ((err as {name?: string}).name === 'NotFound') throw s3Error({name: 'NoSuchBucket'}, location, `open bucket ${location.bucket}`)
    try {
      await s3Client().send(new ListObjectsV2Command({Bucket: location.bucket, Prefix: location.prefix, MaxKeys: 1}))
    } catch (listErr) {
      throw s3Error(listErr, location, `open bucket ${location.bucket}`)
    }
    throw s3Error(err, location, `open bucket ${location.bucket}`)
  }
}

/** Returns the size of an archive object, or undefined when there is none under that key. */
export async function objectSize(url: string): Promise<number | undefined> {
  const location = parseS3Url(url)
  try {
    const head = await s3Client().send(new HeadObjectCommand({Bucket: location.bucket, Key: location.prefix}))
    return head.ContentLength ?? 0
  } catch (err) {
    if ((err as {name?: string}).name === 'NotFound' || (err as {name?: string}).name === 'NoSuchKey') return undefined
    throw s3Error(err, location, `read ${url}`)
  }
}

/** Streams bytes `start` to `end` (inclusive) of an object with one ranged GET. */
export async function getRange(url: string, start: number, end: number): Promise<Readable> {
  const location = parseS3Url(url)
  try {
    const out = await s3Client().send(new GetObjectCommand({Bucket: location.bucket, Key: location.prefix, Range: `bytes=${start}-${end}`}))
    return out.Body as Readable
  } catch (err) {
    throw s3Error(err, location, `read ${url}`)
  }
}

/**
 * Reads an object like a FileHandle reads a file: `read(buffer, offset, length,
 * position)`. Consecutive reads share one streamed GET from the first position
 * to the end (verify walks the whole object in one request); a read elsewhere
 * opens a new ranged GET.
 */
export class ObjectReader {
  readonly url: string
  readonly size: number
  #body?: AsyncIterator<Buffer>
  #stream?: Readable
  #position = -1
  #left: Buffer = Buffer.alloc(0)

  constructor(url: string, size: number) {
    this.url = url
    this.size = size
  }

  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; 0 at the end of the object. */
  async read(buffer: Buffer, offset: number, length: number, position: number, hint?: 'exact'): Promise<{bytesRead: number}> {
    if (position >= this.size || length === 0) return {bytesRead: 0}
    if (position !== this.#position || !this.#body) {
      this.#close()
      // An exact read (trailer, manifest) asks for just its bytes; a sequential one for the rest of the object.
      const end = hint === 'exact' ? Math.min(this.size, position + length) - 1 : this.size - 1
      this.#stream = await getRange(this.url, position, end)
      this.#body = this.#stream[Symbol.asyncIterator]()
      this.#position = position
      this.#left = Buffer.alloc(0)
    }
    let done = 0
    while (done < length) {
      if (this.#left.length === 0) {
        const next = await this.#body!.next()
        if (next.done) break
        this.#left = next.value
      }
      const n = Math.min(length - done, this.#left.length)
      this.#left.copy(buffer, offset + done, 0, n)
      this.#left = this.#left.subarray(n)
      done += n
    }
    this.#position += done
    if (done === 0) this.#close()
    return {bytesRead: done}
  }

  /** Ends the open GET, if any. */
  close(): void {
    this.#close()
  }

  #close(): void {
    this.#stream?.destroy()
    this.#stream = undefined
    this.#body = undefined
    this.#position = -1
    this.#left = Buffer.alloc(0)
  }
}

/** Lists the archives under an s3:// prefix (optionally one namespace's), by namespace then number. */
export async function listS3Archives(url: string, namespace?: string): Promise<ArchiveFile[]> {
  const location = parseS3Dir(url)
  const found: ArchiveFile[] = []
  for (const {key} of await listKeys(location, location.prefix)) {
    const file = key.slice(location.prefix.length)
    if (file.includes('/')) continue
    const name = parseArchiveName(file)
    if (name && (namespace === undefined || name.namespace === namespace)) found.push({...name, file, path: s3Url(location.bucket, key)})
  }
  return found.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.number - b.number))
}

/** Every key (and its last-modified time) under a prefix, through all pages of ListObjectsV2. */
async function listKeys(location: S3Location, prefix: string): Promise<Array<{key: string; modified?: Date}>> {
  const keys: Array<{key: string; modified?: Date}> = []
  let token: string | undefined
  try {
    do {
      const page = await s3Client().send(new ListObjectsV2Command({Bucket: location.bucket, Prefix: prefix, ContinuationToken: token}))
      for (const o of page.Contents ?? []) if (o.Key) keys.push({key: o.Key, modified: o.LastModified})
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  } catch (err) {
    throw s3Error(err, location, `list ${s3Url(location.bucket, prefix)}`)
  }
  return keys
}

/**
 * Claims a snapshot number under a prefix with a conditional PUT
 * (`If-None-Match: *`) of `.kubesnap-claims/NS-NNNNNN`: of two runs that pick
 * the same number, the server lets exactly one create the claim, and the other
 * tries the next number. Returns the number claimed.
 */
export async function claimNumber(url: string, namespace: string, first: number, owner: string): Promise<number> {
  const location = parseS3Dir(url)
  const claimed = new Set((await listKeys(location, location.prefix + CLAIMS)).map((k) => k.key))
  for (let number = first; number < first + 1000; number++) {
    const key = claimKey(location, namespace, number)
    if (claimed.has(key)) continue
    try {
      await s3Client().send(new PutObjectCommand({Bucket: location.bucket, Key: key, Body: JSON.stringify({owner, claimedAt: new Date().toISOString()}) + '\n', IfNoneMatch: '*'}))
      return number
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
      if (status === 412 || (err as {name?: string}).name === 'PreconditionFailed') continue
      throw s3Error(err, location, `claim snapshot number ${number} under ${url}`)
    }
  }
  throw new KubesnapError(`Could not claim a snapshot number of ${namespace} under ${url} in 1000 tries; remove stale claims with kubesnap prune.`)
}

/** The key of a number claim. */
function claimKey(location: S3Location, namespace: string, number: number): string {
  return `${location.prefix}${CLAIMS}${namespace}-${String(number).padStart(6, '0')}`
}

/** Removes the claim of one number (its archive is complete, or its upload aborted). */
export async function removeClaim(url: string, namespace: string, number: number): Promise<void> {
  const location = parseS3Dir(url)
  await deleteKey(location, claimKey(location, namespace, number))
}

/** Removes the claims of numbers whose archive exists or that are older than `olderThan`; returns how many. */
export async function removeStaleClaims(url: string, archives: readonly {namespace: string; number: number}[], olderThan: Date): Promise<number> {
  const location = parseS3Dir(url)
  const done = new Set(archives.map((a) => claimKey(location, a.namespace, a.number)))
  let removed = 0
  for (const {key, modified} of await listKeys(location, location.prefix + CLAIMS)) {
    if (done.has(key) || (modified && modified < olderThan)) {
      await deleteKey(location, key)
      removed++
    }
  }
  return removed
}

/** Deletes one object (an archive, by its s3:// URL). */
export async function deleteObject(url: string): Promise<void> {
  const location = parseS3Url(url)
  await deleteKey(location, location.prefix)
}

async function deleteKey(location: S3Location, key: string): Promise<void> {
  try {
    await s3Client().send(new DeleteObjectCommand({Bucket: location.bucket, Key: key}))
  } catch (err) {
    throw s3Error(err, location, `delete ${s3Url(location.bucket, key)}`)
  }
}

/** Aborts kubesnap's incomplete multipart uploads under a prefix started before `olderThan`; returns the keys. */
export async function abortStaleUploads(url: string, olderThan: Date): Promise<string[]> {
  const location = parseS3Dir(url)
  const aborted: string[] = []
  let keyMarker: string | undefined
  let uploadMarker: string | undefined
  try {
    do {
      const page = await s3Client().send(new ListMultipartUploadsCommand({Bucket: location.bucket, Prefix: location.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadMarker}))
      for (const u of page.Uploads ?? []) {
        const file = u.Key?.slice(location.prefix.length) ?? ''
        // Only kubesnap's: an upload under an archive name; others' uploads are not ours to end.
        if (!u.Key || !u.UploadId || file.includes('/') || !parseArchiveName(file)) continue
        if (u.Initiated && u.Initiated >= olderThan) continue
        await s3Client().send(new AbortMultipartUploadCommand({Bucket: location.bucket, Key: u.Key, UploadId: u.UploadId}))
        aborted.push(u.Key)
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
      uploadMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
    } while (keyMarker)
  } catch (err) {
    throw s3Error(err, location, `list the incomplete uploads under ${url}`)
  }
  return aborted
}

/**
 * The size of multipart part `n` (1-based): 8 MiB for the first 1,000 parts,
 * doubling every 1,000 parts after that. Archives up to 7.8 GiB upload with
 * 8 MiB parts, three of them in memory (one filling, one waiting for its tar
 * header, one in flight); 7,000 parts hold 992 GiB, so a 1 TiB archive takes
 * about 7,030 parts (the last ones 1 GiB), under S3's 10,000. Memory grows
 * with the archive only past 7.8 GiB: 3 × 16 MiB up to 23 GiB, 3 × 32 MiB up
 * to 54 GiB, 3 × 64 MiB up to 117 GiB. lib-storage's Upload has
 * one fixed part size: 112 MiB parts (what 1 TiB needs) measured 675 MiB peak
 * RSS for a 1 GiB volume, hence this loop over the SDK's multipart commands.
 */
export function uploadPartSize(n: number, first = FIRST_PART_SIZE): number {
  return first * 2 ** Math.floor((n - 1) / PARTS_PER_SIZE)
}

/** Size of the first parts: 8 MiB (S3's minimum is 5 MiB, every part but the last). */
export const FIRST_PART_SIZE = 8 * 1024 ** 2
/** Parts of one size before the size doubles. */
const PARTS_PER_SIZE = 1000

/**
 * An archive output that streams into one multipart upload, one part in
 * flight while the next fills (upload-parts.ts cuts the parts). Bytes are
 * appended in order; bytes announced with hold() may be written once more
 * (a volume part's tar header, patched with its size), and their upload part
 * waits in memory until then. An archive smaller than one part is one
 * PutObject. The object appears under its key only when complete() has
 * completed the upload; abort() (failure, Ctrl-C) aborts it, so nothing is
 * left under the key.
 */
export class UploadOutput {
  readonly url: string
  readonly #location: S3Location
  readonly #parts: UploadParts
  #uploadId?: string
  readonly #done: Array<{PartNumber: number; ETag: string}> = []
  #inFlight?: Promise<void>
  #creating?: Promise<void>
  #failed?: KubesnapError
  #aborted = false

  constructor(url: string, firstPartSize = FIRST_PART_SIZE) {
    this.url = url
    this.#location = parseS3Url(url)
    this.#parts = new UploadParts((n) => uploadPartSize(n, firstPartSize))
  }

  /** Bytes handed to the upload so far. */
  get written(): number {
    return this.#parts.written
  }

  /** Says that bytes [position, position + length), not yet written, will be written a second time. */
  hold(position: number, length: number): void {
    this.#parts.hold(position, length)
  }

  /**
   * Writes bytes at the end, or once more over held bytes (copied: the caller
   * may reuse them once this resolves). Waits while the previous part is still
   * uploading.
   */
  async write(data: Buffer, position: number): Promise<void> {
    if (this.#failed) throw this.#failed
    if (this.#aborted) throw new Error(`the upload of ${this.url} was aborted`)
    if (position < this.written) {
      for (const part of this.#parts.rewrite(data, position)) await this.#send(part)
      return
    }
    if (position !== this.written) throw new Error(`an S3 upload is written in order: asked to write at ${position}, the upload is at ${this.written}`)
    let rest = data
    while (rest.length > 0) {
      const n = Math.min(rest.length, this.#parts.room)
      const ready = this.#parts.append(rest.subarray(0, n))
      rest = rest.subarray(n)
      if (ready) await this.#send(ready)
    }
  }

  /** Sends the last part and completes the multipart upload (or PUTs a small archive whole): the object now exists under its key. */
  async complete(): Promise<void> {
    if (this.#failed) throw this.#failed
    const {bucket, prefix: key} = this.#location
    try {
      const last = this.#parts.finish()
      if (this.#uploadId === undefined && this.#parts.first) {
        // PutObject is atomic too: the object exists complete, or not at all.
        await s3Client().send(new PutObjectCommand({Bucket: bucket, Key: key, Body: last!.body, ContentType: 'application/x-tar'}))
        return
      }
      if (last) await this.#send(last)
      await this.#inFlight
      if (this.#failed) throw this.#failed
      // radosgw 16 answers this with an empty ETag: nothing here relies on it.
      const parts = [...this.#done].sort((a, b) => a.PartNumber - b.PartNumber)
      await s3Client().send(new CompleteMultipartUploadCommand({Bucket: bucket, Key: key, UploadId: this.#uploadId, MultipartUpload: {Parts: parts}}))
    } catch (err) {
      throw this.#fail(err)
    }
  }

  /**
   * Aborts the multipart upload, if one was started. Safe to call twice.
   * At once, not after the part in flight (a signal handler waits for this,
   * and a part can take seconds); once that part has settled, once more, as
   * S3 asks of a part that races an abort.
   */
  async abort(): Promise<void> {
    if (this.#aborted) return
    this.#aborted = true
    await this.#creating?.catch(() => {})
    if (this.#uploadId === undefined) return
    const {bucket, prefix: key} = this.#location
    const abort = () => s3Client().send(new AbortMultipartUploadCommand({Bucket: bucket, Key: key, UploadId: this.#uploadId})).then(() => {}, () => {})
    await abort()
    if (this.#inFlight) {
      await this.#inFlight.catch(() => {})
      await abort()
    }
  }

  /** Starts uploading a part once the one in flight is done; its buffer goes back to the parts when sent. */
  async #send(part: ReadyPart): Promise<void> {
    await this.#inFlight
    if (this.#failed) throw this.#failed
    if (this.#aborted) throw new Error(`the upload of ${this.url} was aborted`)
    const {bucket, prefix: key} = this.#location
    if (this.#uploadId === undefined) {
      // abort() waits for this, so an upload created while it runs is aborted too.
      this.#creating = s3Client().send(new CreateMultipartUploadCommand({Bucket: bucket, Key: key, ContentType: 'application/x-tar'})).then((created) => {
        this.#uploadId = created.UploadId
      })
      try {
        await this.#creating
      } catch (err) {
        throw this.#fail(err)
      }
      if (this.#aborted) throw new Error(`the upload of ${this.url} was aborted`)
    }
    this.#inFlight = s3Client()
      .send(new UploadPartCommand({Bucket: bucket, Key: key, UploadId: this.#uploadId, PartNumber: part.number, Body: part.body}))
      .then((r) => {
        this.#done.push({PartNumber: part.number, ETag: r.ETag ?? ''})
        this.#parts.recycle(part.body)
      }, (err: unknown) => {
        this.#fail(err)
      })
  }

  #fail(err: unknown): KubesnapError {
    this.#failed ??= err instanceof KubesnapError ? err : s3Error(err, this.#location, `upload ${this.url}`)
    return this.#failed
  }
}
