import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ConvaultMetrics } from '../../metrics/registry.js';
import { classifyError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** errorType (or code) of the error answered, for the per-operation counter. */
    failure?: string;
  }
}

/** Route template → the operation an operator asks about (secured data, Encrypt/Decrypt Data). */
const OPERATIONS: Record<string, string> = {
  'GET /api/v2/conversations/:conversationId/secureddata': 'securedData.get',
  'PUT /api/v2/conversations/:conversationId/secureddata': 'securedData.set',
  'PATCH /api/v2/conversations/:conversationId/secureddata': 'securedData.update',
  'DELETE /api/v2/conversations/:conversationId/secureddata': 'securedData.delete',
  'POST /api/v2/conversations/encrypt': 'encryptData',
  'POST /api/v2/conversations/decrypt': 'decryptData',
};

/**
 * Records every answer in the HTTP histogram under its route template (requests that matched no
 * route share one label, so scanners cannot grow the series), and secured data / Encrypt / Decrypt
 * outcomes by errorType.
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: ConvaultMetrics): void {
  app.decorateRequest('failure', undefined);
  app.addHook('onError', async (request, _reply, error) => {
    const e = classifyError(error);
    request.failure = e.errorType ?? e.code;
  });
  app.addHook('onResponse', async (request: FastifyRequest, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeHttp(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    const operation = OPERATIONS[`${request.method} ${route}`];
    if (operation) {
      const outcome = reply.statusCode < 400 ? 'success' : (request.failure ?? `http_${reply.statusCode}`);
      metrics.observeOperation(operation, outcome, request.caller?.orgId);
    }
  });
}
