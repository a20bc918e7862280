// Routes are matched against templates, and the template (never the raw path) becomes the
// metrics "route" label, so ids in URLs cannot blow up the number of series.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
}

export type Handler = (ctx: RequestContext) => void | Promise<void>;

export interface RouteSpec {
  template: string;
  /** Whether FAULT_ERROR_RATE and FAULT_LATENCY_MS apply; health and metrics stay truthful. */
  faultable: boolean;
  handlers: Partial<Record<string, Handler>>;
}

interface CompiledRoute extends RouteSpec {
  pattern: RegExp;
  paramNames: string[];
}

export interface RouteMatch {
  route: RouteSpec;
  params: Record<string, string>;
}

/** Label for requests that match no route: one series, whatever path was asked for. */
export const UNMATCHED_ROUTE = 'unmatched';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function methodLabel(method: string | undefined): string {
  const upper = (method ?? '').toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : 'other';
}

function compile(spec: RouteSpec): CompiledRoute {
  const paramNames: string[] = [];
  const source = spec.template
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        paramNames.push(part.slice(1));
        return '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { ...spec, pattern: new RegExp(`^${source}$`), paramNames };
}

export class Router {
  private readonly routes: CompiledRoute[];

  constructor(specs: RouteSpec[]) {
    this.routes = specs.map(compile);
  }

  match(path: string): RouteMatch | null {
    for (const route of this.routes) {
      const found = route.pattern.exec(path);
      if (!found) {
        continue;
      }
      const params: Record<string, string> = {};
      try {
        route.paramNames.forEach((name, i) => {
          params[name] = decodeURIComponent(found[i + 1] ?? '');
        });
      } catch {
        // A malformed percent-escape cannot name anything we hold.
        return null;
      }
      return { route, params };
    }
    return null;
  }
}

/** HEAD is served by the GET handler; node drops the body for HEAD responses. */
export function handlerFor(route: RouteSpec, method: string): Handler | undefined {
  return route.handlers[method] ?? (method === 'HEAD' ? route.handlers.GET : undefined);
}

export function allowedMethods(route: RouteSpec): string {
  const methods = Object.keys(route.handlers);
  if (methods.includes('GET')) {
    methods.push('HEAD');
  }
  return methods.join(', ');
}
