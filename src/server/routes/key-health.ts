import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import type { KeyHealthService } from '../../services/key-health/key-health-service.js';
import type { WebhookDeliveryService } from '../../services/key-health/webhook-deliveries.js';
import { KEY_CONFIG_BASE_PATH } from '../../services/keyconfig/keyconfig-model.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface KeyHealthRouteDeps {
  auth: AuthService;
  keyHealth: KeyHealthService;
  webhookDeliveries: WebhookDeliveryService;
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

const delivery = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    event: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string' },
    lastError: { type: 'string' },
    createdAt: { type: 'string' },
    deliveredAt: { type: 'string' },
    payload: { type: 'object', additionalProperties: true },
  },
} as const;

export async function keyHealthRoutes(app: FastifyInstance, { auth, keyHealth, webhookDeliveries }: KeyHealthRouteDeps): Promise<void> {
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

  app.get<{ Params: { id: string }; Querystring: { state?: string; limit?: number } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/health/webhooks`,
    {
      preHandler: view,
      schema: {
        tags,
        summary: 'Key health webhook deliveries of this configuration, newest first (state=failed: those given up, which can be retried)',
        params,
        querystring: {
          type: 'object',
          properties: { state: { type: 'string', maxLength: 20 }, limit: { type: 'integer', minimum: 1, maximum: 500 } },
          additionalProperties: false,
        },
        response: { 200: { type: 'object', properties: { entities: { type: 'array', items: delivery } } }, ...errors },
      },
    },
    async (request) => webhookDeliveries.list(callerOf(request), request.params.id, request.query),
  );

  app.post<{ Params: { id: string; deliveryId: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/health/webhooks/:deliveryId/retry`,
    {
      preHandler: edit,
      schema: {
        tags,
        summary: 'Send a failed webhook delivery again (same delivery id, a fresh set of attempts)',
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 100 }, deliveryId: { type: 'string', maxLength: 100 } }, required: ['id', 'deliveryId'] },
        response: { 200: delivery, ...errors },
      },
    },
    async (request) => webhookDeliveries.retry(callerOf(request), request.params.id, request.params.deliveryId),
  );
}
