import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpRequest, parsedLogs, postJson, startService, type Running } from './helpers.js';

describe('HTTP API', () => {
  let svc: Running;

  before(async () => {
    svc = await startService({ USERS_MAX: '3' });
  });

  after(async () => {
    await svc.stop();
  });

  it('answers liveness with status ok and the version', async () => {
    const reply = await httpRequest(`${svc.url}/api/health/status`);
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    const body = reply.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.version, '1.2.3-test');
    assert.equal(body.commit, 'abc123');
  });

  it('answers readiness 200 once listening', async () => {
    const reply = await httpRequest(`${svc.url}/api/health/ready`);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json(), { status: 'ready', version: '1.2.3-test' });
  });

  it('reports the version from APP_VERSION', async () => {
    const reply = await httpRequest(`${svc.url}/api/version`);
    assert.equal(reply.status, 200);
    assert.equal(reply.json().version, '1.2.3-test');
    assert.equal(reply.json().commit, 'abc123');
  });

  it('creates, lists and fetches users', async () => {
    const created = await postJson(`${svc.url}/api/users`, { name: '  Ada Lovelace ', email: 'ada@example.com' });
    assert.equal(created.status, 201);
    const user = created.json();
    assert.equal(user.name, 'Ada Lovelace');
    assert.equal(user.email, 'ada@example.com');
    assert.match(user.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.headers.location, `/api/users/${user.id}`);

    const fetched = await httpRequest(`${svc.url}/api/users/${user.id}`);
    assert.equal(fetched.status, 200);
    assert.deepEqual(fetched.json(), user);

    const list = await httpRequest(`${svc.url}/api/users`);
    assert.equal(list.status, 200);
    assert.ok(list.json().users.some((u: { id: string }) => u.id === user.id));
  });

  it('refuses a second user with the same email, ignoring case', async () => {
    await postJson(`${svc.url}/api/users`, { name: 'Grace', email: 'grace@example.com' });
    const again = await postJson(`${svc.url}/api/users`, { name: 'Grace H', email: 'GRACE@example.com' });
    assert.equal(again.status, 409);
    assert.match(again.json().error, /already exists/);
  });

  it('answers 404 with the id for an unknown user', async () => {
    const reply = await httpRequest(`${svc.url}/api/users/does-not-exist`);
    assert.equal(reply.status, 404);
    assert.equal(reply.json().error, 'no user with id "does-not-exist"');
  });

  const invalid: [string, unknown, RegExp][] = [
    ['missing fields', {}, /name: required; email: required/],
    ['empty name', { name: '  ', email: 'a@example.com' }, /name: expected a non-empty string/],
    ['name not a string', { name: 7, email: 'a@example.com' }, /name: expected/],
    ['bad email', { name: 'A', email: 'not-an-email' }, /email: expected an address/],
    ['unknown field', { name: 'A', email: 'a@example.com', admin: true }, /unexpected field\(s\) "admin"/],
    ['array body', [1, 2], /body: expected a JSON object/],
    ['null body', null, /body: expected a JSON object/],
  ];
  for (const [label, body, message] of invalid) {
    it(`answers 400 naming the problem for ${label}`, async () => {
      const reply = await postJson(`${svc.url}/api/users`, body);
      assert.equal(reply.status, 400);
      assert.match(reply.json().error, message);
      assert.ok(Array.isArray(reply.json().details));
    });
  }

  it('answers 400 for a body that is not JSON', async () => {
    const reply = await postJson(`${svc.url}/api/users`, '{"name": ');
    assert.equal(reply.status, 400);
    assert.equal(reply.json().error, 'request body is not valid JSON');
  });

  it('answers 415 when the body is not declared as JSON', async () => {
    const reply = await httpRequest(`${svc.url}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=x',
    });
    assert.equal(reply.status, 415);
    assert.match(reply.json().error, /application\/json/);
  });

  it('answers 413 for a body over 64 KiB, declared or chunked', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024), email: 'big@example.com' });
    const declared = await postJson(`${svc.url}/api/users`, big);
    assert.equal(declared.status, 413);
    const chunked = await httpRequest(`${svc.url}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: big,
    });
    assert.equal(chunked.status, 413);
  });

  it('pages the user list and rejects bad paging parameters', async () => {
    const page = await httpRequest(`${svc.url}/api/users?limit=1&offset=0`);
    assert.equal(page.status, 200);
    assert.equal(page.json().users.length, 1);
    assert.equal(page.json().limit, 1);
    const bad = await httpRequest(`${svc.url}/api/users?limit=abc`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error, 'query parameter limit: expected an integer from 0 to 1000, got "abc"');
  });

  it('drops the oldest users beyond USERS_MAX', async () => {
    for (let i = 0; i < 4; i += 1) {
      const reply = await postJson(`${svc.url}/api/users`, { name: `User ${i}`, email: `user${i}@example.com` });
      assert.equal(reply.status, 201);
    }
    const list = await httpRequest(`${svc.url}/api/users`);
    assert.equal(list.json().total, 3);
    assert.deepEqual(
      list.json().users.map((u: { email: string }) => u.email),
      ['user1@example.com', 'user2@example.com', 'user3@example.com'],
    );
  });

  it('answers 404 for unknown paths and 405 with Allow for wrong methods', async () => {
    const missing = await httpRequest(`${svc.url}/nope`);
    assert.equal(missing.status, 404);
    const wrong = await httpRequest(`${svc.url}/api/users/x`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET, HEAD');
  });

  it('serves HEAD like GET without a body', async () => {
    const reply = await httpRequest(`${svc.url}/api/health/status`, { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, '');
  });

  it('logs one JSON line per request without the query string', async () => {
    const before = svc.logs.length;
    await httpRequest(`${svc.url}/api/users?token=hunter2`);
    // The log line is written when the response closes, which can trail the client's read.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const lines = parsedLogs(svc.logs.slice(before)).filter((entry) => entry.msg === 'request');
    assert.equal(lines.length, 1);
    const line = lines[0] ?? {};
    assert.equal(line.level, 'info');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/api/users');
    assert.equal(line.route, '/api/users');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok(!svc.logs.slice(before).join('\n').includes('hunter2'));
  });
});

describe('write token from the Secret volume', () => {
  let svc: Running;
  const token = 's3cr3t-token-value';

  before(async () => {
    svc = await startService({ WRITE_TOKEN_SECRET: 'api-token' }, { secrets: { 'api-token': `${token}\n` } });
  });

  after(async () => {
    await svc.stop();
  });

  it('refuses to create users without the bearer token', async () => {
    const none = await postJson(`${svc.url}/api/users`, { name: 'A', email: 'a@example.com' });
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await postJson(`${svc.url}/api/users`, { name: 'A', email: 'a@example.com' }, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
  });

  it('creates users with the token read from the file, trailing newline removed', async () => {
    const reply = await postJson(`${svc.url}/api/users`, { name: 'A', email: 'a@example.com' }, { authorization: `Bearer ${token}` });
    assert.equal(reply.status, 201);
  });

  it('logs secret names only, never values', async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const text = svc.logs.join('\n');
    assert.ok(!text.includes(token));
    const listening = parsedLogs(svc.logs).find((entry) => entry.msg === 'listening');
    assert.deepEqual(listening?.secrets_loaded, ['api-token']);
  });
});
