import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { FaultInjector } from '../src/faults.js';
import { FakeClock, httpRequest, startService, type Running } from './helpers.js';

function injector(env: Record<string, string>, clock: FakeClock): FaultInjector {
  return new FaultInjector(loadConfig(env).faults, clock.now(), clock.now);
}

describe('fault injector', () => {
  it('fails exactly the configured share of requests, spread evenly', () => {
    const faults = injector({ FAULT_ERROR_RATE: '0.1' }, new FakeClock());
    const outcomes = Array.from({ length: 100 }, () => faults.injectedErrorStatus());
    assert.equal(outcomes.filter((s) => s === 500).length, 10);
    assert.deepEqual(outcomes.slice(0, 10), [null, null, null, null, null, null, null, null, null, 500]);
  });

  it('carries the remainder over, so 0.3 fails 3 of every 10', () => {
    const faults = injector({ FAULT_ERROR_RATE: '0.3' }, new FakeClock());
    const outcomes = Array.from({ length: 10 }, () => faults.injectedErrorStatus());
    assert.deepEqual(
      outcomes.map((s) => (s === null ? '.' : 'x')).join(''),
      '...x..x..x',
    );
  });

  it('fails every request at rate 1 and none at rate 0', () => {
    const all = injector({ FAULT_ERROR_RATE: '1', FAULT_ERROR_STATUS: '503' }, new FakeClock());
    const none = injector({}, new FakeClock());
    for (let i = 0; i < 20; i += 1) {
      assert.equal(all.injectedErrorStatus(), 503);
      assert.equal(none.injectedErrorStatus(), null);
    }
  });

  it('keeps faults off until FAULT_FAIL_AFTER_SECONDS has passed', () => {
    const clock = new FakeClock();
    const faults = injector(
      { FAULT_FAIL_AFTER_SECONDS: '30', FAULT_ERROR_RATE: '1', FAULT_HEALTH_FAIL: 'true', FAULT_LATENCY_MS: '200' },
      clock,
    );
    clock.advance(29.9);
    assert.equal(faults.healthFailing(), false);
    assert.equal(faults.injectedErrorStatus(), null);
    assert.equal(faults.addedLatencyMs(), 0);
    clock.advance(0.1);
    assert.equal(faults.healthFailing(), true);
    assert.equal(faults.injectedErrorStatus(), 500);
    assert.equal(faults.addedLatencyMs(), 200);
  });

  it('blocks readiness during the start delay and for FAULT_READY_FAIL', () => {
    const clock = new FakeClock();
    const slow = injector({ FAULT_START_DELAY_SECONDS: '5' }, clock);
    assert.equal(slow.readinessBlocker(), 'FAULT_START_DELAY_SECONDS');
    clock.advance(5);
    assert.equal(slow.readinessBlocker(), null);
    const never = injector({ FAULT_READY_FAIL: '1' }, clock);
    clock.advance(3600);
    assert.equal(never.readinessBlocker(), 'FAULT_READY_FAIL');
  });
});

describe('fault injection over HTTP', () => {
  const running: Running[] = [];
  const start = async (env: Record<string, string>, clock?: FakeClock): Promise<Running> => {
    const svc = await startService(env, clock ? { clock } : {});
    running.push(svc);
    return svc;
  };

  after(async () => {
    await Promise.all(running.map((svc) => svc.stop()));
  });

  it('FAULT_HEALTH_FAIL makes liveness answer 500 and leaves metrics alone', async () => {
    const svc = await start({ FAULT_HEALTH_FAIL: 'true' });
    const health = await httpRequest(`${svc.url}/api/health/status`);
    assert.equal(health.status, 500);
    assert.equal(health.json().status, 'failing');
    assert.equal(health.json().reason, 'fault injection: FAULT_HEALTH_FAIL');
    assert.equal((await httpRequest(`${svc.url}/metrics`)).status, 200);
    assert.equal((await httpRequest(`${svc.url}/api/users`)).status, 200);
  });

  it('FAULT_READY_FAIL keeps readiness at 503 with the reason', async () => {
    const svc = await start({ FAULT_READY_FAIL: 'true' });
    const ready = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json().reasons, ['fault injection: FAULT_READY_FAIL']);
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);
  });

  it('FAULT_ERROR_RATE fails that share of /api/* but never health or metrics', async () => {
    const svc = await start({ FAULT_ERROR_RATE: '0.5', FAULT_ERROR_STATUS: '502' });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      statuses.push((await httpRequest(`${svc.url}/api/users`)).status);
      assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);
      assert.equal((await httpRequest(`${svc.url}/api/health/ready`)).status, 200);
      assert.equal((await httpRequest(`${svc.url}/metrics`)).status, 200);
    }
    assert.deepEqual(statuses, [200, 502, 200, 502, 200, 502, 200, 502, 200, 502]);
    const failed = await httpRequest(`${svc.url}/api/version`);
    assert.equal(failed.status, 200);
    const next = await httpRequest(`${svc.url}/api/version`);
    assert.deepEqual([next.status, next.json().error], [502, 'fault injection: FAULT_ERROR_RATE']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const metrics = (await httpRequest(`${svc.url}/metrics`)).text;
    assert.match(metrics, /http_requests_total\{method="GET",route="\/api\/users",status_code="502",version="1.2.3-test"\} 5\n/);
  });

  it('FAULT_LATENCY_MS delays /api/* but not health', async () => {
    const svc = await start({ FAULT_LATENCY_MS: '150' });
    let t = Date.now();
    assert.equal((await httpRequest(`${svc.url}/api/users`)).status, 200);
    const slow = Date.now() - t;
    t = Date.now();
    await httpRequest(`${svc.url}/api/health/status`);
    const fast = Date.now() - t;
    assert.ok(slow >= 145, `users took ${slow} ms`);
    assert.ok(fast < 100, `health took ${fast} ms`);
  });

  it('FAULT_START_DELAY_SECONDS keeps readiness at 503 until it has elapsed', async () => {
    const clock = new FakeClock();
    const svc = await start({ FAULT_START_DELAY_SECONDS: '10' }, clock);
    const early = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(early.status, 503);
    assert.deepEqual(early.json().reasons, ['fault injection: FAULT_START_DELAY_SECONDS']);
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);
    clock.advance(10);
    assert.equal((await httpRequest(`${svc.url}/api/health/ready`)).status, 200);
  });

  it('FAULT_FAIL_AFTER_SECONDS turns a healthy service bad after the delay', async () => {
    const clock = new FakeClock();
    const svc = await start({ FAULT_FAIL_AFTER_SECONDS: '120', FAULT_ERROR_RATE: '1', FAULT_HEALTH_FAIL: 'true' }, clock);
    assert.equal((await httpRequest(`${svc.url}/api/users`)).status, 200);
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);
    clock.advance(120);
    assert.equal((await httpRequest(`${svc.url}/api/users`)).status, 500);
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 500);
  });

  it('logs the active faults at start', async () => {
    const svc = await start({ FAULT_ERROR_RATE: '0.2' });
    const entry = svc.logs.map((line) => JSON.parse(line)).find((e) => e.msg === 'fault injection active');
    assert.deepEqual(entry?.faults, { FAULT_ERROR_RATE: 0.2, FAULT_ERROR_STATUS: 500 });
    assert.equal(entry?.level, 'warn');
  });
});
