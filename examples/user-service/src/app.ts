// The request handler: routing, fault injection, metrics and the one log line per request.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { neededSecrets, type Config } from './config.js';
import type { FaultInjector } from './faults.js';
import { HttpError, queryInteger, readJsonBody, sendError, sendJson } from './http-utils.js';
import { errorFields, type Logger } from './logger.js';
import { EXPOSITION_CONTENT_TYPE } from './metrics.js';
import { allowedMethods, handlerFor, methodLabel, Router, UNMATCHED_ROUTE, type RequestContext, type RouteMatch } from './routes.js';
import type { SecretStore } from './secrets.js';
import { createServiceMetrics, type ServiceMetrics } from './service-metrics.js';
import { DuplicateEmailError, validateNewUser, type UserStore } from './users.js';

const MAX_BODY_BYTES = 64 * 1024;
const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000;
// Readiness may re-read the Secret volume, but not on every probe and scrape.
const SECRET_RELOAD_INTERVAL_MS = 1000;

/** Set by the server lifecycle; read by readiness and by every response. */
export interface LifecycleState {
  listening: boolean;
  draining: boolean;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  faults: FaultInjector;
  secrets: SecretStore;
  users: UserStore;
  state: LifecycleState;
  startedAtMs: number;
  now?: () => number;
}

export interface App {
  handler: RequestListener;
  metrics: ServiceMetrics;
  readiness(): Readiness;
  inFlight(): number;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function createApp(deps: AppDeps): App {
  const { config, logger, faults, secrets, users, state } = deps;
  const now = deps.now ?? Date.now;
  const required = neededSecrets(config);
  let inFlight = 0;
  let lastSecretReload = Number.NEGATIVE_INFINITY;

  const readiness = (): Readiness => {
    const reasons: string[] = [];
    if (!state.listening) {
      reasons.push('server not listening yet');
    }
    if (state.draining) {
      reasons.push('shutting down');
    }
    const blocker = faults.readinessBlocker();
    if (blocker !== null) {
      reasons.push(`fault injection: ${blocker}`);
    }
    let missing = secrets.missing(required);
    if (missing.length > 0 && now() - lastSecretReload >= SECRET_RELOAD_INTERVAL_MS) {
      lastSecretReload = now();
      secrets.load();
      missing = secrets.missing(required);
    }
    if (missing.length > 0) {
      reasons.push(`missing secret(s) ${missing.join(', ')} in ${config.secretsDir}`);
    }
    return { ready: reasons.length === 0, reasons };
  };

  const metrics = createServiceMetrics({
    version: config.version,
    commit: config.commit,
    startTimeSeconds: deps.startedAtMs / 1000,
    inFlight: () => inFlight,
    ready: () => readiness().ready,
    userCount: () => users.count(),
  });

  const requireWriteToken = (req: IncomingMessage): void => {
    if (config.writeTokenSecret === null) {
      return;
    }
    const expected = secrets.get(config.writeTokenSecret);
    const header = req.headers.authorization ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    // Comparing digests keeps the comparison constant-time even when the lengths differ.
    if (expected === undefined || presented === '' || !timingSafeEqual(digest(presented), digest(expected))) {
      throw new HttpError(401, 'a valid bearer token is required to create users', undefined, {
        'www-authenticate': 'Bearer realm="user-service"',
      });
    }
  };

  const router = new Router([
    {
      template: '/api/health/status',
      faultable: false,
      handlers: {
        GET: ({ res }) => {
          const body = {
            version: config.version,
            commit: config.commit,
            uptime_seconds: Math.round((now() - deps.startedAtMs) / 1000),
          };
          if (faults.healthFailing()) {
            sendJson(res, 500, { status: 'failing', reason: 'fault injection: FAULT_HEALTH_FAIL', ...body });
            return;
          }
          sendJson(res, 200, { status: 'ok', ...body });
        },
      },
    },
    {
      template: '/api/health/ready',
      faultable: false,
      handlers: {
        GET: ({ res }) => {
          const { ready, reasons } = readiness();
          if (ready) {
            sendJson(res, 200, { status: 'ready', version: config.version });
          } else {
            sendJson(res, 503, { status: 'not_ready', version: config.version, reasons });
          }
        },
      },
    },
    {
      template: '/metrics',
      faultable: false,
      handlers: {
        GET: ({ res }) => {
          const text = metrics.registry.expose();
          res.statusCode = 200;
          res.setHeader('content-type', EXPOSITION_CONTENT_TYPE);
          res.setHeader('content-length', Buffer.byteLength(text));
          res.end(text);
        },
      },
    },
    {
      template: '/api/version',
      faultable: true,
      handlers: {
        GET: ({ res }) => sendJson(res, 200, { version: config.version, commit: config.commit, node: process.version }),
      },
    },
    {
      template: '/api/users',
      faultable: true,
      handlers: {
        GET: ({ res, query }) => {
          const limit = queryInteger(query, 'limit', LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX);
          const offset = queryInteger(query, 'offset', 0, Number.MAX_SAFE_INTEGER);
          sendJson(res, 200, { users: users.list(offset, limit), total: users.count(), offset, limit });
        },
        POST: async ({ req, res }) => {
          requireWriteToken(req);
          const body = await readJsonBody(req, MAX_BODY_BYTES);
          const checked = validateNewUser(body);
          if (!checked.ok) {
            throw new HttpError(400, `invalid user: ${checked.problems.join('; ')}`, checked.problems);
          }
          try {
            const user = users.create(checked.value);
            sendJson(res, 201, user, { location: `/api/users/${user.id}` });
          } catch (err) {
            if (err instanceof DuplicateEmailError) {
              throw new HttpError(409, err.message);
            }
            throw err;
          }
        },
      },
    },
    {
      template: '/api/users/:id',
      faultable: true,
      handlers: {
        GET: ({ res, params }) => {
          const id = params.id ?? '';
          const user = users.get(id);
          if (!user) {
            throw new HttpError(404, `no user with id ${JSON.stringify(id)}`);
          }
          sendJson(res, 200, user);
        },
      },
    },
  ]);

  const dispatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: string,
    match: RouteMatch | null,
  ): Promise<void> => {
    if (!match) {
      throw new HttpError(404, `no route for ${method} ${path}`);
    }
    const handler = handlerFor(match.route, method);
    if (!handler) {
      throw new HttpError(405, `method ${method} not allowed on ${match.route.template}`, undefined, {
        allow: allowedMethods(match.route),
      });
    }
    if (match.route.faultable) {
      const latency = faults.addedLatencyMs();
      if (latency > 0) {
        await sleep(latency);
      }
      const status = faults.injectedErrorStatus();
      if (status !== null) {
        throw new HttpError(status, 'fault injection: FAULT_ERROR_RATE');
      }
    }
    const ctx: RequestContext = {
      req,
      res,
      params: match.params,
      query: new URLSearchParams(query),
    };
    await handler(ctx);
  };

  const handler: RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    const method = methodLabel(req.method);
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    // The query string is left out of logs: callers sometimes put tokens there.
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? '' : rawUrl.slice(queryAt + 1);
    const match = router.match(path);
    const route = match ? match.route.template : UNMATCHED_ROUTE;
    inFlight += 1;
    // While draining, every answer asks the client to reconnect, so keep-alive clients move to
    // other pods instead of reusing a socket that is about to close. Decided when the head is
    // written, not when the request arrived: a request that started before the drain must carry
    // it too. (Every answer, explicit or implicit, goes through writeHead.)
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      if (state.draining) {
        res.setHeader('connection', 'close');
      }
      return writeHead(...args);
    }) as ServerResponse['writeHead'];

    res.on('close', () => {
      inFlight -= 1;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // 499 (client closed request) marks answers the client never received in full.
      const status = res.writableFinished ? res.statusCode : 499;
      metrics.observeRequest(method, route, status, seconds);
      logger.info('request', {
        method,
        path,
        route,
        status,
        duration_ms: Math.round(seconds * 1e6) / 1e3,
        remote_addr: req.socket.remoteAddress,
        user_agent: req.headers['user-agent'],
      });
    });

    dispatch(req, res, method, path, query, match).catch((err: unknown) => {
      if (res.headersSent) {
        logger.error('request failed after the response started', errorFields(err));
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendError(res, err);
        return;
      }
      logger.error('unhandled error', { ...errorFields(err), route });
      sendError(res, new HttpError(500, 'internal error'));
    });
  };

  return { handler, metrics, readiness, inFlight: () => inFlight };
}
