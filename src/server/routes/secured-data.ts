import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import type { SecuredDataService } from '../../services/secured-data/secured-data-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface SecuredDataRouteDeps {
  auth: AuthService;
  securedData: SecuredDataService;
}

export const SECURED_DATA_PATH = '/api/v2/conversations/:conversationId/secureddata';
/** 100 attributes × 32,000 characters fit (ASCII); the values are checked one by one in the service. */
const SECURED_DATA_BODY_LIMIT = 8 * 1024 * 1024;

const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 413: err, 424: err, 500: err, 503: err };
const params = {
  type: 'object',
  required: ['conversationId'],
  properties: { conversationId: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' } },
} as const;

const writeBody = (allowNull: boolean) =>
  ({
    type: 'object',
    required: ['data'],
    properties: {
      data: {
        type: 'object',
        description: allowNull ? 'attribute name → string value, or null to delete the attribute' : 'attribute name → string value',
        additionalProperties: allowNull ? { type: ['string', 'null'] } : { type: 'string' },
      },
    },
  }) as const;

const readModel = {
  type: 'object',
  properties: {
    conversationId: { type: 'string' },
    data: { type: 'object', additionalProperties: { type: 'string' } },
    keyConfigurationVersion: { type: 'integer' },
    keyArn: { type: 'string' },
  },
} as const;

const writeModel = {
  type: 'object',
  properties: {
    conversationId: { type: 'string' },
    attributeNames: { type: 'array', items: { type: 'string' } },
    keyConfigurationVersion: { type: 'integer' },
    keyArn: { type: 'string' },
  },
} as const;

type Params = { conversationId: string };

/** Set/Get/Delete Secured Data of a conversation (docs/SECURED_DATA.md). */
export async function securedDataRoutes(app: FastifyInstance, { auth, securedData }: SecuredDataRouteDeps): Promise<void> {
  const view = requirePermission(auth, 'conversation:securedData:view');
  const edit = requirePermission(auth, 'conversation:securedData:edit');
  const tags = ['secured data'];

  app.get<{ Params: Params }>(
    SECURED_DATA_PATH,
    { preHandler: view, schema: { tags, summary: 'Decrypted secured data of the conversation (each read is audited, by attribute name)', params, response: { 200: readModel, ...errors } } },
    async (request) => securedData.get(callerOf(request), request.params.conversationId),
  );

  app.put<{ Params: Params; Body: unknown }>(
    SECURED_DATA_PATH,
    {
      preHandler: edit,
      bodyLimit: SECURED_DATA_BODY_LIMIT,
      schema: { tags, summary: 'Replace the secured data of the conversation', params, body: writeBody(false), response: { 200: writeModel, ...errors } },
    },
    async (request) => securedData.replace(callerOf(request), request.params.conversationId, request.body),
  );

  app.patch<{ Params: Params; Body: unknown }>(
    SECURED_DATA_PATH,
    {
      preHandler: edit,
      bodyLimit: SECURED_DATA_BODY_LIMIT,
      schema: { tags, summary: 'Merge into the secured data of the conversation (null deletes an attribute)', params, body: writeBody(true), response: { 200: writeModel, ...errors } },
    },
    async (request) => securedData.merge(callerOf(request), request.params.conversationId, request.body),
  );

  app.delete<{ Params: Params }>(
    SECURED_DATA_PATH,
    { preHandler: edit, schema: { tags, summary: 'Crypto-shred the conversation: its key is destroyed, then its values', params, response: { 204: { type: 'null' }, ...errors } } },
    async (request, reply) => {
      await securedData.shred(callerOf(request), request.params.conversationId);
      return reply.status(204).send();
    },
  );
}
