import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULT_SECRETS_DIR, loadConfig, neededSecrets, type Env } from '../src/config.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('configuration', () => {
  it('has defaults that work without any variable', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.version, '0.0.0-dev');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.secretsDir, DEFAULT_SECRETS_DIR);
    assert.deepEqual(config.requiredSecrets, []);
    assert.equal(config.writeTokenSecret, null);
    assert.equal(config.shutdownDelaySeconds, 0);
    assert.equal(config.shutdownDrainSeconds, 10);
    assert.deepEqual(config.faults, {
      healthFail: false,
      readyFail: false,
      errorRate: 0,
      errorStatus: 500,
      latencyMs: 0,
      startDelaySeconds: 0,
      failAfterSeconds: null,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      APP_VERSION: '1.4.2',
      LOG_LEVEL: 'WARN',
      SECRETS_DIR: '/run/secrets',
      REQUIRED_SECRETS: 'api-token, db.password ,api-token',
      WRITE_TOKEN_SECRET: 'write-token',
      SHUTDOWN_DELAY_SECONDS: '5',
      SHUTDOWN_DRAIN_SECONDS: '2.5',
      FAULT_HEALTH_FAIL: 'yes',
      FAULT_READY_FAIL: 'false',
      FAULT_ERROR_RATE: '0.25',
      FAULT_ERROR_STATUS: '503',
      FAULT_LATENCY_MS: '150',
      FAULT_START_DELAY_SECONDS: '20',
      FAULT_FAIL_AFTER_SECONDS: '60',
    });
    assert.equal(config.port, 8080);
    assert.equal(config.version, '1.4.2');
    assert.equal(config.logLevel, 'warn');
    assert.deepEqual(config.requiredSecrets, ['api-token', 'db.password']);
    assert.deepEqual(neededSecrets(config), ['api-token', 'db.password', 'write-token']);
    assert.equal(config.shutdownDelaySeconds, 5);
    assert.equal(config.shutdownDrainSeconds, 2.5);
    assert.deepEqual(config.faults, {
      healthFail: true,
      readyFail: false,
      errorRate: 0.25,
      errorStatus: 503,
      latencyMs: 150,
      startDelaySeconds: 20,
      failAfterSeconds: 60,
    });
  });

  const bad: [Env, string][] = [
    [{ PORT: 'abc' }, 'PORT: expected an integer from 0 to 65535, got "abc"'],
    [{ PORT: '70000' }, 'PORT: expected an integer from 0 to 65535, got "70000"'],
    [{ PORT: '30.5' }, 'PORT: expected an integer from 0 to 65535, got "30.5"'],
    [{ APP_VERSION: 'has space' }, 'APP_VERSION: expected a version of 1-128 characters from [A-Za-z0-9._+-], got "has space"'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL: expected one of debug, info, warn, error, silent, got "verbose"'],
    [{ SECRETS_DIR: 'relative/dir' }, 'SECRETS_DIR: expected an absolute directory path, got "relative/dir"'],
    [{ REQUIRED_SECRETS: 'ok,../etc/passwd' }, 'REQUIRED_SECRETS: expected a comma-separated list of secret file names'],
    [{ WRITE_TOKEN_SECRET: 'a/b' }, 'WRITE_TOKEN_SECRET: expected a secret file name'],
    [{ WRITE_TOKEN_SECRET: '..data' }, 'WRITE_TOKEN_SECRET: expected a secret file name'],
    [{ REQUIRED_SECRETS: '..data' }, 'REQUIRED_SECRETS: expected a comma-separated list of secret file names'],
    [{ SHUTDOWN_DRAIN_SECONDS: '-1' }, 'SHUTDOWN_DRAIN_SECONDS: expected a number from 0 to 300 seconds, got "-1"'],
    [{ SHUTDOWN_DELAY_SECONDS: 'soon' }, 'SHUTDOWN_DELAY_SECONDS: expected a number from 0 to 300 seconds, got "soon"'],
    [{ USERS_MAX: '0' }, 'USERS_MAX: expected an integer from 1 to 1000000, got "0"'],
    [{ HTTP_MAX_REQUESTS_PER_SOCKET: '-1' }, 'HTTP_MAX_REQUESTS_PER_SOCKET: expected an integer from 0 to 1000000, got "-1"'],
    [{ FAULT_HEALTH_FAIL: 'maybe' }, 'FAULT_HEALTH_FAIL: expected one of true/false, 1/0, yes/no, on/off, got "maybe"'],
    [{ FAULT_READY_FAIL: '2' }, 'FAULT_READY_FAIL: expected one of true/false'],
    [{ FAULT_ERROR_RATE: '1.5' }, 'FAULT_ERROR_RATE: expected a number from 0 to 1, got "1.5"'],
    [{ FAULT_ERROR_RATE: '10%' }, 'FAULT_ERROR_RATE: expected a number from 0 to 1, got "10%"'],
    [{ FAULT_ERROR_STATUS: '404' }, 'FAULT_ERROR_STATUS: expected an integer from 500 to 599, got "404"'],
    [{ FAULT_LATENCY_MS: '1e3' }, 'FAULT_LATENCY_MS: expected an integer from 0 to 600000, got "1e3"'],
    [{ FAULT_START_DELAY_SECONDS: 'x' }, 'FAULT_START_DELAY_SECONDS: expected a number from 0 to 3600 seconds, got "x"'],
    [{ FAULT_FAIL_AFTER_SECONDS: '-3', FAULT_ERROR_RATE: '0.5' }, 'FAULT_FAIL_AFTER_SECONDS: expected a number from 0 to 86400 seconds, got "-3"'],
    [{ FAULT_FAIL_AFTER_SECONDS: '30' }, 'FAULT_FAIL_AFTER_SECONDS: only delays FAULT_HEALTH_FAIL, FAULT_ERROR_RATE or FAULT_LATENCY_MS'],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)} naming the variable`, () => {
      const problems = problemsOf(env);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.ok(problems[0]?.startsWith(message), `${problems[0]} does not start with ${message}`);
    });
  }

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'y', FAULT_ERROR_RATE: 'z' });
    assert.deepEqual(
      problems.map((p) => p.split(':')[0]),
      ['PORT', 'LOG_LEVEL', 'FAULT_ERROR_RATE'],
    );
  });

  it('treats empty values as unset', () => {
    assert.equal(loadConfig({ PORT: '', FAULT_ERROR_RATE: '  ' }).port, 3000);
  });

  it('makes the process exit 2 with the variable named, before listening', () => {
    const run = spawnSync(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', FAULT_ERROR_RATE: 'lots' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /FAULT_ERROR_RATE: expected a number from 0 to 1, got "lots"/);
    const line = JSON.parse(run.stdout.trim().split('\n')[0] ?? '{}');
    assert.equal(line.level, 'error');
    assert.equal(line.msg, 'invalid configuration');
    assert.ok(!run.stdout.includes('"listening"'));
  });
});
