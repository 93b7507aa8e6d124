import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import type { KeyHealthService } from '../../services/key-health/key-health-service.js';
import { KEY_CONFIG_BASE_PATH } from '../../services/keyconfig/keyconfig-model.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface KeyHealthRouteDeps {
  auth: AuthService;
  keyHealth: KeyHealthService;
}

const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err, 429: err };

const healthError = {
  type: 'object',
  additionalProperties: true,
  properties: { message: { type: 'string' }, code: { type: 'string' }, errorType: { type: 'string' }, awsError: { type: 'string' }, keyArn: { type: 'string' } },
} as const;

const model = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['unknown', 'ok', 'degraded', 'failed'] },
    checkedAt: { type: 'string' },
    lastError: healthError,
    deletionDate: { type: 'string' },
    keys: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          keyArn: { type: 'string' },
          current: { type: 'boolean' },
          state: { type: 'string' },
          status: { type: 'string', enum: ['ok', 'degraded', 'failed'] },
          deletionDate: { type: 'string' },
          dataKeys: { type: 'integer' },
          error: healthError,
        },
      },
    },
  },
} as const;

export async function keyHealthRoutes(app: FastifyInstance, { auth, keyHealth }: KeyHealthRouteDeps): Promise<void> {
  const view = requirePermission(auth, 'conversation:encryptionKey:view');
  const edit = requirePermission(auth, 'conversation:encryptionKey:edit');
  const tags = ['key configuration'];
  const params = { type: 'object', properties: { id: { type: 'string', maxLength: 100 } }, required: ['id'] } as const;

  app.get<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/health`,
    {
      preHandler: view,
      schema: { tags, summary: "Health of the organization's KMS key(s) as the last probe found it (unknown before the first)", params, response: { 200: model, ...errors } },
    },
    async (request) => keyHealth.get(callerOf(request), request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/health/probe`,
    {
      preHandler: edit,
      schema: { tags, summary: 'Probe the key now (rate-limited: each probe costs KMS requests in the customer account)', params, response: { 200: model, ...errors } },
    },
    async (request) => keyHealth.probe(callerOf(request), request.params.id),
  );
}
