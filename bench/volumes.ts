/**
 * Benchmark: snapshot of one volume's data through pod exec, side by side
 * with baselines on the same pod and volume: the raw exec stream thrown away
 * (the transport's ceiling), what a script does,
 * `kubectl exec POD -- tar cf - -C MOUNT . | gzip -1 > file`, and kubesnap's
 * own pod-side script (tar, tee, sha256sum) with its stream thrown away: the
 * ceiling of any copy that checks sha256 on both sides, before kubesnap's
 * own work. Then the archive is restored into a new namespace.
 */
import {createCipheriv} from 'node:crypto'
import {mkdtempSync, openSync, writeSync, closeSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {execa} from 'execa'
import {KubeApi} from '../src/cluster/index.js'
import {execInPod} from '../src/cluster/exec.js'
import {loadKubeConfig} from '../src/cluster/kubeconfig.js'
import {tarOutCommand} from '../src/volumes/tar-out.js'
import type {TestCluster} from '../test/cluster/index.js'
import {KUBESNAP_BIN} from '../test/helpers/cli.js'
import {measure, type Measured} from './measure.js'

const MiB = 1024 * 1024
const MOUNT = '/data'

/** Fills a directory with `bytes` of data: half incompressible, half text, in 64 MiB files. */
function fill(dir: string, bytes: number): void {
  const file = 64 * MiB
  // Deterministic incompressible bytes: AES-CTR over zeros with a fixed key, a few ms per MiB.
  const random = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16))
  const zeros = Buffer.alloc(MiB)
  const text = Buffer.from('kubesnap benchmark line of plain text, compressible\n'.repeat(MiB / 52 + 1)).subarray(0, MiB)
  let written = 0
  for (let i = 0; written < bytes; i++) {
    const fd = openSync(join(dir, `data-${String(i).padStart(4, '0')}.bin`), 'w')
    for (let n = 0; n < file && written < bytes; n += MiB, written += MiB) writeSync(fd, i % 2 === 1 ? text : random.update(zeros))
    closeSync(fd)
  }
}

/** A namespace with a claim of `bytes` and a pod that mounts it at /data. */
export async function setUp(cluster: TestCluster, bytes: number): Promise<{ns: string; pod: string}> {
  const ns = await cluster.createNamespace({prefix: 'bench-vol'})
  const api = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.admin}))
  try {
    await api.post(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      metadata: {name: 'data'}, spec: {accessModes: ['ReadWriteOnce'], resources: {requests: {storage: `${Math.ceil(bytes / 1024 ** 3) + 1}Gi`}}},
    })
    await api.post(`/api/v1/namespaces/${ns}/pods`, {
      metadata: {name: 'app'},
      spec: {containers: [{name: 'app', image: 'busybox:1.36', command: ['sleep', 'infinity'], volumeMounts: [{name: 'data', mountPath: MOUNT}]}],
        volumes: [{name: 'data', persistentVolumeClaim: {claimName: 'data'}}]},
    })
    for (let i = 0; ; i++) {
      const claim = await api.get<any>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/data`)
      const pod = await api.get<any>(`/api/v1/namespaces/${ns}/pods/app`)
      if (claim.spec.volumeName && pod.status?.phase === 'Running') {
        const pv = await api.get<any>(`/api/v1/persistentvolumes/${claim.spec.volumeName}`)
        fill(pv.spec.hostPath.path, bytes)
        return {ns, pod: 'app'}
      }
      if (i > 300) throw new Error('the benchmark pod did not start')
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    api.close()
  }
}

/**
 * CPU-seconds per GiB of volume data spent by a measured command: for kubesnap,
 * its own process (every thread: the gzip and hashing work in libuv's pool
 * included); `children` are the CPU-seconds of processes it started (none today).
 */
export interface CpuPerGiB {
  perGiB: number
  children: number
}

export interface VolumeBenchRow {
  size: string
  kubesnap: {seconds: number; mibPerSecond: number; peakRssMiB: number; archiveMiB: number; cpu: CpuPerGiB}
  raw: {seconds: number; mibPerSecond: number}
  checked: {seconds: number; mibPerSecond: number}
  /** kubesnap restore of the archive into a new namespace (helper pod, head -c | tar xf -). */
  restore: {seconds: number; mibPerSecond: number; peakRssMiB: number; cpu: CpuPerGiB}
  /** kubectl and gzip together: the CPU of what a script does on the bastion. */
  script: {seconds: number; mibPerSecond: number; peakRssMiB: number; cpu: CpuPerGiB}
}

/** The CPU a measured command spent per GiB of `bytes`, its children's apart. */
function cpuPerGiB(run: Measured, bytes: number, {withChildren = false} = {}): CpuPerGiB {
  const own = withChildren ? run.cpuSeconds : run.cpuSeconds - run.childCpuSeconds
  return {perGiB: own / (bytes / 1024 ** 3), children: run.childCpuSeconds}
}

/** Runs the three ways on one volume of `bytes`. */
export async function benchVolume(cluster: TestCluster, bytes: number): Promise<VolumeBenchRow> {
  const {ns, pod} = await setUp(cluster, bytes)
  const mib = bytes / MiB
  const out = mkdtempSync(join(tmpdir(), 'kubesnap-bench-vol-'))
  try {
    const snap = await measure(process.execPath, [KUBESNAP_BIN, 'snapshot', '-n', ns, '-o', out, '--kubeconfig', cluster.kubeconfigs.user, '--include-kinds', 'persistentvolumeclaims', '--json'])
    if (snap.code !== 0) throw new Error(`kubesnap snapshot failed: ${snap.stderr}`)
    const summary = JSON.parse(snap.stdout)

    const api = new KubeApi(loadKubeConfig({kubeconfig: cluster.kubeconfigs.user}))
    const discarded = async (command: string[]): Promise<number> => {
      const discard = new Writable({write: (_chunk, _enc, done) => done()})
      const t0 = process.hrtime.bigint()
      await execInPod(api, {namespace: ns, pod, container: 'app', command, stdout: discard})
      return Number(process.hrtime.bigint() - t0) / 1e9
    }
    const rawSeconds = await discarded(['tar', 'cf', '-', '-C', MOUNT, '.'])
    const checkedSeconds = await discarded(tarOutCommand(MOUNT))
    api.close()

    const target = await cluster.createNamespace({prefix: 'bench-restore'})
    let restore: Measured
    try {
      restore = await measure(process.execPath, [KUBESNAP_BIN, 'restore', summary.path, '--to-namespace', target, '--kubeconfig', cluster.kubeconfigs.user, '--json'])
      if (restore.code !== 0) throw new Error(`kubesnap restore failed: ${restore.stderr}`)
    } finally {
      await cluster.deleteNamespace(target, {wait: true})
    }

    const scriptFile = join(out, 'script.tar.gz')
    const script = await measure('sh', ['-c', `kubectl --kubeconfig "$1" exec -n "$2" "$3" -- tar cf - -C ${MOUNT} . | gzip -1 > "$4"`, 'sh', cluster.kubeconfigs.user, ns, pod, scriptFile])
    if (script.code !== 0) throw new Error(`the kubectl script failed: ${script.stderr}`)
    await execa('rm', ['-f', scriptFile])

    return {
      size: mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`,
      kubesnap: {seconds: snap.ms / 1000, mibPerSecond: mib / (snap.ms / 1000), peakRssMiB: snap.peakRssMiB, archiveMiB: summary.bytes / MiB, cpu: cpuPerGiB(snap, bytes)},
      raw: {seconds: rawSeconds, mibPerSecond: mib / rawSeconds},
      checked: {seconds: checkedSeconds, mibPerSecond: mib / checkedSeconds},
      restore: {seconds: restore.ms / 1000, mibPerSecond: mib / (restore.ms / 1000), peakRssMiB: restore.peakRssMiB, cpu: cpuPerGiB(restore, bytes)},
      // sh waits for kubectl and gzip: their CPU is the script's.
      script: {seconds: script.ms / 1000, mibPerSecond: mib / (script.ms / 1000), peakRssMiB: script.peakRssMiB, cpu: cpuPerGiB(script, bytes, {withChildren: true})},
    }
  } finally {
    rmSync(out, {recursive: true, force: true})
    await cluster.deleteNamespace(ns, {wait: true})
  }
}
