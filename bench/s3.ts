/**
 * Benchmark: one volume snapshotted to a local directory and to a bucket on
 * the real radosgw (test/cluster/s3.ts), in the same run, so the ratio says
 * what the multipart upload costs; peak RSS of both; then list and inspect of
 * the bucket's archive (ranged GETs: time and bytes read).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {CreateBucketCommand, S3Client} from '@aws-sdk/client-s3'
import {listArchives} from '../src/archive/list.js'
import {openArchive} from '../src/archive/reader.js'
import type {TestCluster} from '../test/cluster/index.js'
import type {S3Server} from '../test/cluster/s3.js'
import {KUBESNAP_BIN} from '../test/helpers/cli.js'
import {measure} from './measure.js'
import {setUp} from './volumes.js'

const MiB = 1024 * 1024

export interface S3BenchResult {
  size: string
  local: {seconds: number; mibPerSecond: number; peakRssMiB: number}
  s3: {seconds: number; mibPerSecond: number; peakRssMiB: number}
  /** `kubesnap list` of the bucket, start-up included, and the listing itself in-process. */
  list: {ms: number; inProcessMs: number}
  inspect: {ms: number; bytesRead: number}
}

/**
 * Snapshots a volume of `bytes` to a directory, then to a bucket of its own on
 * `server`, and times list/inspect of the bucket's archive. One server for
 * every size: this process's S3 client is made once, for the first endpoint.
 */
export async function benchS3(cluster: TestCluster, server: S3Server, bytes: number): Promise<S3BenchResult> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
  const bucket = `kubesnap-bench-${bytes}`
  const {ns} = await setUp(cluster, bytes)
  const out = mkdtempSync(join(tmpdir(), 'kubesnap-bench-s3-'))
  try {
    const env = {...process.env, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_ENDPOINT_URL: server.endpoint, AWS_REGION: server.region}
    Object.assign(process.env, env)
    const client = new S3Client({endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: {accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey}})
    await client.send(new CreateBucketCommand({Bucket: bucket}))
    const snapshot = (to: string) => measure(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', to, '--kubeconfig', cluster.kubeconfigs.user, '--include-kinds', 'persistentvolumeclaims', '--json'], {env})
    const local = await snapshot(out)
    if (local.code !== 0) throw new Error(`kubesnap snapshot to a directory failed: ${local.stderr}`)
    const remote = await snapshot(`s3://${bucket}/bench`)
    if (remote.code !== 0) throw new Error(`kubesnap snapshot to S3 failed: ${remote.stderr}`)
    const path = JSON.parse(remote.stdout).path as string
    const list = await measure(process.execPath, [KUBESNAP_BIN, 'list', `s3://${bucket}/bench`, '--json'], {env})
    // In-process: what the listing itself costs, without node's and oclif's start-up.
    const listed = process.hrtime.bigint()
    await listArchives(`s3://${bucket}/bench`)
    const listMs = Number(process.hrtime.bigint() - listed) / 1e6
    const t0 = process.hrtime.bigint()
    const reader = await openArchive(path)
    const inspectMs = Number(process.hrtime.bigint() - t0) / 1e6
    const mib = bytes / MiB
    const rate = (ms: number) => mib / (ms / 1000)
    return {
      size: mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`,
      local: {seconds: local.ms / 1000, mibPerSecond: rate(local.ms), peakRssMiB: local.peakRssMiB},
      s3: {seconds: remote.ms / 1000, mibPerSecond: rate(remote.ms), peakRssMiB: remote.peakRssMiB},
      list: {ms: list.ms, inProcessMs: listMs},
      inspect: {ms: inspectMs, bytesRead: reader.bytesRead},
    }
  } finally {
    rmSync(out, {recursive: true, force: true})
    await cluster.deleteNamespace(ns, {wait: true})
  }
}
