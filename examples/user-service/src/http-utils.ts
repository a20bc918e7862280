import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) {
    res.setHeader(name, value);
  }
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  res.end(payload);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  const body: { error: string; details?: string[] } = { error: err.message };
  if (err.details && err.details.length > 0) {
    body.details = err.details;
  }
  sendJson(res, err.status, body, err.headers);
}

// Bodies a little over the limit are read and dropped so the 413 answer reaches the client;
// closing a socket with unread data makes the kernel reset it, and the answer can be lost.
// Beyond this many bytes the client is not worth that courtesy.
const DISCARD_LIMIT_BYTES = 1024 * 1024;

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, `request body larger than ${maxBytes} bytes`, undefined, { connection: 'close' });
}

/** Reads a JSON request body of at most maxBytes. */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    return Promise.reject(
      new HttpError(415, `expected content-type application/json, got ${JSON.stringify(type || 'none')}`),
    );
  }
  if (Number(req.headers['content-length'] ?? '0') > DISCARD_LIMIT_BYTES) {
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
      } else if (size > DISCARD_LIMIT_BYTES && !settled) {
        settled = true;
        req.off('data', onData);
        reject(tooLarge(maxBytes));
      }
    };
    req.on('data', onData);
    req.on('error', (err) => {
      settled = true;
      reject(err);
    });
    req.on('end', () => {
      if (settled) {
        return;
      }
      settled = true;
      if (size > maxBytes) {
        reject(tooLarge(maxBytes));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'request body is not valid JSON'));
      }
    });
  });
}

/** Parses a non-negative integer query parameter, naming it in the 400 answer when it is not one. */
export function queryInteger(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const value = params.get(name);
  if (value === null || value === '') {
    return fallback;
  }
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed > max) {
    throw new HttpError(400, `query parameter ${name}: expected an integer from 0 to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}
