/**
 * A sample archive for the archive tests (holds no tests itself): a few objects,
 * a CRD, a volume large enough to split into many parts, and a dump.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import type {Manifest} from './manifest.js'
import {createArchiveWriter, type ArchiveWriter, type ArchiveWriterOptions, type ObjectMeta} from './writer.js'

/** Part size small enough that a few MiB make dozens of parts. */
export const SMALL_PART = 64 * 1024

/** The objects of the sample, with the JSON each one is stored as. */
export const SAMPLE_OBJECTS: {meta: ObjectMeta; json: string}[] = [
  object({kind: 'Secret', group: '', version: 'v1', resource: 'secrets', name: 'db'}, {data: {password: 'aHVudGVyMg=='}}),
  object({kind: 'ConfigMap', group: '', version: 'v1', resource: 'configmaps', name: 'app'}, {data: {mode: 'prod'}}),
  object({kind: 'Deployment', group: 'apps', version: 'v1', resource: 'deployments', name: 'web'}, {spec: {replicas: 2}}),
  object({type: 'crd', kind: 'CustomResourceDefinition', group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', name: 'widgets.example.com'}, {spec: {group: 'example.com'}}),
  object({kind: 'Widget', group: 'example.com', version: 'v1', resource: 'widgets', name: 'w1'}, {spec: {size: 3}}),
]

function object(meta: ObjectMeta, body: Record<string, unknown>): {meta: ObjectMeta; json: string} {
  const apiVersion = meta.group === '' ? meta.version : `${meta.group}/${meta.version}`
  return {meta, json: JSON.stringify({apiVersion, kind: meta.kind, metadata: {name: meta.name, namespace: 'sf'}, ...body})}
}

/** Options every test writer shares. */
export function writerOptions(dir: string, extra: Partial<ArchiveWriterOptions> = {}): ArchiveWriterOptions {
  return {dir, namespace: 'sf', kubesnapVersion: '0.1.0-test', cluster: {server: 'https://127.0.0.1:6443', context: 'test'}, partSize: SMALL_PART, ...extra}
}

/** Emits a buffer in chunks of varying size, as a network stream would. */
export function chunked(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0, i = 0; at < data.length; i++) {
        const n = [1, 4096, 65_536, 100_000, 7][i % 5]
        yield data.subarray(at, at + n)
        at += n
      }
    })(),
  )
}

export interface Sample {
  dir: string
  path: string
  manifest: Manifest
  volume: Buffer
  dump: Buffer
}

/** Writes the sample archive into a fresh temporary directory. */
export async function writeSample(options: {volume?: Buffer; objects?: typeof SAMPLE_OBJECTS} = {}): Promise<Sample> {
  const dir = await tempDir()
  const volume = options.volume ?? randomBytes(3 * 1024 * 1024 + 123)
  const dump = Buffer.from('CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n')
  const writer = await createArchiveWriter(writerOptions(dir))
  for (const o of options.objects ?? SAMPLE_OBJECTS) await writer.addObject(o.meta, o.json)
  await writer.addStream({type: 'volume', name: 'data', kind: 'PersistentVolumeClaim', group: '', version: 'v1', resource: 'persistentvolumeclaims', extra: {mountPath: '/var/lib/data'}}, chunked(volume))
  await writer.addStream({type: 'dump', name: 'mysql', extra: {command: 'mysqldump --all-databases'}}, chunked(dump), {compress: 'none'})
  const {path, manifest} = await writer.finish({skipped: [{resource: 'events', reason: 'made by the cluster'}], warnings: ['sample warning']})
  return {dir, path, manifest, volume, dump}
}

/** A volume archived the way the volume layer does it, for the README-recipe tests: where each piece is. */
export interface RecipeArchive {
  /** The volume's files (a README and 700,000 random bytes). */
  src: string
  path: string
  /** Empty directories to unpack the archive and the volume into. */
  out: string
  dest: string
}

/**
 * Streams a small volume tree into an archive in `dir` as the volume layer
 * does (`tar cf - .` in the pod, its stdout into addStream); `before` adds
 * entries first.
 */
export async function recipeArchive(dir: string, extra: Partial<ArchiveWriterOptions> = {}, before?: (writer: ArchiveWriter) => Promise<void>): Promise<RecipeArchive> {
  const src = join(dir, 'src')
  await mkdir(join(src, 'db', 'pages'), {recursive: true})
  await writeFile(join(src, 'db', 'pages', 'big.bin'), randomBytes(700_000))
  await writeFile(join(src, 'db', 'README'), 'hello\n')
  const pod = spawn('tar', ['cf', '-', '-C', src, '.'])
  const writer = await createArchiveWriter(writerOptions(dir, extra))
  await before?.(writer)
  await writer.addStream({type: 'volume', name: 'data'}, pod.stdout)
  const {path} = await writer.finish()
  const out = join(dir, 'out')
  const dest = join(dir, 'dest')
  await mkdir(out)
  await mkdir(dest)
  return {src, path, out, dest}
}

/** Creates a temporary directory for one test. */
export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'kubesnap-archive-'))
}

/** Removes a test's temporary directory. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, {recursive: true, force: true})
}

/** Flips one bit of a file at an offset. */
export async function flipByte(path: string, offset: number): Promise<void> {
  const data = await readFile(path)
  data[offset] ^= 0x01
  await writeFile(path, data)
}
