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

/**
 * Reads a JSON request body of at most maxBytes. Oversized bodies are consumed and dropped, not
 * destroyed, so the 413 answer can still be written on the same socket.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    return Promise.reject(
      new HttpError(415, `expected content-type application/json, got ${JSON.stringify(type || 'none')}`),
    );
  }
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    return Promise.reject(new HttpError(413, `request body larger than ${maxBytes} bytes`, undefined, { connection: 'close' }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
      }
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > maxBytes) {
        reject(new HttpError(413, `request body larger than ${maxBytes} bytes`, undefined, { connection: 'close' }));
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
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
