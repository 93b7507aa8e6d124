import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AuthService, Caller } from '../../services/auth/auth-service.js';
import { PERMISSIONS } from '../../services/auth/permissions.js';
import type { TokenActor, TokenService } from '../../services/auth/token-service.js';
import { badRequest } from '../../services/errors.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface TokenRouteDeps {
  auth: AuthService;
  tokens: TokenService;
}

const errors = { 400: { $ref: 'ErrorBody#' }, 401: { $ref: 'ErrorBody#' }, 403: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' }, 409: { $ref: 'ErrorBody#' } };

const tokenModel = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    orgId: { type: 'string' },
    principalId: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string', description: 'first characters of the token, to tell tokens apart (never the token)' },
    permissions: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
    revokedAt: { type: 'string', format: 'date-time' },
    state: { type: 'string', enum: ['active', 'revoked', 'expired'] },
  },
} as const;

const createdModel = {
  type: 'object',
  properties: {
    token: { type: 'string', description: 'the secret, shown once' },
    id: { type: 'string' },
    tokenId: { type: 'string' },
    prefix: { type: 'string' },
    principalId: { type: 'string' },
    orgId: { type: 'string' },
    permissions: { type: 'array', items: { type: 'string' } },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const;

// Names and instants are checked by the service (printable, well-formed, RFC 3339), so the API and
// the CLI refuse alike; the schema only bounds types and sizes.
const createBody = {
  type: 'object',
  required: ['permissions'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 1000 },
    permissions: { type: 'array', minItems: 1, maxItems: PERMISSIONS.length, items: { type: 'string', enum: [...PERMISSIONS] } },
    expiresAt: { type: 'string', maxLength: 64, description: 'RFC 3339 instant with a zone; absent → no expiry' },
  },
} as const;

type CreateBody = { name?: string; permissions: string[]; expiresAt?: string };

const actorOf = (caller: Caller): TokenActor => ({ principal: caller.principalId, orgId: caller.orgId, permissions: caller.permissions });

/** The rotate body is optional (a bare POST keeps the old expiry); the service checks the instant. */
function rotateInput(body: unknown): { expiresAt?: string } {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'expiresAt')) {
    throw badRequest('The body may hold only { "expiresAt": "<RFC 3339 instant>" }.', { field: 'body' });
  }
  const { expiresAt } = body as { expiresAt?: unknown };
  if (expiresAt !== undefined && typeof expiresAt !== 'string') throw badRequest('expiresAt must be an RFC 3339 instant string.', { field: 'expiresAt' });
  return expiresAt === undefined ? {} : { expiresAt };
}

/** Responses that carry a token secret are never stored by a cache on the way. */
const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

/**
 * Tokens of the caller's own organization (`admin:token:manage`), and of any organization for the
 * platform's operators (`admin:organization:manage`, held only in the platform organization).
 */
export async function tokenRoutes(app: FastifyInstance, { auth, tokens }: TokenRouteDeps): Promise<void> {
  const manageOwn = requirePermission(auth, 'admin:token:manage');
  const managePlatform = requirePermission(auth, 'admin:organization:manage');

  app.get('/api/v2/tokens', { preHandler: manageOwn, schema: { tags: ['tokens'], summary: "The organization's tokens (never their secrets)", response: { 200: { type: 'object', properties: { total: { type: 'integer' }, entities: { type: 'array', items: tokenModel } } }, ...errors } } }, async (request) => {
    const entities = await tokens.list(callerOf(request).orgId);
    return { total: entities.length, entities };
  });
  app.post<{ Body: CreateBody }>(
    '/api/v2/tokens',
    { preHandler: manageOwn, schema: { tags: ['tokens'], summary: 'Create a principal and its token in the organization (permissions the caller holds only)', body: createBody, response: { 201: createdModel, ...errors } } },
    async (request, reply) => {
      const caller = callerOf(request);
      const created = await tokens.create(actorOf(caller), { orgId: caller.orgId, name: request.body.name ?? 'api-client', permissions: request.body.permissions, expiresAt: request.body.expiresAt });
      return noStore(reply).status(201).send(created);
    },
  );
  app.delete<{ Params: { tokenId: string } }>(
    '/api/v2/tokens/:tokenId',
    { preHandler: manageOwn, schema: { tags: ['tokens'], summary: 'Revoke a token (at once, on every node)', response: { 200: tokenModel, ...errors } } },
    async (request) => {
      const caller = callerOf(request);
      return tokens.revoke(actorOf(caller), caller.orgId, request.params.tokenId);
    },
  );
  app.post<{ Params: { tokenId: string }; Body: { expiresAt?: string } | undefined }>(
    '/api/v2/tokens/:tokenId/rotate',
    { preHandler: manageOwn, schema: { tags: ['tokens'], summary: 'Replace a token by a new secret for the same principal; the old one is revoked (optional body { expiresAt })', response: { 201: createdModel, ...errors } } },
    async (request, reply) => {
      const caller = callerOf(request);
      return noStore(reply).status(201).send(await tokens.rotate(actorOf(caller), caller.orgId, request.params.tokenId, rotateInput(request.body)));
    },
  );

  // Platform administration: any organization's tokens.
  app.post<{ Params: { orgId: string }; Body: CreateBody }>(
    '/api/v2/admin/organizations/:orgId/tokens',
    { preHandler: managePlatform, schema: { tags: ['admin'], summary: 'Create a principal with the given permissions and its API token (shown once)', body: createBody, response: { 201: createdModel, ...errors } } },
    async (request, reply) => {
      const created = await tokens.create(
        { principal: callerOf(request).principalId, orgId: callerOf(request).orgId },
        { orgId: request.params.orgId, name: request.body.name ?? 'api-client', permissions: request.body.permissions, expiresAt: request.body.expiresAt },
      );
      return noStore(reply).status(201).send(created);
    },
  );
  app.get<{ Params: { orgId: string } }>(
    '/api/v2/admin/organizations/:orgId/tokens',
    { preHandler: managePlatform, schema: { tags: ['admin'], summary: "An organization's tokens (never their secrets)", response: { 200: { type: 'object', properties: { total: { type: 'integer' }, entities: { type: 'array', items: tokenModel } } }, ...errors } } },
    async (request) => {
      const entities = await tokens.list(request.params.orgId);
      return { total: entities.length, entities };
    },
  );
  app.delete<{ Params: { orgId: string; tokenId: string } }>(
    '/api/v2/admin/organizations/:orgId/tokens/:tokenId',
    { preHandler: managePlatform, schema: { tags: ['admin'], summary: "Revoke a token of an organization", response: { 200: tokenModel, ...errors } } },
    async (request) => tokens.revoke({ principal: callerOf(request).principalId, orgId: callerOf(request).orgId }, request.params.orgId, request.params.tokenId),
  );
  app.post<{ Params: { orgId: string; tokenId: string }; Body: { expiresAt?: string } | undefined }>(
    '/api/v2/admin/organizations/:orgId/tokens/:tokenId/rotate',
    { preHandler: managePlatform, schema: { tags: ['admin'], summary: 'Rotate a token of an organization (optional body { expiresAt })', response: { 201: createdModel, ...errors } } },
    async (request, reply) => {
      const actor = { principal: callerOf(request).principalId, orgId: callerOf(request).orgId };
      return noStore(reply).status(201).send(await tokens.rotate(actor, request.params.orgId, request.params.tokenId, rotateInput(request.body)));
    },
  );
}
