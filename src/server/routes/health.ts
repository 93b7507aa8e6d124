import type { FastifyInstance } from 'fastify';

export interface HealthDeps {
  /** Throws when the database cannot be reached. */
  pingDatabase(): Promise<void>;
}

export async function healthRoutes(app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'The process is up and serving' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'The database is reachable' } }, async (request, reply) => {
    try {
      await deps.pingDatabase();
      return { status: 'ready' };
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'readiness check failed');
      return reply.status(503).send({
        message: 'The database is not reachable.',
        code: 'service.unavailable',
        status: 503,
        contextId: request.id,
      });
    }
  });
}
