import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Counter, EXPOSITION_CONTENT_TYPE, Gauge, Histogram, Registry } from '../src/metrics.js';
import { DURATION_BUCKETS } from '../src/service-metrics.js';
import { httpRequest, postJson, startService, type Running } from './helpers.js';

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (NaN|[+-]Inf|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/;

/** Checks every line against the text format and returns the samples by series. */
function parseExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'exposition must end with a newline');
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    const typeLine = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (typeLine) {
      assert.ok(!types.has(typeLine[1] ?? ''), `TYPE given twice for ${typeLine[1]}`);
      types.set(typeLine[1] ?? '', typeLine[2] ?? '');
      continue;
    }
    if (line.startsWith('# HELP ')) {
      continue;
    }
    const sample = SAMPLE.exec(line);
    assert.ok(sample, `not a valid sample line: ${line}`);
    const name = sample[1] ?? '';
    const family = [...types.keys()].find((f) => name === f || (types.get(f) === 'histogram' && /^_(bucket|sum|count)$/.test(name.slice(f.length)) && name.startsWith(f)));
    assert.ok(family, `sample ${name} has no TYPE line before it`);
    samples.set(`${name}${sample[2] ?? ''}`, Number(sample[3] === '+Inf' ? Infinity : sample[3]));
  }
  return samples;
}

describe('metrics registry', () => {
  it('renders counters with escaped label values', () => {
    const registry = new Registry();
    const counter = registry.register(new Counter('demo_total', 'A demo\ncounter.', ['path']));
    counter.inc({ path: 'a"b\\c\nd' });
    counter.inc({ path: 'a"b\\c\nd' }, 2);
    assert.equal(
      registry.expose(),
      '# HELP demo_total A demo\\ncounter.\n# TYPE demo_total counter\ndemo_total{path="a\\"b\\\\c\\nd"} 3\n',
    );
  });

  it('renders cumulative histogram buckets, +Inf, sum and count', () => {
    const registry = new Registry();
    const histogram = registry.register(new Histogram('demo_seconds', 'Demo.', ['route'], [0.5, 0.1, 1]));
    for (const value of [0.05, 0.2, 0.2, 3]) {
      histogram.observe({ route: '/x' }, value);
    }
    assert.equal(
      registry.expose(),
      [
        '# HELP demo_seconds Demo.',
        '# TYPE demo_seconds histogram',
        'demo_seconds_bucket{route="/x",le="0.1"} 1',
        'demo_seconds_bucket{route="/x",le="0.5"} 3',
        'demo_seconds_bucket{route="/x",le="1"} 3',
        'demo_seconds_bucket{route="/x",le="+Inf"} 4',
        'demo_seconds_sum{route="/x"} 3.45',
        'demo_seconds_count{route="/x"} 4',
        '',
      ].join('\n'),
    );
  });

  it('refuses bad names, missing labels, decreasing counters and duplicates', () => {
    assert.throws(() => new Counter('bad-name', 'x', []), /invalid metric name/);
    assert.throws(() => new Gauge('ok', 'x', ['le']), /invalid label name/);
    assert.throws(() => new Counter('ok_total', 'x', ['a']).inc({}), /needs label a/);
    assert.throws(() => new Counter('ok_total', 'x', []).inc({}, -1), /cannot decrease/);
    const registry = new Registry();
    registry.register(new Gauge('dup', 'x', []));
    assert.throws(() => registry.register(new Gauge('dup', 'x', [])), /registered twice/);
  });
});

describe('GET /metrics', () => {
  let svc: Running;

  before(async () => {
    svc = await startService();
  });

  after(async () => {
    await svc.stop();
  });

  it('exposes request counts by route template, status and version, and a latency histogram', async () => {
    const created = await postJson(`${svc.url}/api/users`, { name: 'Ada', email: 'ada@example.com' });
    await httpRequest(`${svc.url}/api/users/${created.json().id}`);
    await httpRequest(`${svc.url}/api/users/unknown-1`);
    await httpRequest(`${svc.url}/api/users/unknown-2`);
    await httpRequest(`${svc.url}/no/such/path`);
    await new Promise((resolve) => setTimeout(resolve, 20));

    const reply = await httpRequest(`${svc.url}/metrics`);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-type'], EXPOSITION_CONTENT_TYPE);
    const samples = parseExposition(reply.text);
    const v = 'version="1.2.3-test"';
    assert.equal(samples.get(`http_requests_total{method="POST",route="/api/users",status_code="201",${v}}`), 1);
    assert.equal(samples.get(`http_requests_total{method="GET",route="/api/users/:id",status_code="200",${v}}`), 1);
    // Ids never become label values: both unknown ids land in one series.
    assert.equal(samples.get(`http_requests_total{method="GET",route="/api/users/:id",status_code="404",${v}}`), 2);
    assert.equal(samples.get(`http_requests_total{method="GET",route="unmatched",status_code="404",${v}}`), 1);
    assert.ok(![...samples.keys()].some((key) => key.includes('unknown-1') || key.includes('/no/such/path')));

    const series = `method="GET",route="/api/users/:id",${v}`;
    assert.equal(samples.get(`http_request_duration_seconds_count{${series}}`), 3);
    assert.equal(samples.get(`http_request_duration_seconds_bucket{${series},le="+Inf"}`), 3);
    let previous = 0;
    for (const bound of DURATION_BUCKETS) {
      const value = samples.get(`http_request_duration_seconds_bucket{${series},le="${bound}"}`);
      assert.ok(value !== undefined && value >= previous, `bucket le=${bound} missing or not cumulative`);
      previous = value;
    }
    assert.ok((samples.get(`http_request_duration_seconds_sum{${series}}`) ?? -1) >= 0);

    assert.equal(samples.get(`user_service_build_info{${v},commit="abc123"}`), 1);
    assert.equal(samples.get('user_service_ready'), 1);
    assert.equal(samples.get('user_service_users'), 1);
    const start = samples.get('process_start_time_seconds') ?? 0;
    assert.ok(Math.abs(start - Date.now() / 1000) < 60, `process_start_time_seconds ${start} is not recent`);
    assert.ok((samples.get('process_resident_memory_bytes') ?? 0) > 0);
    assert.ok(samples.has('http_requests_in_flight'));
  });
});
