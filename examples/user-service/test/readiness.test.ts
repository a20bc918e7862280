import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { createLogger } from '../src/logger.js';
import { SecretStore } from '../src/secrets.js';
import { FakeClock, httpRequest, makeSecretsDir, startService, type Running } from './helpers.js';

const HEALTHCHECK = fileURLToPath(new URL('../src/healthcheck.js', import.meta.url));

describe('secret store', () => {
  it('reads the files of a Kubernetes Secret volume, skipping its dot-directories', () => {
    const dir = makeSecretsDir();
    // The layout kubelet writes: real files under a timestamped dir, "..data" and per-key symlinks.
    mkdirSync(join(dir, '..2024_01_01_00_00_00.1'));
    writeFileSync(join(dir, '..2024_01_01_00_00_00.1', 'api-token'), 'tok\n');
    symlinkSync('..2024_01_01_00_00_00.1', join(dir, '..data'));
    symlinkSync(join('..data', 'api-token'), join(dir, 'api-token'));
    writeFileSync(join(dir, '..data_tmp'), 'kubelet scratch');
    writeFileSync(join(dir, '.dockerconfigjson'), '{}');
    writeFileSync(join(dir, 'empty'), '');
    const store = new SecretStore(dir, createLogger('silent'));
    store.load();
    assert.deepEqual(store.names(), ['.dockerconfigjson', 'api-token']);
    assert.equal(store.get('api-token'), 'tok');
    assert.deepEqual(store.missing(['api-token', 'empty', 'other']), ['empty', 'other']);
  });

  it('treats a missing directory as holding no secrets', () => {
    const store = new SecretStore('/nonexistent/user-service-secrets', createLogger('silent'));
    store.load();
    assert.deepEqual(store.names(), []);
  });
});

describe('readiness', () => {
  const running: Running[] = [];
  after(async () => {
    await Promise.all(running.map((svc) => svc.stop()));
  });

  it('is 503 naming the missing required secret, and 200 once the file appears', async () => {
    const clock = new FakeClock();
    const svc = await startService({ REQUIRED_SECRETS: 'api-token,db-password' }, { clock, secrets: { 'db-password': 'pw-value' } });
    running.push(svc);
    const before = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(before.status, 503);
    assert.deepEqual(before.json().reasons, [`missing secret(s) api-token in ${svc.secretsDir}`]);
    assert.ok(!before.text.includes('pw-value'));
    // Liveness does not depend on configuration: restarting would not bring the secret.
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);

    writeFileSync(join(svc.secretsDir, 'api-token'), 'token-value');
    clock.advance(1);
    const afterWrite = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(afterWrite.status, 200);
    assert.ok(!svc.logs.join('\n').includes('token-value'));
    assert.ok(!svc.logs.join('\n').includes('pw-value'));
  });

  it('is 503 when the write token secret is named but absent', async () => {
    const svc = await startService({ WRITE_TOKEN_SECRET: 'api-token' });
    running.push(svc);
    const reply = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(reply.status, 503);
    assert.match(reply.json().reasons[0], /^missing secret\(s\) api-token/);
  });
});

describe('container healthcheck script', () => {
  const running: Running[] = [];
  after(async () => {
    await Promise.all(running.map((svc) => svc.stop()));
  });

  // Asynchronous on purpose: the probed server runs in this process and must keep answering.
  const probe = (port: string): Promise<number | null> =>
    new Promise((resolve) => {
      const child = execFile(process.execPath, [HEALTHCHECK], { env: { PORT: port, HOST: '127.0.0.1' }, timeout: 10_000 });
      child.once('exit', (code) => resolve(code));
    });

  it('exits 0 for a live service and 1 when liveness fails or nothing listens', async () => {
    const good = await startService();
    const bad = await startService({ FAULT_HEALTH_FAIL: 'true' });
    running.push(good, bad);
    assert.equal(await probe(new URL(good.url).port), 0);
    assert.equal(await probe(new URL(bad.url).port), 1);
    await good.stop();
    assert.equal(await probe(new URL(good.url).port), 1);
  });
});
