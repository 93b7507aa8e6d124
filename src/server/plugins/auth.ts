import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuthService, Caller } from '../../services/auth/auth-service.js';
import type { Permission } from '../../services/auth/permissions.js';
import { unauthorized } from '../../services/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** Every /api/v2 route needs a bearer token; permissions are then checked per route. */
export function registerBearerAuth(app: FastifyInstance, auth: Pick<AuthService, 'authenticate'>): void {
  app.decorateRequest('caller', undefined);
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/')) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    request.caller = await auth.authenticate(match?.[1]);
  });
}

export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw unauthorized();
  return request.caller;
}

export function requirePermission(auth: Pick<AuthService, 'authorize'>, permission: Permission): preHandlerAsyncHookHandler {
  return async (request) => auth.authorize(callerOf(request), permission);
}
