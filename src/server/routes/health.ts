import type { FastifyInstance } from 'fastify';

export interface HealthDeps {
  /** Throws StoreUnavailableError when the database cannot be reached. */
  pingDatabase(): Promise<void>;
}

export async function healthRoutes(app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'The process is up and serving' } }, async () => ({ status: 'ok' }));
  // Errors go through the error handler: 503 StoreUnavailable with Retry-After, in the one error shape.
  app.get('/readyz', { schema: { tags: ['health'], summary: 'The database is reachable' } }, async () => {
    await deps.pingDatabase();
    return { status: 'ready' };
  });
}
