import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../services/auth/auth-service.js';
import type { EncryptionService } from '../../services/encryption/encryption-service.js';
import { callerOf, requirePermission } from '../plugins/auth.js';

export interface EncryptionRouteDeps {
  auth: AuthService;
  encryption: EncryptionService;
}

const err = { $ref: 'ErrorBody#' };
const errors = { 400: err, 401: err, 403: err, 413: err, 424: err, 500: err, 503: err };

/** Encrypt Data / Decrypt Data: AWS Encryption SDK messages under the organization's CMK (docs/SECURED_DATA.md). */
export async function encryptionRoutes(app: FastifyInstance, { auth, encryption }: EncryptionRouteDeps): Promise<void> {
  const use = requirePermission(auth, 'conversation:encryption:use');
  const tags = ['encryption'];

  // Bodies are checked in the service, so an empty or missing field answers errorType NoDataSupplied.
  app.post<{ Body: unknown }>(
    '/api/v2/conversations/encrypt',
    {
      preHandler: use,
      schema: {
        tags,
        summary: 'Encrypt text (at most 32,000 characters) into an AWS Encryption SDK message under the organization\'s KMS key',
        body: { type: 'object', properties: { data: { type: ['string', 'null'] } } },
        response: { 200: { type: 'object', properties: { encryptedData: { type: 'string', description: 'base64 ESDK message' } } }, ...errors },
      },
    },
    async (request) => encryption.encrypt(callerOf(request), request.body),
  );

  app.post<{ Body: unknown }>(
    '/api/v2/conversations/decrypt',
    {
      preHandler: use,
      schema: {
        tags,
        summary: 'Decrypt an AWS Encryption SDK message made for this organization',
        body: { type: 'object', properties: { encryptedData: { type: ['string', 'null'] } } },
        response: { 200: { type: 'object', properties: { data: { type: 'string' } } }, ...errors },
      },
    },
    async (request) => encryption.decrypt(callerOf(request), request.body),
  );
}
