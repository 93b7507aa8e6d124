import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

const errorBodySchema = {
  $id: 'ErrorBody',
  type: 'object',
  required: ['message', 'code', 'status', 'contextId'],
  properties: {
    message: { type: 'string' },
    code: { type: 'string' },
    status: { type: 'integer' },
    errorType: { type: 'string' },
    contextId: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  app.addSchema(errorBodySchema);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'convault API',
        version,
        description: 'Customer-managed AWS KMS keys for conversation data. Errors share the ErrorBody shape.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
