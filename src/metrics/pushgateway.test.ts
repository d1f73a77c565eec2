import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {formatRunMetrics, pushRunMetrics, pushTarget, type RunMetrics} from './pushgateway.js'

const START = new Date(Date.UTC(2026, 10, 21, 16, 30, 0, 0))
const END = new Date(Date.UTC(2026, 10, 21, 16, 31, 2, 500))

const SUCCESS: RunMetrics = {namespace: 'shop', status: 'success', startedAt: START, finishedAt: END, bytes: 1_048_576, objects: 42, volumes: 2, exitCode: 0}

test('formats a successful run with its success timestamp', () => {
  assert.fixture(formatRunMetrics(SUCCESS), [
    '# HELP kubesnap_last_run_timestamp_seconds When the last snapshot run finished, successful or not, in Unix seconds.',
    '# TYPE kubesnap_last_run_timestamp_seconds gauge',
    'kubesnap_last_run_timestamp_seconds 1795278662.5',
    '# HELP kubesnap_last_success_timestamp_seconds When the last fully successful snapshot run finished, in Unix seconds.',
    '# TYPE kubesnap_last_success_timestamp_seconds gauge',
    'kubesnap_last_success_timestamp_seconds 1795278662.5',
    '# HELP kubesnap_duration_seconds How long the last snapshot run took.',
    '# TYPE kubesnap_duration_seconds gauge',
    'kubesnap_duration_seconds 62.5',
    '# HELP kubesnap_archive_bytes Size of the archive the last snapshot run wrote (0 when it failed).',
    '# TYPE kubesnap_archive_bytes gauge',
    'kubesnap_archive_bytes 1048576',
    '# HELP kubesnap_objects Objects stored by the last snapshot run.',
    '# TYPE kubesnap_objects gauge',
    'kubesnap_objects 42',
    '# HELP kubesnap_volumes Volumes stored by the last snapshot run.',
    '# TYPE kubesnap_volumes gauge',
    'kubesnap_volumes 2',
    '# HELP kubesnap_exit_code Exit code of the last snapshot run (0 success, 3 partial).',
    '# TYPE kubesnap_exit_code gauge',
    'kubesnap_exit_code 0',
    '# HELP kubesnap_status Outcome of the last snapshot run: 1 for its status, 0 for the others.',
    '# TYPE kubesnap_status gauge',
    'kubesnap_status{status="success"} 1',
    'kubesnap_status{status="partial"} 0',
    'kubesnap_status{status="failed"} 0',
    '',
  ].join('\n'))
})

test('leaves the success timestamp out of partial and failed runs', () => {
  const cases: [RunMetrics, string[]][] = [
    [{...SUCCESS, status: 'partial', exitCode: 3}, ['kubesnap_exit_code 3', 'kubesnap_status{status="success"} 0', 'kubesnap_status{status="partial"} 1', 'kubesnap_status{status="failed"} 0']],
    [{...SUCCESS, status: 'failed', exitCode: 1, bytes: 0, objects: 7, volumes: 0},
      ['kubesnap_archive_bytes 0', 'kubesnap_objects 7', 'kubesnap_volumes 0', 'kubesnap_exit_code 1', 'kubesnap_status{status="success"} 0', 'kubesnap_status{status="partial"} 0', 'kubesnap_status{status="failed"} 1']],
  ]
  for (const [metrics, samples] of cases) {
    const text = formatRunMetrics(metrics)
    assert.not.match(text, 'kubesnap_last_success_timestamp_seconds', metrics.status)
    assert.match(text, 'kubesnap_last_run_timestamp_seconds 1795278662.5\n', metrics.status)
    const lines = text.split('\n')
    for (const sample of samples) assert.ok(lines.includes(sample), `${metrics.status}: ${sample}`)
  }
})

test('a clock stepped back gives a duration of 0, not a negative one', () => {
  assert.match(formatRunMetrics({...SUCCESS, startedAt: END, finishedAt: START}), '\nkubesnap_duration_seconds 0\n')
})

test('builds the group URL from the base, with or without prefix and trailing slash', () => {
  const cases: [string, string, string][] = [
    ['http://127.0.0.1:9091', 'shop', 'http://127.0.0.1:9091/metrics/job/kubesnap/namespace/shop'],
    ['http://127.0.0.1:9091/', 'shop', 'http://127.0.0.1:9091/metrics/job/kubesnap/namespace/shop'],
    ['https://gw.example.com/pushgateway', 'kube-prod-2', 'https://gw.example.com/pushgateway/metrics/job/kubesnap/namespace/kube-prod-2'],
    ['https://gw.example.com/pushgateway//', 'shop', 'https://gw.example.com/pushgateway/metrics/job/kubesnap/namespace/shop'],
    ['http://127.0.0.1:9091/?x=1#y', 'shop', 'http://127.0.0.1:9091/metrics/job/kubesnap/namespace/shop'],
  ]
  for (const [base, namespace, url] of cases) {
    const target = pushTarget(base, namespace)
    assert.is(target.url, url, base)
    assert.is(target.authorization, undefined, base)
  }
})

test('turns userinfo into basic auth and keeps it out of the URL and the redacted form', () => {
  const target = pushTarget('http://ops:s3cr%40t@127.0.0.1:9091/gw/', 'shop')
  assert.is(target.url, 'http://127.0.0.1:9091/gw/metrics/job/kubesnap/namespace/shop')
  assert.is(target.authorization, `Basic ${Buffer.from('ops:s3cr@t').toString('base64')}`)
  assert.is(target.redacted, 'http://***@127.0.0.1:9091/gw/')
})

test('refuses URLs it cannot push to, without quoting a password', () => {
  const cases: [string, RegExp][] = [
    ['not a url :pw-secret@', /not a valid URL/],
    ['ftp://u:pw-secret@127.0.0.1/', /ftp:\/\/\*\*\*@127\.0\.0\.1\/ is not http or https/],
    ['http://u:pw-secret@127.0.0.1:9091/metrics/job/x', /already has a \/metrics path/],
  ]
  for (const [url, message] of cases) {
    try {
      pushTarget(url, 'shop')
      assert.unreachable(url)
    } catch (err) {
      assert.match((err as Error).message, message, url)
      assert.not.match((err as Error).message, 'pw-secret', url)
    }
  }
})

/** A fetch that answers from a list, recording each request. */
function fakeFetch(answers: (Response | Error)[]): {fetch: typeof fetch; calls: {url: string; init: RequestInit}[]} {
  const calls: {url: string; init: RequestInit}[] = []
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({url: String(input), init: init ?? {}})
    const answer = answers.shift() ?? new Response('', {status: 200})
    if (answer instanceof Error) throw answer
    return answer
  }
  return {fetch: fake as typeof fetch, calls}
}

const networkError = (code: string) => Object.assign(new TypeError('fetch failed'), {cause: Object.assign(new Error(`connect ${code}`), {code})})

test('POSTs the exposition text with auth and content type', async () => {
  const {fetch, calls} = fakeFetch([new Response('', {status: 200})])
  await pushRunMetrics('http://ops:pw@127.0.0.1:9091', SUCCESS, {fetch})
  assert.is(calls.length, 1)
  assert.is(calls[0].url, 'http://127.0.0.1:9091/metrics/job/kubesnap/namespace/shop')
  assert.is(calls[0].init.method, 'POST')
  assert.is(calls[0].init.body, formatRunMetrics(SUCCESS))
  const headers = calls[0].init.headers as Record<string, string>
  assert.is(headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  assert.is(headers.authorization, `Basic ${Buffer.from('ops:pw').toString('base64')}`)
})

test('retries 5xx and dropped connections, three attempts in all', async () => {
  const ok = fakeFetch([new Response('busy', {status: 503}), networkError('ECONNRESET'), new Response('', {status: 202})])
  await pushRunMetrics('http://127.0.0.1:9091', SUCCESS, {fetch: ok.fetch, minRetryDelayMs: 1})
  assert.is(ok.calls.length, 3)

  const down = fakeFetch([networkError('ECONNREFUSED'), networkError('ECONNREFUSED'), networkError('ECONNREFUSED'), new Response('')])
  try {
    await pushRunMetrics('http://u:pw-secret@127.0.0.1:9091', SUCCESS, {fetch: down.fetch, minRetryDelayMs: 1})
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'Pushing metrics to http://***@127.0.0.1:9091/ failed: ECONNREFUSED; check that the Pushgateway is up and the --pushgateway URL.')
  }
  assert.is(down.calls.length, 3)
})

test('a 4xx fails at once with the first line of the answer', async () => {
  const {fetch, calls} = fakeFetch([new Response('\npushed metrics are invalid or inconsistent with existing metrics: …\nmore\n', {status: 400})])
  try {
    await pushRunMetrics('http://u:pw-secret@127.0.0.1:9091/', SUCCESS, {fetch, minRetryDelayMs: 1})
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'Pushing metrics to http://***@127.0.0.1:9091/ failed: HTTP 400 pushed metrics are invalid or inconsistent with existing metrics: …; check the --pushgateway URL.')
  }
  assert.is(calls.length, 1)
})

test('gives up at the deadline, retries included', async () => {
  const hang: typeof fetch = (_input, init) => new Promise((_resolve, reject) => {
    init?.signal?.addEventListener('abort', () => reject(init.signal?.reason))
  })
  // AbortSignal.timeout's timer does not hold the event loop; a real hung socket would.
  const socket = setInterval(() => {}, 1000)
  const started = Date.now()
  try {
    await pushRunMetrics('http://127.0.0.1:9091', SUCCESS, {fetch: hang, timeoutMs: 150})
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'Pushing metrics to http://127.0.0.1:9091/ failed: no answer within 0.15 s; check that the Pushgateway is up and the --pushgateway URL.')
  } finally {
    clearInterval(socket)
  }
  assert.ok(Date.now() - started < 1000)
})

test.run()
