import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { httpRequest, startService } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('graceful shutdown', () => {
  it('turns readiness off at once and keeps serving during the pre-stop delay', async () => {
    const svc = await startService({ SHUTDOWN_DELAY_SECONDS: '0.5' });
    // A keep-alive client: the server, not the client, must be the one asking to close.
    const agent = new Agent({ keepAlive: true });
    const before = await httpRequest(`${svc.url}/api/health/ready`, { agent });
    assert.equal(before.headers.connection, 'keep-alive');
    const done = svc.service.shutdown('test');
    const ready = await httpRequest(`${svc.url}/api/health/ready`, { agent });
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json().reasons, ['shutting down']);
    assert.equal(ready.headers.connection, 'close');
    // Endpoint removal has not reached every proxy yet, so real traffic must still succeed.
    const users = await httpRequest(`${svc.url}/api/users`);
    assert.equal(users.status, 200);
    assert.equal((await httpRequest(`${svc.url}/api/health/status`)).status, 200);
    assert.deepEqual(await done, { drained: true, abandonedRequests: 0 });
    await assert.rejects(httpRequest(`${svc.url}/api/users`), { code: 'ECONNREFUSED' });
    agent.destroy();
  });

  it('finishes in-flight requests before closing', async () => {
    const svc = await startService({ FAULT_LATENCY_MS: '300', SHUTDOWN_DRAIN_SECONDS: '5' });
    const agent = new Agent({ keepAlive: true });
    const inFlight = httpRequest(`${svc.url}/api/users`, { agent });
    await wait(50);
    const started = Date.now();
    const result = await svc.service.shutdown('test');
    assert.deepEqual(result, { drained: true, abandonedRequests: 0 });
    assert.ok(Date.now() - started < 2000, 'drain waited for the timeout instead of the request');
    const reply = await inFlight;
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.connection, 'close');
    agent.destroy();
  });

  it('closes idle keep-alive connections instead of waiting for them', async () => {
    const svc = await startService({ SHUTDOWN_DRAIN_SECONDS: '5' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await httpRequest(`${svc.url}/api/users`, { agent });
    assert.equal(first.status, 200);
    assert.notEqual(first.headers.connection, 'close');
    const sockets = Object.values(agent.freeSockets).flat();
    assert.equal(sockets.length, 1);
    const socket = sockets[0];
    assert.ok(socket);
    // The agent unrefs pooled sockets; without a ref the loop could go idle before 'close' arrives.
    socket.ref();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const started = Date.now();
    assert.deepEqual(await svc.service.shutdown('test'), { drained: true, abandonedRequests: 0 });
    assert.ok(Date.now() - started < 1000);
    await closed;
    agent.destroy();
  });

  it('gives up on requests that outlast SHUTDOWN_DRAIN_SECONDS', async () => {
    const svc = await startService({ FAULT_LATENCY_MS: '1500', SHUTDOWN_DRAIN_SECONDS: '0.2' });
    const slow = httpRequest(`${svc.url}/api/users`);
    await wait(50);
    const result = await svc.service.shutdown('test');
    assert.deepEqual(result, { drained: false, abandonedRequests: 1 });
    await assert.rejects(slow, { code: 'ECONNRESET' });
  });

  it('on SIGTERM the process drains an in-flight request and exits 0', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        HOST: '127.0.0.1',
        PORT: '0',
        APP_VERSION: '9.9.9',
        SECRETS_DIR: '/nonexistent',
        FAULT_LATENCY_MS: '400',
        SHUTDOWN_DRAIN_SECONDS: '5',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: Record<string, any>[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, any>;
        lines.push(entry);
        if (entry.msg === 'listening') resolve(entry.port as number);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code} before listening`)));
    });
    const inFlight = httpRequest(`http://127.0.0.1:${port}/api/version`);
    await wait(100);
    child.kill('SIGTERM');
    const reply = await inFlight;
    assert.equal(reply.status, 200);
    assert.equal(reply.json().version, '9.9.9');
    assert.equal(await exited, 0);
    const messages = lines.map((entry) => entry.msg);
    assert.deepEqual(messages.slice(-3), ['shutdown started', 'request', 'shutdown complete']);
    assert.equal(lines.at(-3)?.reason, 'SIGTERM');
    assert.equal(lines.at(-1)?.drained, true);
  });
});
