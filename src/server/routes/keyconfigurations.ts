import type { FastifyInstance } from 'fastify';
import { KEY_CONFIGURATION_TYPES } from '../../providers/registry.js';
import type { AuthService } from '../../services/auth/auth-service.js';
import { KEY_CONFIG_BASE_PATH, type KeyConfigBody } from '../../services/keyconfig/keyconfig-model.js';
import type { KeyConfigService } from '../../services/keyconfig/keyconfig-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface KeyConfigRouteDeps {
  auth: AuthService;
  keyConfigs: KeyConfigService;
}

const TYPES = Object.keys(KEY_CONFIGURATION_TYPES);
const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err, 422: err, 429: err };

const model = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    keyConfigurationType: { type: 'string', enum: TYPES },
    lastError: { type: 'object', additionalProperties: true },
    selfUri: { type: 'string' },
    version: { type: 'integer' },
    keyArn: { type: 'string' },
    updatedAt: { type: 'string' },
    updatedBy: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } },
    // LocalKeyManager (an XKS proxy): apiKey and clientKey are write-only and answered masked.
    keyId: { type: 'string' },
    apiId: { type: 'string' },
    apiKey: { type: 'string' },
    caBundle: { type: 'string' },
    clientCertificate: { type: 'string' },
    clientKey: { type: 'string' },
  },
} as const;

// Unknown fields are accepted (clients written for other APIs send more) and ignored.
const body = {
  type: 'object',
  required: ['keyConfigurationType'],
  properties: {
    id: { type: 'string', maxLength: 100 },
    keyConfigurationType: { type: 'string', enum: TYPES },
    url: { type: 'string', maxLength: 2048 },
    version: { type: 'integer', minimum: 0 },
    keyId: { type: 'string', maxLength: 128 },
    apiId: { type: 'string', maxLength: 128 },
    apiKey: { type: 'string', maxLength: 256 },
    caBundle: { type: 'string', maxLength: 65_536 },
    clientCertificate: { type: 'string', maxLength: 65_536 },
    clientKey: { type: 'string', maxLength: 65_536 },
  },
} as const;

const stepSchema = {
  type: 'object',
  properties: {
    step: { type: 'string' },
    ok: { type: 'boolean' },
    ms: { type: 'number' },
    advisory: { type: 'boolean' },
    detail: { type: 'string' },
    error: { type: 'object', additionalProperties: true },
  },
} as const;

export async function keyConfigurationRoutes(app: FastifyInstance, { auth, keyConfigs }: KeyConfigRouteDeps): Promise<void> {
  const view = requirePermission(auth, 'conversation:encryptionKey:view');
  const edit = requirePermission(auth, 'conversation:encryptionKey:edit');
  const tags = ['key configuration'];
  const idParam = { type: 'object', properties: { id: { type: 'string', maxLength: 100 } }, required: ['id'] } as const;

  app.get(
    KEY_CONFIG_BASE_PATH,
    { preHandler: view, schema: { tags, summary: "The organization's key configurations (at most one, for conversations)", response: { 200: { type: 'object', properties: { total: { type: 'integer' }, entities: { type: 'array', items: model }, selfUri: { type: 'string' } } }, ...errors } } },
    async (request) => keyConfigs.list(callerOf(request)),
  );

  app.get(
    `${KEY_CONFIG_BASE_PATH}/types`,
    { preHandler: view, schema: { tags, summary: 'The key configuration types, their fields (secret ones write-only) and capabilities' } },
    async () => ({
      entities: Object.values(KEY_CONFIGURATION_TYPES).map((t) => ({
        keyConfigurationType: t.type,
        label: t.label,
        customerOwned: t.customerOwned,
        supportsHealthProbe: t.supportsHealthProbe,
        supportsEncryptData: t.supportsEncryptData,
        supportsServerSideRewrap: t.supportsServerSideRewrap,
        fields: t.fields,
      })),
    }),
  );

  app.get(
    `${KEY_CONFIG_BASE_PATH}/keypolicy`,
    { preHandler: view, schema: { tags, summary: 'The key-policy statement that grants the platform use of the key for this organization only' } },
    async (request) => keyConfigs.keyPolicy(callerOf(request)),
  );

  app.post<{ Body: KeyConfigBody }>(
    KEY_CONFIG_BASE_PATH,
    { preHandler: edit, schema: { tags, summary: 'Create the configuration (runs the Test first; refused with 422 when it fails)', body, response: { 201: model, ...errors } } },
    async (request, reply) => reply.status(201).send(await keyConfigs.create(callerOf(request), request.body)),
  );

  app.post<{ Body: KeyConfigBody }>(
    `${KEY_CONFIG_BASE_PATH}/validate`,
    {
      preHandler: edit,
      schema: {
        tags,
        summary: 'Test: round-trip test data through the key without saving; 200 whether or not the key works',
        body,
        response: { 200: { type: 'object', additionalProperties: true, properties: { ok: { type: 'boolean' }, steps: { type: 'array', items: stepSchema }, keyArn: { type: 'string' } } }, ...errors },
      },
    },
    async (request) => keyConfigs.validate(callerOf(request), request.body),
  );

  app.get<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id`,
    { preHandler: view, schema: { tags, summary: 'One configuration', params: idParam, response: { 200: model, ...errors } } },
    async (request) => keyConfigs.get(callerOf(request), request.params.id),
  );

  app.put<{ Params: { id: string }; Body: KeyConfigBody }>(
    `${KEY_CONFIG_BASE_PATH}/:id`,
    { preHandler: edit, schema: { tags, summary: 'Save: runs the Test first, needs the current version (409 when stale)', params: idParam, body, response: { 200: model, ...errors } } },
    async (request) => keyConfigs.save(callerOf(request), request.params.id, request.body),
  );

  app.get<{ Params: { id: string } }>(
    `${KEY_CONFIG_BASE_PATH}/:id/history`,
    { preHandler: view, schema: { tags, summary: 'Every saved version of the configuration, newest first', params: idParam } },
    async (request) => keyConfigs.history(callerOf(request), request.params.id),
  );
}
