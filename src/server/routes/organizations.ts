import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import { notFound } from '../../services/errors.js';
import type { OrgService } from '../../services/orgs/org-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface OrganizationRouteDeps {
  auth: AuthService;
  orgs: OrgService;
}

const errors = { 400: { $ref: 'ErrorBody#' }, 401: { $ref: 'ErrorBody#' }, 403: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' } };
const orgModel = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } } as const;

export async function organizationRoutes(app: FastifyInstance, { auth, orgs }: OrganizationRouteDeps): Promise<void> {
  app.get(
    '/api/v2/organizations/me',
    { schema: { tags: ['organizations'], summary: "The caller's organization", response: { 200: orgModel, ...errors } } },
    async (request) => {
      const org = await orgs.getOrganization(callerOf(request).orgId);
      return { id: org.id, name: org.name };
    },
  );

  // Lets a client (the admin UI) show only what the caller may do, without probing.
  app.get(
    '/api/v2/organizations/me/permissions',
    {
      schema: {
        tags: ['organizations'],
        summary: "The caller's permissions",
        response: { 200: { type: 'object', properties: { permissions: { type: 'array', items: { type: 'string' } } } }, ...errors },
      },
    },
    async (request) => ({ permissions: [...callerOf(request).permissions].sort() }),
  );

  // Another organization's id answers exactly like an id that does not exist.
  app.get<{ Params: { orgId: string } }>(
    '/api/v2/organizations/:orgId',
    { schema: { tags: ['organizations'], summary: "The caller's organization by id", response: { 200: orgModel, ...errors } } },
    async (request) => {
      const caller = callerOf(request);
      if (request.params.orgId !== caller.orgId) throw notFound('Organization');
      const org = await orgs.getOrganization(caller.orgId);
      return { id: org.id, name: org.name };
    },
  );

  // Platform-level administration: only principals of the platform organization hold this permission.
  const manage = requirePermission(auth, 'admin:organization:manage');
  app.post<{ Body: { name: string } }>(
    '/api/v2/admin/organizations',
    {
      preHandler: manage,
      schema: {
        tags: ['admin'],
        summary: 'Create an organization',
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } },
        response: { 201: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string' } } }, ...errors },
      },
    },
    async (request, reply) => reply.status(201).send(await orgs.createOrganization(request.body.name)),
  );
  app.get(
    '/api/v2/admin/organizations',
    { preHandler: manage, schema: { tags: ['admin'], summary: 'List organizations' } },
    async () => {
      const entities = await orgs.listOrganizations();
      return { total: entities.length, entities };
    },
  );
  // Tokens of any organization: routes/tokens.ts.
}
