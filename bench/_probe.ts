// scratch (not committed): a cluster + radosgw + volume kept up for repeated measurements
import {writeFileSync} from 'node:fs'
import {CreateBucketCommand, S3Client} from '@aws-sdk/client-s3'
import {startTestCluster} from '../test/cluster/index.js'
import {startS3Server} from '../test/cluster/s3.js'
import {setUp} from './volumes.js'
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
const cluster = await startTestCluster()
const server = await startS3Server()
const sizes = (process.argv[2] ?? '256').split(',').map(Number)
const nss: string[] = []
for (const s of sizes) nss.push((await setUp(cluster, s * 1024 * 1024)).ns)
const client = new S3Client({endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: {accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey}})
await client.send(new CreateBucketCommand({Bucket: 'probe'}))
writeFileSync('/tmp/s3probe/env', `export AWS_ACCESS_KEY_ID=${server.accessKeyId} AWS_SECRET_ACCESS_KEY=${server.secretAccessKey} AWS_ENDPOINT_URL=${server.endpoint} AWS_REGION=${server.region} AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true KC=${cluster.kubeconfigs.user} NSS="${nss.join(' ')}"\n`)
console.log('ready', nss)
const stop = async () => { await server.stop(); await cluster.stop(); process.exit(0) }
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
setInterval(() => {}, 1 << 30)
