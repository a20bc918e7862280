// The metrics the release analysis reads. Every HTTP series carries the version label so a
// canary and the stable track can be compared even when they share one Service.
import { memoryUsage } from 'node:process';
import { Counter, Gauge, Histogram, Registry, SampledMetric } from './metrics.js';

// Sub-millisecond handlers at the low end, injected latency and slow clients up to 10 s.
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface ServiceMetrics {
  registry: Registry;
  requests: Counter;
  duration: Histogram;
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void;
}

export interface MetricSources {
  version: string;
  commit: string;
  startTimeSeconds: number;
  inFlight: () => number;
  ready: () => boolean;
  userCount: () => number;
}

export function createServiceMetrics(src: MetricSources): ServiceMetrics {
  const registry = new Registry();
  const requests = registry.register(
    new Counter('http_requests_total', 'HTTP requests answered, by route template and status code.', [
      'method',
      'route',
      'status_code',
      'version',
    ]),
  );
  const duration = registry.register(
    new Histogram(
      'http_request_duration_seconds',
      'Time from receiving a request to finishing its response.',
      ['method', 'route', 'version'],
      DURATION_BUCKETS,
    ),
  );
  registry.register(
    new SampledMetric('http_requests_in_flight', 'Requests being handled right now.', 'gauge', src.inFlight),
  );
  const buildInfo = registry.register(
    new Gauge('user_service_build_info', 'Always 1; the labels tell which build is running.', ['version', 'commit']),
  );
  buildInfo.set({ version: src.version, commit: src.commit }, 1);
  registry.register(
    new SampledMetric('user_service_ready', '1 when the readiness endpoint answers 200, else 0.', 'gauge', () =>
      src.ready() ? 1 : 0,
    ),
  );
  registry.register(new SampledMetric('user_service_users', 'Users held in memory.', 'gauge', src.userCount));
  registry.register(
    new SampledMetric(
      'process_start_time_seconds',
      'Start time of the process since unix epoch in seconds.',
      'gauge',
      () => src.startTimeSeconds,
    ),
  );
  registry.register(
    new SampledMetric('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    }),
  );
  registry.register(
    new SampledMetric('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => memoryUsage.rss()),
  );

  return {
    registry,
    requests,
    duration,
    observeRequest(method, route, statusCode, seconds) {
      requests.inc({ method, route, status_code: String(statusCode), version: src.version });
      duration.observe({ method, route, version: src.version }, seconds);
    },
  };
}
