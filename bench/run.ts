/**
 * `npm run bench [-- CASE...]`: performance figures on the local test cluster.
 * Cases: objects (10,000 objects snapshotted, then inspect and verify of the
 * archive), rest (the CLI at rest: `--version`, `--help`, `list`), volumes
 * (256 MiB, 1 GiB, 2 GiB volumes against two baselines), s3 (256 MiB and 1 GiB
 * volumes to a directory and to a bucket on a real radosgw; not in the default run).
 * Figures are printed, not asserted: targets live in the README. A set-up
 * failure (packages, build, ports) is one sentence and exit code 2.
 */
import {openArchive, verifyArchive} from '../src/archive/index.js'
import {startTestCluster, type TestCluster} from '../test/cluster/index.js'
import {ensurePackages} from '../test/cluster/packages.js'
import {setupFailureMessage} from '../test/cluster/setup-error.js'
import {availableParallelism} from 'node:os'
import {benchObjects, type RunCpu} from './objects.js'
import {benchRest} from './rest.js'
import {benchS3} from './s3.js'
import {startS3Server} from '../test/cluster/s3.js'
import {benchVolume} from './volumes.js'

const wanted = new Set(process.argv.slice(2))
// s3 starts a Ceph of its own: only when asked for.
const runs = (name: string) => (wanted.size === 0 && name !== 's3') || wanted.has(name)

let cluster: TestCluster
try {
  // Before anything starts: the Debian packages, installed or named.
  ensurePackages('bench')
  cluster = await startTestCluster()
} catch (err) {
  console.error(setupFailureMessage(err))
  process.exit(2)
}
const stop = () => cluster.stop()
process.once('SIGINT', () => void stop().then(() => process.exit(130)))
try {
  console.log(`test cluster: ${cluster.server}`)
  let objectsArchive: string | undefined
  if (runs('objects')) {
    const r = await benchObjects(cluster)
    objectsArchive = r.archive
    console.log(`\nsnapshot of ${r.objects} objects (namespace-only user; loaded in ${r.loadSeconds.toFixed(1)} s)`)
    console.log(`  wall time     ${r.snapshotSeconds.toFixed(2)} s   (target < 10 s)`)
    console.log(`  peak RSS      ${r.peakRssMiB.toFixed(0)} MiB   (target ≤ 150 MiB)`)
    console.log(`  API requests  ${r.apiRequests}`)
    console.log(`  archive       ${r.archiveMiB.toFixed(1)} MiB`)
    const t0 = process.hrtime.bigint()
    const reader = await openArchive(r.archive)
    const inspectMs = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`  inspect       ${inspectMs.toFixed(1)} ms (${reader.bytesRead} bytes read)`)
    const t1 = process.hrtime.bigint()
    const verified = await verifyArchive(r.archive)
    console.log(`  verify        ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(0)} ms (${verified.ok ? 'ok' : 'FAILED'})`)
    const cpu = (c: RunCpu) => `CPU ${c.client.toFixed(2)} s + control plane ${c.controlPlane.toFixed(2)} s`
    console.log(`restore of the same archive into an empty namespace (namespace-only user)`)
    console.log(`  wall time     ${r.restoreSeconds.toFixed(2)} s   (${r.restored} objects created)`)
    console.log(`  peak RSS      ${r.restorePeakRssMiB.toFixed(0)} MiB   (target ≤ 150 MiB)`)
    console.log(`  ${cpu(r.restoreCpu)}`)
    console.log('the same objects, cleaned, created by baselines (each into a fresh namespace, namespace-only user)')
    for (const c of r.ceiling) console.log(`  minimal client, ${String(c.concurrency).padStart(2)} at once   ${c.seconds.toFixed(2)} s   ${(r.objects / c.seconds).toFixed(0)} objects/s   ${cpu(c.cpu)}`)
    const best = Math.min(...r.ceiling.map((c) => c.seconds))
    console.log(`  kubectl apply --server-side -f   ${r.kubectl.seconds.toFixed(2)} s   ${(r.objects / r.kubectl.seconds).toFixed(0)} objects/s, peak RSS ${r.kubectl.peakRssMiB.toFixed(0)} MiB   ${cpu(r.kubectl.cpu)}`)
    console.log(`  kubesnap ÷ ceiling   ${(best / r.restoreSeconds).toFixed(2)}   (target ≥ 0.80; speed ratio, wall time of the whole restore command)`)
    console.log(`  kubesnap ÷ kubectl   ${(r.kubectl.seconds / r.restoreSeconds).toFixed(2)}   (target > 1)`)
    // Client and control plane share this machine's cores: no run can take less than their CPU spread over all of them.
    const cores = availableParallelism()
    const floor = (c: RunCpu) => (c.client + c.controlPlane) / cores
    console.log(`  CPU floor on ${cores} cores ((client + control plane) ÷ cores): kubesnap ${floor(r.restoreCpu).toFixed(2)} s, best minimal client ${floor(r.ceiling.find((c) => c.seconds === best)!.cpu).toFixed(2)} s`)
  }
  if (runs('rest')) {
    console.log('\nthe CLI at rest (peak RSS and wall time, lowest–highest of 3 runs; check: the least a cluster command loads)')
    for (const f of await benchRest(cluster, objectsArchive)) {
      const target = f.command.startsWith('check') ? '' : '   (target ≤ 80 MiB)'
      console.log(`  ${f.command.padEnd(26)}  ${f.peakRssMiB[0].toFixed(0)}–${f.peakRssMiB[1].toFixed(0)} MiB   ${f.seconds[0].toFixed(2)}–${f.seconds[1].toFixed(2)} s${target}`)
    }
  }
  if (runs('volumes')) {
    console.log('\nvolume snapshot (namespace-only user; half random, half text data)')
    console.log('  size      kubesnap            peak RSS   raw exec ceiling    checked ceiling     kubectl|gzip -1     vs script  vs ceiling  vs checked')
    const restores: string[] = []
    const cpu: string[] = []
    for (const bytes of [256 * 1024 ** 2, 1024 ** 3, 2 * 1024 ** 3]) {
      const r = await benchVolume(cluster, bytes)
      restores.push(`  ${r.size.padEnd(8)}  ${r.restore.seconds.toFixed(1)} s ${r.restore.mibPerSecond.toFixed(1).padStart(5)} MiB/s, peak RSS ${r.restore.peakRssMiB.toFixed(0)} MiB`)
      const children = r.kubesnap.cpu.children + r.restore.cpu.children
      cpu.push(`  ${r.size.padEnd(8)}  ${r.kubesnap.cpu.perGiB.toFixed(2).padEnd(10)}${r.restore.cpu.perGiB.toFixed(2).padEnd(10)}${r.script.cpu.perGiB.toFixed(2).padEnd(16)}${children > 0 ? `children of kubesnap: ${children.toFixed(2)} s` : ''}`)
      const cell = (s: number, m: number) => `${s.toFixed(1)} s ${m.toFixed(1).padStart(5)} MiB/s`.padEnd(20)
      const ratio = (m: number) => (r.kubesnap.mibPerSecond / m).toFixed(2).padEnd(12)
      console.log(`  ${r.size.padEnd(8)}  ${cell(r.kubesnap.seconds, r.kubesnap.mibPerSecond)}${`${r.kubesnap.peakRssMiB.toFixed(0)} MiB`.padEnd(11)}${cell(r.raw.seconds, r.raw.mibPerSecond)}${cell(r.checked.seconds, r.checked.mibPerSecond)}${cell(r.script.seconds, r.script.mibPerSecond)}${ratio(r.script.mibPerSecond).slice(0, 11)}${ratio(r.raw.mibPerSecond)}${ratio(r.checked.mibPerSecond)}`)
    }
    console.log('  targets: peak RSS < 200 MiB at every size; kubesnap >= script (ratio >= 1.00) and >= 0.80 of the ceiling')
    console.log('  checked ceiling: the pod-side script (tar | tee | sha256sum) with its stream thrown away, the limit of a copy checked on both sides')
    console.log('\nvolume restore of those archives into a new namespace (namespace-only user; helper pod)')
    for (const line of restores) console.log(line)
    console.log('\nCPU-seconds per GiB on the bastion (kubesnap: its own process, every thread; the pod side runs on the node)')
    console.log('  size      snapshot  restore   kubectl|gzip -1')
    for (const line of cpu) console.log(line)
    console.log('  target: snapshot <= 3.5 CPU-s/GiB (the mixed volume)')
  }
  if (runs('s3')) {
    // Two sizes: peak RSS must not grow with the volume. list and inspect are timed on the larger archive.
    console.log('\nvolume snapshot to a bucket (radosgw on loopback, memstore) against the same to a directory')
    const server = await startS3Server()
    for (const bytes of [256 * 1024 ** 2, 1024 ** 3]) {
      const r = await benchS3(cluster, server, bytes).catch(async (err: unknown) => {
        await server.stop()
        throw err
      })
      console.log(`  ${r.size.padEnd(8)}  directory  ${r.local.seconds.toFixed(1)} s ${r.local.mibPerSecond.toFixed(1)} MiB/s, peak RSS ${r.local.peakRssMiB.toFixed(0)} MiB`)
      console.log(`  ${r.size.padEnd(8)}  s3://      ${r.s3.seconds.toFixed(1)} s ${r.s3.mibPerSecond.toFixed(1)} MiB/s, peak RSS ${r.s3.peakRssMiB.toFixed(0)} MiB   (ratio ${(r.s3.mibPerSecond / r.local.mibPerSecond).toFixed(2)}, targets >= 0.80, <= 200 MiB)`)
      if (bytes < 1024 ** 3) continue
      console.log(`  list       ${r.list.inProcessMs.toFixed(0)} ms in-process, ${r.list.ms.toFixed(0)} ms as a CLI run (start-up included)`)
      console.log(`  inspect    ${r.inspect.ms.toFixed(1)} ms, ${r.inspect.bytesRead} bytes read (targets < 200 ms, < 64 KiB)`)
    }
    await server.stop()
  }
} finally {
  await stop()
}
