/**
 * Pushing run metrics (src/metrics/pushgateway.ts) to a real Prometheus
 * Pushgateway, Debian's `prometheus-pushgateway`, started here on a loopback
 * port: values per namespace as Prometheus would scrape them, the last success
 * surviving a failed run, basic auth in the URL, and errors without passwords.
 * Needs no cluster.
 *
 *   cd /work/main && node --import tsx node_modules/uvu/bin.js test 'metrics.test.ts$'
 */
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {pushRunMetrics, type RunMetrics} from '../src/metrics/pushgateway.js'
import {freePort} from './cluster/ports.js'
import {scrape, startPushgateway, valueOf, type Gateway} from './helpers/pushgateway.js'

let gateway: Promise<Gateway> | undefined

/** One Pushgateway for this file. */
function setup(): Promise<Gateway> {
  gateway ??= startPushgateway()
  return gateway
}

test.after(async () => {
  if (gateway) await (await gateway).stop()
})

const at = (iso: string) => new Date(iso)

const SHOP_OK: RunMetrics = {
  namespace: 'shop', status: 'success', exitCode: 0,
  startedAt: at('2026-11-21T16:30:00.000Z'), finishedAt: at('2026-11-21T16:31:02.500Z'),
  bytes: 5_242_880, objects: 42, volumes: 2,
}
const SHOP_FAILED: RunMetrics = {
  namespace: 'shop', status: 'failed', exitCode: 1,
  startedAt: at('2026-11-22T16:30:00.000Z'), finishedAt: at('2026-11-22T16:30:07.000Z'),
  bytes: 0, objects: 0, volumes: 0,
}
const BILLING_PARTIAL: RunMetrics = {
  namespace: 'billing-2', status: 'partial', exitCode: 3,
  startedAt: at('2026-11-22T17:00:00.000Z'), finishedAt: at('2026-11-22T17:00:10.250Z'),
  bytes: 1024, objects: 9, volumes: 0,
}
const BILLING_OK: RunMetrics = {...BILLING_PARTIAL, status: 'success', exitCode: 0, objects: 10}

test('a failed run replaces the last run but keeps the last success, per namespace', async () => {
  const {url} = await setup()
  await pushRunMetrics(url, SHOP_OK)
  await pushRunMetrics(`${url}/`, BILLING_OK)
  await pushRunMetrics(url, SHOP_FAILED)
  await pushRunMetrics(url, BILLING_PARTIAL)
  const samples = await scrape(url)

  const shop = (name: string, labels?: Record<string, string>) => valueOf(samples, name, 'shop', labels)
  assert.is(shop('kubesnap_last_success_timestamp_seconds'), SHOP_OK.finishedAt.getTime() / 1000)
  assert.is(shop('kubesnap_last_run_timestamp_seconds'), SHOP_FAILED.finishedAt.getTime() / 1000)
  assert.is(shop('kubesnap_duration_seconds'), 7)
  assert.is(shop('kubesnap_archive_bytes'), 0)
  assert.is(shop('kubesnap_objects'), 0)
  assert.is(shop('kubesnap_volumes'), 0)
  assert.is(shop('kubesnap_exit_code'), 1)
  assert.is(shop('kubesnap_status', {status: 'failed'}), 1)
  assert.is(shop('kubesnap_status', {status: 'partial'}), 0)
  assert.is(shop('kubesnap_status', {status: 'success'}), 0)

  const billing = (name: string, labels?: Record<string, string>) => valueOf(samples, name, 'billing-2', labels)
  assert.is(billing('kubesnap_last_success_timestamp_seconds'), BILLING_OK.finishedAt.getTime() / 1000)
  assert.is(billing('kubesnap_last_run_timestamp_seconds'), BILLING_PARTIAL.finishedAt.getTime() / 1000)
  assert.is(billing('kubesnap_duration_seconds'), 10.25)
  assert.is(billing('kubesnap_archive_bytes'), 1024)
  assert.is(billing('kubesnap_objects'), 9)
  assert.is(billing('kubesnap_exit_code'), 3)
  assert.is(billing('kubesnap_status', {status: 'partial'}), 1)
  assert.is(billing('kubesnap_status', {status: 'success'}), 0)
})

test('a namespace that never succeeded has no success timestamp', async () => {
  const {url} = await setup()
  await pushRunMetrics(url, {...SHOP_FAILED, namespace: 'never-ok'})
  const samples = await scrape(url)
  assert.is(valueOf(samples, 'kubesnap_last_success_timestamp_seconds', 'never-ok'), undefined)
  assert.is(valueOf(samples, 'kubesnap_status', 'never-ok', {status: 'failed'}), 1)
})

test('basic auth in the URL goes as a header the gateway accepts', async () => {
  const {url} = await setup()
  const withAuth = url.replace('http://', 'http://ops:pw-secret@')
  await pushRunMetrics(`${withAuth}/`, {...SHOP_OK, namespace: 'authed'})
  assert.is(valueOf(await scrape(url), 'kubesnap_objects', 'authed'), 42)
})

test('an unreachable gateway fails with a sentence that hides the password', async () => {
  // A port that was free a moment ago and that nothing listens on.
  const closed = `http://ops:pw-secret@127.0.0.1:${await freePort()}`
  try {
    await pushRunMetrics(closed, SHOP_OK, {minRetryDelayMs: 10})
    assert.unreachable()
  } catch (err) {
    const message = (err as Error).message
    assert.match(message, /^Pushing metrics to http:\/\/\*\*\*@127\.0\.0\.1:\d+\/ failed: ECONNREFUSED; check that the Pushgateway is up and the --pushgateway URL\.$/)
    assert.not.match(message, 'pw-secret')
    assert.not.match(message, 'ops')
  }
})

test('a push the gateway refuses fails at once with its answer', async () => {
  const {url} = await setup()
  // A wrong path prefix, as behind a misconfigured proxy: the gateway answers 404.
  const started = Date.now()
  try {
    await pushRunMetrics(`${url.replace('http://', 'http://ops:pw-secret@')}/wrong-prefix`, {...SHOP_OK, namespace: 'refused'}, {minRetryDelayMs: 2000})
    assert.unreachable()
  } catch (err) {
    const message = (err as Error).message
    assert.match(message, /^Pushing metrics to http:\/\/\*\*\*@127\.0\.0\.1:\d+\/wrong-prefix failed: HTTP 404 404 page not found; check the --pushgateway URL\.$/)
    assert.not.match(message, 'pw-secret')
  }
  // Not retried: a retry would first wait 2 s or more.
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`)
  assert.is(valueOf(await scrape(url), 'kubesnap_objects', 'refused'), undefined)
})

test.run()
