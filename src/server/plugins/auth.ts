import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuthService, Caller } from '../../services/auth/auth-service.js';
import type { Permission } from '../../services/auth/permissions.js';
import { AppError, unauthorized } from '../../services/errors.js';
import type { FailureLimiter } from '../../services/rate-limiter.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/**
 * Every /api/ route needs a bearer token; permissions are then checked per route. Whether a request
 * is an API request is decided by the route it matched (its pattern), not by the raw URL, so an
 * encoded path (`/%61pi/v2/…`, which the router decodes to an API route) cannot skip the check.
 * Failed authentications are limited per client address (429 with Retry-After); see createFailureLimiter.
 */
export function registerBearerAuth(app: FastifyInstance, auth: Pick<AuthService, 'authenticate'>, failures: FailureLimiter): void {
  app.decorateRequest('caller', undefined);
  app.addHook('onRequest', async (request) => {
    if (!isApiRequest(request)) return;
    const client = request.ip;
    failures.check(client, 'failed authentications from this address');
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    try {
      request.caller = await auth.authenticate(match?.[1]);
    } catch (err) {
      if (err instanceof AppError && err.status === 401) await failures.take(client, 'failed authentications from this address');
      throw err;
    }
  });
}

function isApiRequest(request: FastifyRequest): boolean {
  const pattern = request.routeOptions.url;
  if (pattern !== undefined) return pattern.startsWith('/api/');
  // No route matched (a 404): judge the decoded path, so the answer to an encoded API path is the same 401.
  let path = request.url.split('?')[0] ?? '';
  try {
    path = decodeURIComponent(path);
  } catch {
    // undecodable: judged as is
  }
  return path.toLowerCase().startsWith('/api/');
}

export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw unauthorized();
  return request.caller;
}

export function requirePermission(auth: Pick<AuthService, 'authorize'>, permission: Permission): preHandlerAsyncHookHandler {
  return async (request) => auth.authorize(callerOf(request), permission);
}
