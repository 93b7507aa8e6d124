import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import { KEY_CONFIG_BASE_PATH } from '../../services/keyconfig/keyconfig-model.js';
import type { LifecycleService } from '../../services/lifecycle/lifecycle-service.js';
import type { RewrapService } from '../../services/lifecycle/rewrap-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface LifecycleRouteDeps {
  auth: AuthService;
  lifecycle: LifecycleService;
  rewrap: RewrapService;
}

const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 401: err, 403: err, 404: err };
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;
const errorGroup = {
  type: 'object',
  properties: {
    keyArn: { type: 'string' },
    awsError: { type: 'string' },
    reason: { type: 'string' },
    count: { type: 'integer' },
    dataKeyIds: { type: 'array', items: { type: 'string' } },
  },
} as const;
const jobModel = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
    done: { type: 'integer' },
    total: { type: ['integer', 'null'] },
    failed: { type: 'integer' },
    errors: { type: 'array', items: { type: 'object', additionalProperties: true } },
    errorGroups: { type: 'array', items: errorGroup },
    targetKeyId: { type: 'string' },
    targetKeyArn: { type: 'string' },
    createdAt: { type: 'string' },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    selfUri: { type: 'string' },
  },
} as const;

export async function lifecycleRoutes(app: FastifyInstance, { auth, lifecycle, rewrap }: LifecycleRouteDeps): Promise<void> {
  const view = requirePermission(auth, 'conversation:encryptionKey:view');
  const edit = requirePermission(auth, 'conversation:encryptionKey:edit');
  const tags = ['key lifecycle'];

  app.get<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/usage`,
    {
      preHandler: view,
      schema: {
        tags,
        summary: 'Which KMS keys protect the organization\'s data, with counts, and which can be retired',
        params: idParam,
        response: {
          200: {
            type: 'object',
            properties: {
              entities: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    keyArn: { type: 'string' },
                    current: { type: 'boolean' },
                    dataKeys: { type: 'integer' },
                    conversations: { type: 'integer' },
                    values: { type: 'integer' },
                    oldest: { type: ['string', 'null'] },
                    newest: { type: ['string', 'null'] },
                    safeToRetire: { type: 'boolean' },
                    status: { type: 'string', enum: ['Current', 'InUse', 'SafeToRetire', 'Unusable'] },
                    problem: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => lifecycle.usage(callerOf(request), request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/rewrap`,
    { preHandler: edit, schema: { tags, summary: 'Start (or resume) rewrapping every org data key to the current key', params: idParam, response: { 202: jobModel, ...errors } } },
    async (request, reply) => {
      const caller = callerOf(request);
      await lifecycle.assertConfiguration(caller, request.params.id);
      return reply.status(202).send(await rewrap.start(caller));
    },
  );

  app.post<{ Params: { id: string }; Body: { from: string; to: string; confirm: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/shred`,
    {
      preHandler: edit,
      schema: {
        tags,
        summary: 'Crypto-shred the data of a time window: destroys the org data keys created in [from, to)',
        params: idParam,
        body: {
          type: 'object',
          required: ['from', 'to', 'confirm'],
          properties: { from: { type: 'string', maxLength: 64 }, to: { type: 'string', maxLength: 64 }, confirm: { type: 'string', maxLength: 300 } },
        },
        response: {
          200: { type: 'object', properties: { from: { type: 'string' }, to: { type: 'string' }, dataKeys: { type: 'integer' }, conversations: { type: 'integer' }, values: { type: 'integer' } } },
          ...errors,
        },
      },
    },
    async (request) => lifecycle.shredWindow(callerOf(request), request.params.id, request.body),
  );

  const jobParam = { type: 'object', required: ['jobId'], properties: { jobId: { type: 'string', maxLength: 100 } } } as const;
  app.get<{ Params: { jobId: string } }>(
    '/api/v2/jobs/:jobId',
    { preHandler: view, schema: { tags: ['jobs'], summary: 'A background job and its progress', params: jobParam, response: { 200: jobModel, ...errors } } },
    async (request) => rewrap.get(callerOf(request), request.params.jobId),
  );
  app.get<{ Params: { jobId: string } }>(
    '/api/v2/jobs/:jobId/errors',
    {
      preHandler: view,
      schema: {
        tags: ['jobs'],
        summary: 'Every failure of a job, grouped by reason, with all the data key ids it kept',
        params: jobParam,
        response: {
          200: { type: 'object', properties: { jobId: { type: 'string' }, failed: { type: 'integer' }, entities: { type: 'array', items: errorGroup } } },
          ...errors,
        },
      },
    },
    async (request) => rewrap.errors(callerOf(request), request.params.jobId),
  );
  app.delete<{ Params: { jobId: string } }>(
    '/api/v2/jobs/:jobId',
    { preHandler: edit, schema: { tags: ['jobs'], summary: 'Cancel a job (a running one stops after its current batch)', params: jobParam, response: { 200: jobModel, ...errors } } },
    async (request) => rewrap.cancel(callerOf(request), request.params.jobId),
  );
}
