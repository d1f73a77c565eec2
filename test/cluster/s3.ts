/**
 * A real S3 server for the tests: a one-host Ceph (one monitor, one memstore
 * OSD, one radosgw) on 127.0.0.1, every file under one temp dir, up in about a
 * second (OBJECT-STORAGE.md). Only the S3 tests start it.
 */
import {execFile} from 'node:child_process'
import {randomBytes, randomUUID} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'
import {freePorts} from './ports.js'
import {startProcess, tailLog, type ManagedProcess} from './processes.js'

const run = promisify(execFile)

/** A running radosgw and the keys of its one S3 user. */
export interface S3Server {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  /** The directory holding its conf, data and logs. */
  dir: string
  /** Stops radosgw, then the OSD, then the monitor (one at a time: together, radosgw hangs) and removes the directory. */
  stop(): Promise<void>
}

/** Starts a one-host Ceph with radosgw on free loopback ports; resolves when S3 answers. */
export async function startS3Server(): Promise<S3Server> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kubesnap-s3-'))
  const [monPort, rgwPort, osdMin] = await freePorts(3)
  const conf = path.join(dir, 'ceph.conf')
  const c = ['-c', conf]
  const started: ManagedProcess[] = []
  const stop = async () => {
    // radosgw in the foreground ignores SIGTERM for seconds; its data lives in the OSD's memory, so a kill loses nothing.
    for (const proc of started.reverse()) await proc.stop(proc.name === 'radosgw' ? 500 : 5000)
    await rm(dir, {recursive: true, force: true})
  }
  try {
    // The OSD needs a few ports in a row; the first is free and the rest are very likely so.
    await writeFile(conf, cephConf(dir, monPort, rgwPort, osdMin))
    await mkdir(path.join(dir, 'mon'), {recursive: true})
    await mkdir(path.join(dir, 'osd'), {recursive: true})
    const keyring = path.join(dir, 'keyring')
    await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'])
    const monmap = path.join(dir, 'monmap')
    await run('monmaptool', ['--create', '--clobber', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', randomUUID(), monmap])
    await run('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring])
    started.push(startProcess({name: 'ceph-mon', command: 'ceph-mon', args: [...c, '-f', '-i', 'a'], logDir: dir}))
    const uuid = randomUUID()
    const {stdout: id} = await run('ceph', [...c, 'osd', 'new', uuid], {timeout: 30_000})
    await run('ceph-osd', [...c, '-i', id.trim(), '--mkfs', '--osd-uuid', uuid])
    started.push(startProcess({name: 'ceph-osd', command: 'ceph-osd', args: [...c, '-f', '-i', id.trim()], logDir: dir}))
    const accessKeyId = `KS${randomBytes(8).toString('hex').toUpperCase()}`
    const secretAccessKey = randomBytes(24).toString('base64url')
    await run('radosgw-admin', [...c, 'user', 'create', '--uid', 'kubesnap', '--display-name', 'kubesnap tests', '--access-key', accessKeyId, '--secret-key', secretAccessKey], {timeout: 60_000})
    const rgw = startProcess({name: 'radosgw', command: 'radosgw', args: [...c, '-f', '-n', 'client.rgw'], logDir: dir})
    started.push(rgw)
    const endpoint = `http://127.0.0.1:${rgwPort}`
    await waitForS3(rgw, endpoint)
    return {endpoint, region: 'us-east-1', accessKeyId, secretAccessKey, dir, stop}
  } catch (err) {
    const logs = await Promise.all(started.map(async (p) => `${p.name}:\n${await tailLog(p.logFile, 10)}`))
    await stop()
    throw new Error(`Starting Ceph's radosgw failed: ${(err as Error).message}\n${logs.join('\n')}`, {cause: err})
  }
}

/** The one conf file: auth off, one replica, fast paxos, memstore, radosgw on loopback (OBJECT-STORAGE.md says why each). */
function cephConf(dir: string, monPort: number, rgwPort: number, osdMin: number): string {
  return `[global]
fsid = ${randomUUID()}
mon_host = v2:127.0.0.1:${monPort}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_port_min = ${osdMin}
ms_bind_port_max = ${osdMin + 20}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
client_mount_timeout = 30
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
mon_osd_full_ratio = .99
mon_osd_nearfull_ratio = .99
mon_osd_backfillfull_ratio = .99
osd_failsafe_full_ratio = .99
mon_data_avail_warn = 2
mon_data_avail_crit = 1
run_dir = ${dir}
admin_socket = ${dir}/$name.asok
pid_file = ${dir}/$name.pid
log_file = ${dir}/$name.ceph.log
keyring = ${dir}/keyring
[mon]
mon_data = ${dir}/mon
paxos_propose_interval = 0.02
[osd]
osd_data = ${dir}/osd
osd_objectstore = memstore
memstore_device_bytes = ${8 * 1024 ** 3}
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw_dns_name = 127.0.0.1
rgw_gc_obj_min_wait = 0
rgw_gc_processor_period = 10
rgw_gc_processor_max_time = 10
`
}

/**
 * Waits until a GET of / answers ListAllMyBucketsResult. A 200 is not enough:
 * radosgw with a taken port logs `failed initializing frontend` and keeps running.
 */
async function waitForS3(rgw: ManagedProcess, endpoint: string): Promise<void> {
  const deadline = Date.now() + 60_000
  const log = path.join(path.dirname(rgw.logFile), 'client.rgw.ceph.log')
  while (Date.now() < deadline) {
    if (!rgw.running()) throw new Error(`radosgw exited with code ${await rgw.exited}`)
    const text = await readFile(log, 'utf8').catch(() => '')
    if (text.includes('failed initializing frontend')) throw new Error(`radosgw could not listen on ${endpoint} (port taken?)`)
    const body = await getBody(endpoint).catch(() => '')
    if (body.includes('ListAllMyBucketsResult')) return
    await sleep(100)
  }
  throw new Error(`radosgw did not answer S3 at ${endpoint} within 60 s`)
}

function getBody(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {agent: false}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve(body))
      res.on('error', reject)
    })
    req.setTimeout(2000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}
