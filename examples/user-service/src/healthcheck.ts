// Container HEALTHCHECK probe. Runs with node itself because the slim image has no curl or wget.
// Exits 0 when the liveness endpoint answers 200 within the timeout, 1 otherwise.
import { request } from 'node:http';

const TIMEOUT_MS = 2500;

function targetHost(host: string | undefined): string {
  // A wildcard bind address is reachable on loopback; a specific one must be used as is.
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') {
    return '127.0.0.1';
  }
  return host;
}

const port = Number(process.env.PORT ?? '3000') || 3000;
const req = request(
  { host: targetHost(process.env.HOST?.trim()), port, path: '/api/health/status', method: 'GET', timeout: TIMEOUT_MS },
  (res) => {
    res.resume();
    process.exitCode = res.statusCode === 200 ? 0 : 1;
  },
);
req.on('timeout', () => {
  req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`));
});
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exitCode = 1;
});
req.end();
