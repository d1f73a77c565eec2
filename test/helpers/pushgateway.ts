/**
 * A real Prometheus Pushgateway (Debian's `prometheus-pushgateway`) on a free
 * loopback port, for the tests that push metrics, and a scrape of what it shows.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as assert from 'uvu/assert'
import {freePort} from '../cluster/ports.js'
import {startProcess, waitForHealthy} from '../cluster/processes.js'

const PUSHGATEWAY = '/usr/bin/prometheus-pushgateway'

export interface Gateway {
  url: string
  stop(): Promise<void>
}

/** Starts a Pushgateway without persistence; it dies with the test process. */
export async function startPushgateway(): Promise<Gateway> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesnap-pushgateway-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = startProcess({name: 'pushgateway', command: PUSHGATEWAY, args: [`--web.listen-address=127.0.0.1:${port}`], logDir: dir})
  await waitForHealthy(proc, {url: `${url}/-/ready`, timeoutMs: 20_000})
  return {
    url,
    async stop() {
      await proc.stop()
      await rm(dir, {recursive: true, force: true})
    },
  }
}

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of `GET /metrics`, parsed just enough for these tests (no escaped quotes in label values). */
export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`)
  assert.is(res.status, 200)
  const samples: Sample[] = []
  for (const line of (await res.text()).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match) continue
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[key] = value
    samples.push({name: match[1], labels, value: Number(match[3])})
  }
  return samples
}

/** The value of one kubesnap metric of one namespace's group, or undefined when the group has none. */
export function valueOf(samples: Sample[], name: string, namespace: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = {job: 'kubesnap', namespace, ...labels}
  const found = samples.filter((s) => s.name === name && Object.entries(wanted).every(([k, v]) => s.labels[k] === v))
  assert.ok(found.length <= 1, `${name}{namespace="${namespace}"} appears ${found.length} times`)
  return found[0]?.value
}
