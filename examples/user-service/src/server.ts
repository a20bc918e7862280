// Server lifecycle: start listening, then on shutdown turn readiness off, wait for endpoint
// removal to propagate, stop accepting, drain in-flight requests and close keep-alive sockets.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type App, type LifecycleState } from './app.js';
import type { Config } from './config.js';
import { FaultInjector } from './faults.js';
import type { Logger } from './logger.js';
import { SecretStore } from './secrets.js';
import { UserStore } from './users.js';

export interface ShutdownResult {
  /** True when every in-flight request finished within SHUTDOWN_DRAIN_SECONDS. */
  drained: boolean;
  /** Requests still running when the drain timeout closed their connections. */
  abandonedRequests: number;
}

export interface ServerOptions {
  now?: () => number;
}

export class UserServiceServer {
  readonly state: LifecycleState = { listening: false, draining: false };
  readonly app: App;
  readonly server: Server;
  readonly secrets: SecretStore;
  private shutdownPromise: Promise<ShutdownResult> | null = null;
  private closing = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    options: ServerOptions = {},
  ) {
    const now = options.now ?? Date.now;
    const startedAtMs = now();
    this.secrets = new SecretStore(config.secretsDir, logger);
    this.secrets.load();
    const faults = new FaultInjector(config.faults, startedAtMs, now);
    this.app = createApp({
      config,
      logger,
      faults,
      secrets: this.secrets,
      users: new UserStore(config.usersMax),
      state: this.state,
      startedAtMs,
      now,
    });
    this.server = createServer(this.app.handler);
    // Node closes a kept-alive connection after this many requests (0 leaves it open).
    this.server.maxRequestsPerSocket = config.maxRequestsPerSocket;
    // close() only closes the sockets idle at that moment; one whose answer finishes later
    // (its head written before the drain began, so without "Connection: close") is closed here.
    this.server.on('request', (_req, res: ServerResponse) => {
      res.once('finish', () => {
        if (this.closing) {
          setImmediate(() => this.server.closeIdleConnections());
        }
      });
    });
    const active = faults.describe();
    if (Object.keys(active).length > 0) {
      logger.warn('fault injection active', { faults: active });
    }
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', onError);
        this.state.listening = true;
        const address = this.server.address() as AddressInfo;
        this.logger.info('listening', {
          host: address.address,
          port: address.port,
          secrets_loaded: this.secrets.names(),
        });
        resolve(address);
      });
    });
  }

  /** Starts the shutdown once; later calls return the same result. */
  shutdown(reason: string): Promise<ShutdownResult> {
    this.shutdownPromise ??= this.runShutdown(reason);
    return this.shutdownPromise;
  }

  /** Ends the drain early, e.g. on a second signal. */
  forceClose(): void {
    this.server.closeAllConnections();
  }

  private async runShutdown(reason: string): Promise<ShutdownResult> {
    const { shutdownDelaySeconds, shutdownDrainSeconds } = this.config;
    this.state.draining = true;
    this.logger.info('shutdown started', {
      reason,
      delay_seconds: shutdownDelaySeconds,
      drain_seconds: shutdownDrainSeconds,
      in_flight: this.app.inFlight(),
    });
    if (shutdownDelaySeconds > 0) {
      // Kubernetes removes the pod from Service endpoints asynchronously; until every node's
      // proxy has caught up, new connections still arrive and must be served.
      await sleep(shutdownDelaySeconds * 1000);
    }
    if (!this.state.listening) {
      return { drained: true, abandonedRequests: 0 };
    }
    // close() also closes idle keep-alive sockets (Node 19+); busy ones close after their
    // answer, which carries "Connection: close" while draining.
    this.closing = true;
    const closed = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
    });
    const timeout = new AbortController();
    const timedOut = await Promise.race([
      closed.then(() => false),
      sleep(shutdownDrainSeconds * 1000, true, { signal: timeout.signal }).catch(() => false),
    ]);
    timeout.abort();
    let abandonedRequests = 0;
    if (timedOut) {
      abandonedRequests = this.app.inFlight();
      this.logger.warn('drain timeout reached, closing remaining connections', {
        drain_seconds: shutdownDrainSeconds,
        in_flight: abandonedRequests,
      });
      this.server.closeAllConnections();
      await closed;
    }
    this.state.listening = false;
    this.logger.info('shutdown complete', { drained: !timedOut, abandoned_requests: abandonedRequests });
    return { drained: !timedOut, abandonedRequests };
  }
}
