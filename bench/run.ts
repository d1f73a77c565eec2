/**
 * `npm run bench [-- CASE...]`: performance figures on the local test cluster.
 * Cases: objects (10,000 objects snapshotted), archive (inspect/verify of the
 * result). Figures are printed, not asserted: targets live in the README.
 */
import {openArchive, verifyArchive} from '../src/archive/index.js'
import {startTestCluster} from '../test/cluster/index.js'
import {benchObjects} from './objects.js'

const wanted = new Set(process.argv.slice(2))
const runs = (name: string) => wanted.size === 0 || wanted.has(name)

const cluster = await startTestCluster()
const stop = () => cluster.stop()
process.once('SIGINT', () => void stop().then(() => process.exit(130)))
try {
  console.log(`test cluster: ${cluster.server}`)
  if (runs('objects')) {
    const r = await benchObjects(cluster)
    console.log(`\nsnapshot of ${r.objects} objects (namespace-only user; loaded in ${r.loadSeconds.toFixed(1)} s)`)
    console.log(`  wall time     ${r.snapshotSeconds.toFixed(2)} s   (target < 10 s)`)
    console.log(`  peak RSS      ${r.peakRssMiB.toFixed(0)} MiB   (target < 200 MiB)`)
    console.log(`  API requests  ${r.apiRequests}`)
    console.log(`  archive       ${r.archiveMiB.toFixed(1)} MiB`)
    const t0 = process.hrtime.bigint()
    const reader = await openArchive(r.archive)
    const inspectMs = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`  inspect       ${inspectMs.toFixed(1)} ms (${reader.bytesRead} bytes read)`)
    const t1 = process.hrtime.bigint()
    const verified = await verifyArchive(r.archive)
    console.log(`  verify        ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(0)} ms (${verified.ok ? 'ok' : 'FAILED'})`)
  }
} finally {
  await stop()
}
