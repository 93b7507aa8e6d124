import type { FastifyInstance } from 'fastify';
import type { AuditService } from '../../services/audit/audit-service.js';
import { parseAuditListQuery } from '../../services/audit/audit-query.js';
import type { AuthService } from '../../services/auth/auth-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface AuditRouteDeps {
  auth: AuthService;
  audit: Pick<AuditService, 'list' | 'unsealed'>;
}

type AuditQuery = { from?: string; to?: string; action?: string; cursor?: string; limit?: string };

const errors = { 400: { $ref: 'ErrorBody#' }, 401: { $ref: 'ErrorBody#' }, 403: { $ref: 'ErrorBody#' } };

const auditEventModel = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    orgId: { type: 'string' },
    seq: { type: ['integer', 'null'], description: '1, 2, 3 … per organization, without gaps, once sealed; null until the sealer chained it (within about a second)' },
    at: { type: 'string', format: 'date-time' },
    principal: { type: 'string' },
    action: { type: 'string', description: 'dotted name, e.g. keyconfig.save' },
    target: { type: ['string', 'null'] },
    outcome: { type: 'string', enum: ['success', 'failure'] },
    details: { type: 'object', additionalProperties: true },
    prevHash: { type: ['string', 'null'], description: 'hash of the previous event of the organization; 64 zeros for the first; null until sealed' },
    hash: { type: ['string', 'null'], description: 'hex SHA-256 of prevHash followed by the canonical JSON of the event without hash (docs/AUDIT.md); null until sealed' },
  },
} as const;

// Query values are parsed by the service's parser rather than by JSON schema, so every refusal
// names the field the same way (`details.field: "from"`) and shows an accepted value.
const querySchema = {
  type: 'object',
  properties: {
    from: { type: 'string', description: 'ISO 8601 instant, inclusive (2026-01-31T12:00:00Z or 2026-01-31)' },
    to: { type: 'string', description: 'ISO 8601 instant, exclusive' },
    action: { type: 'string', description: 'an action name (keyconfig.save) or a prefix (keyconfig.*)' },
    cursor: { type: 'string', description: 'nextCursor of the previous page' },
    limit: { type: 'string', description: '1-200, default 50' },
  },
} as const;

export async function auditRoutes(app: FastifyInstance, { auth, audit }: AuditRouteDeps): Promise<void> {
  app.get<{ Querystring: AuditQuery }>(
    '/api/v2/audits',
    {
      preHandler: requirePermission(auth, 'audit:log:view'),
      schema: {
        tags: ['audit'],
        summary: "The caller's organization's audit trail, newest first",
        querystring: querySchema,
        response: {
          200: {
            type: 'object',
            properties: {
              entities: { type: 'array', items: auditEventModel },
              nextCursor: { type: 'string' },
              unsealed: {
                type: 'object',
                description: 'events of the organization appended but not sealed yet',
                properties: { count: { type: 'integer' }, oldestAt: { type: ['string', 'null'] }, oldestAgeMs: { type: ['integer', 'null'] } },
              },
              selfUri: { type: 'string' },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const orgId = callerOf(request).orgId;
      const page = await audit.list(orgId, parseAuditListQuery(request.query));
      return { ...page, unsealed: await audit.unsealed(orgId), selfUri: request.url };
    },
  );
}
