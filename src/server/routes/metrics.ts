import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ConvaultMetrics } from '../../metrics/registry.js';
import { AppError } from '../../services/errors.js';

export interface MetricsRouteDeps {
  metrics: ConvaultMetrics;
  /** CONVAULT_METRICS_TOKEN; unset → /metrics on the API port does not exist (404). */
  token?: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Bearer check in constant time (both sides hashed first, so lengths never differ). */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return timingSafeEqual(digest(m?.[1] ?? ''), digest(token)) && m !== null;
}

/** GET /metrics on the API port: never public; only with the metrics token. */
export async function metricsRoutes(app: FastifyInstance, deps: MetricsRouteDeps): Promise<void> {
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (!deps.token) throw new AppError(404, 'not.found', 'No route GET /metrics.');
    if (!bearerMatches(request.headers.authorization, deps.token)) {
      throw new AppError(401, 'authentication.required', 'A valid metrics token is required (Authorization: Bearer $CONVAULT_METRICS_TOKEN).');
    }
    const text = await deps.metrics.render();
    return reply.header('content-type', deps.metrics.contentType).send(text);
  });
}

/**
 * CONVAULT_METRICS_PORT: /metrics without a token on 127.0.0.1 only, for a scraper on the same
 * host. Anything else there is 404.
 */
export async function startMetricsListener(metrics: ConvaultMetrics, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
