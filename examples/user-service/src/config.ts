// All configuration comes from environment variables and is validated once at start, so a bad
// value stops the process with a message naming the variable instead of misbehaving later.
import { LOG_LEVELS, type LogLevel } from './logger.js';

export interface FaultConfig {
  /** /api/health/status answers 500. */
  healthFail: boolean;
  /** /api/health/ready never answers 200. */
  readyFail: boolean;
  /** Share (0..1) of /api/* requests (except health) answered with errorStatus. */
  errorRate: number;
  errorStatus: number;
  /** Added to every /api/* request except health. */
  latencyMs: number;
  /** Readiness stays 503 until this many seconds after start. */
  startDelaySeconds: number;
  /** When set, healthFail, errorRate and latencyMs only apply this many seconds after start. */
  failAfterSeconds: number | null;
}

export interface Config {
  host: string;
  port: number;
  version: string;
  commit: string;
  logLevel: LogLevel;
  secretsDir: string;
  requiredSecrets: string[];
  writeTokenSecret: string | null;
  shutdownDelaySeconds: number;
  shutdownDrainSeconds: number;
  usersMax: number;
  /** Requests one kept-alive connection may carry before the server closes it (0: no limit). A bound makes
   * pooled clients reconnect now and then, so they rebalance over the pods a Service adds (a canary). */
  maxRequestsPerSocket: number;
  faults: FaultConfig;
}

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const DEFAULT_SECRETS_DIR = '/etc/user-service/secrets';

// Kubernetes Secret keys: this alphabet, not "." and not starting with "..". That also keeps a
// name from escaping SECRETS_DIR.
const SECRET_FILE = /^(?!\.\.)(?!\.$)[A-Za-z0-9._-]+$/;
const VERSION_TEXT = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

function shown(value: string): string {
  const short = value.length > 64 ? `${value.slice(0, 64)}...` : value;
  return JSON.stringify(short);
}

class Reader {
  readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    if (value === undefined) {
      return undefined;
    }
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  }

  isSet(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  fail(name: string, expected: string, value: string): void {
    this.problems.push(`${name}: expected ${expected}, got ${shown(value)}`);
  }

  text(name: string, fallback: string, pattern?: RegExp, expected?: string): string {
    const value = this.raw(name);
    if (value === undefined) {
      return fallback;
    }
    if (pattern && !pattern.test(value)) {
      this.fail(name, expected ?? `text matching ${pattern.source}`, value);
      return fallback;
    }
    return value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) {
      return fallback;
    }
    const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.fail(name, `an integer from ${min} to ${max}`, value);
      return fallback;
    }
    return parsed;
  }

  decimal(name: string, fallback: number, min: number, max: number, unit = ''): number {
    const value = this.raw(name);
    if (value === undefined) {
      return fallback;
    }
    const parsed = /^-?(\d+\.?\d*|\.\d+)$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      this.fail(name, `a number from ${min} to ${max}${unit}`, value);
      return fallback;
    }
    return parsed;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) {
      return fallback;
    }
    const word = value.toLowerCase();
    if (TRUE_WORDS.has(word)) {
      return true;
    }
    if (FALSE_WORDS.has(word)) {
      return false;
    }
    this.fail(name, 'one of true/false, 1/0, yes/no, on/off', value);
    return fallback;
  }

  choice<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const value = this.raw(name);
    if (value === undefined) {
      return fallback;
    }
    const lower = value.toLowerCase();
    const found = allowed.find((item) => item === lower);
    if (found === undefined) {
      this.fail(name, `one of ${allowed.join(', ')}`, value);
      return fallback;
    }
    return found;
  }

  nameList(name: string): string[] {
    const value = this.raw(name);
    if (value === undefined) {
      return [];
    }
    const names = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const bad = names.filter((item) => !SECRET_FILE.test(item));
    if (bad.length > 0) {
      this.fail(name, 'a comma-separated list of secret file names (letters, digits, ".", "_", "-", not starting with "..")', value);
      return [];
    }
    return [...new Set(names)];
  }
}

export function loadConfig(env: Env): Config {
  const read = new Reader(env);

  const host = read.text('HOST', '0.0.0.0', /^[A-Za-z0-9.:-]+$/, 'an IP address or host name');
  const port = read.integer('PORT', 3000, 0, 65535);
  const version = read.text('APP_VERSION', '0.0.0-dev', VERSION_TEXT, 'a version of 1-128 characters from [A-Za-z0-9._+-]');
  const commit = read.text('GIT_COMMIT', 'unknown', /^[A-Za-z0-9._-]{1,64}$/, 'a commit id of 1-64 characters from [A-Za-z0-9._-]');
  const logLevel = read.choice('LOG_LEVEL', 'info', LOG_LEVELS);
  const secretsDir = read.text('SECRETS_DIR', DEFAULT_SECRETS_DIR, /^\//, 'an absolute directory path');
  const requiredSecrets = read.nameList('REQUIRED_SECRETS');
  let writeTokenSecret: string | null = null;
  if (read.isSet('WRITE_TOKEN_SECRET')) {
    const value = read.text('WRITE_TOKEN_SECRET', '', SECRET_FILE, 'a secret file name (letters, digits, ".", "_", "-", not starting with "..")');
    writeTokenSecret = value === '' ? null : value;
  }
  const shutdownDelaySeconds = read.decimal('SHUTDOWN_DELAY_SECONDS', 0, 0, 300, ' seconds');
  const shutdownDrainSeconds = read.decimal('SHUTDOWN_DRAIN_SECONDS', 10, 0, 300, ' seconds');
  const usersMax = read.integer('USERS_MAX', 10000, 1, 1_000_000);
  const maxRequestsPerSocket = read.integer('HTTP_MAX_REQUESTS_PER_SOCKET', 0, 0, 1_000_000);

  const faults: FaultConfig = {
    healthFail: read.boolean('FAULT_HEALTH_FAIL', false),
    readyFail: read.boolean('FAULT_READY_FAIL', false),
    errorRate: read.decimal('FAULT_ERROR_RATE', 0, 0, 1),
    errorStatus: read.integer('FAULT_ERROR_STATUS', 500, 500, 599),
    latencyMs: read.integer('FAULT_LATENCY_MS', 0, 0, 600_000),
    startDelaySeconds: read.decimal('FAULT_START_DELAY_SECONDS', 0, 0, 3600, ' seconds'),
    failAfterSeconds: read.isSet('FAULT_FAIL_AFTER_SECONDS')
      ? read.decimal('FAULT_FAIL_AFTER_SECONDS', 0, 0, 86400, ' seconds')
      : null,
  };
  if (faults.failAfterSeconds !== null && !faults.healthFail && faults.errorRate === 0 && faults.latencyMs === 0) {
    read.problems.push(
      'FAULT_FAIL_AFTER_SECONDS: only delays FAULT_HEALTH_FAIL, FAULT_ERROR_RATE or FAULT_LATENCY_MS, and none of them is set',
    );
  }

  if (read.problems.length > 0) {
    throw new ConfigError(read.problems);
  }
  return {
    host,
    port,
    version,
    commit,
    logLevel,
    secretsDir,
    requiredSecrets,
    writeTokenSecret,
    shutdownDelaySeconds,
    shutdownDrainSeconds,
    usersMax,
    maxRequestsPerSocket,
    faults,
  };
}

/** Secrets that must be present for readiness: the listed ones plus the write token, if one is named. */
export function neededSecrets(config: Config): string[] {
  const names = [...config.requiredSecrets];
  if (config.writeTokenSecret !== null && !names.includes(config.writeTokenSecret)) {
    names.push(config.writeTokenSecret);
  }
  return names;
}
