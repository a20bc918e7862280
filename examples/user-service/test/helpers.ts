// Test helpers: a real server on an ephemeral loopback port, plain node:http requests (no
// connection pooling unless a test asks for it), captured log lines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Env } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { UserServiceServer } from '../src/server.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: () => any;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: Agent;
}

export function httpRequest(url: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export class FakeClock {
  constructor(public ms = 1_700_000_000_000) {}

  now = (): number => this.ms;

  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export interface Running {
  service: UserServiceServer;
  url: string;
  logs: string[];
  secretsDir: string;
  stop(): Promise<void>;
}

export function makeSecretsDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'user-service-secrets-'));
  for (const [name, value] of Object.entries(files)) {
    writeFileSync(join(dir, name), value);
  }
  return dir;
}

/** Starts a service on 127.0.0.1:<ephemeral> with the given environment on top of test defaults. */
export async function startService(env: Env = {}, options: { clock?: FakeClock; secrets?: Record<string, string> } = {}): Promise<Running> {
  const secretsDir = makeSecretsDir(options.secrets);
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    APP_VERSION: '1.2.3-test',
    GIT_COMMIT: 'abc123',
    SECRETS_DIR: secretsDir,
    SHUTDOWN_DRAIN_SECONDS: '2',
    ...env,
  });
  const logs: string[] = [];
  const logger = createLogger('debug', { service: 'user-service' }, (line) => logs.push(line));
  const service = new UserServiceServer(config, logger, options.clock ? { now: options.clock.now } : {});
  const address = await service.listen();
  return {
    service,
    url: `http://127.0.0.1:${address.port}`,
    logs,
    secretsDir,
    async stop() {
      service.forceClose();
      await service.shutdown('test finished');
      rmSync(secretsDir, { recursive: true, force: true });
    },
  };
}

export function parsedLogs(logs: string[]): Record<string, any>[] {
  return logs.map((line) => JSON.parse(line) as Record<string, any>);
}
