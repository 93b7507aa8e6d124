import Fastify from 'fastify';

/**
 * The HTTP ceiling of the benchmark (bench/http.ts): a bare Fastify app with convault's secured-data
 * routes, the same bearer header check (present and well-formed), the same JSON bodies and answers of
 * the same shape — and no storage, crypto, audit or token lookup. Run as its own process:
 *   PORT=… node dist/bench/ceiling-server.js
 */
const app = Fastify({ logger: false });
const stored = new Map<string, Record<string, string>>();
const BEARER = /^Bearer\s+(\S+)\s*$/i;

app.addHook('onRequest', async (request, reply) => {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || !BEARER.test(header)) {
    reply.code(401).send({ message: 'The bearer token is not valid.', code: 'unauthorized', status: 401, contextId: request.id });
  }
});

const params = { type: 'object', required: ['conversationId'], properties: { conversationId: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' } } } as const;
const body = { type: 'object', required: ['data'], properties: { data: { type: 'object', additionalProperties: { type: 'string' } } } } as const;

app.put<{ Params: { conversationId: string }; Body: { data: Record<string, string> } }>('/api/v2/conversations/:conversationId/secureddata', { schema: { params, body } }, async (request) => {
  const { conversationId } = request.params;
  // Remember the last write of a few conversations only, so memory stays flat under load.
  if (stored.size < 1000 || stored.has(conversationId)) stored.set(conversationId, request.body.data);
  return { conversationId, attributeNames: Object.keys(request.body.data).sort(), keyConfigurationVersion: 0, keyArn: 'arn:aws:kms:us-east-1:444455556666:key/ceiling' };
});

app.get<{ Params: { conversationId: string } }>('/api/v2/conversations/:conversationId/secureddata', { schema: { params } }, async (request, reply) => {
  const data = stored.get(request.params.conversationId);
  if (!data) return reply.code(404).send({ message: 'not found', code: 'not.found', status: 404, contextId: request.id });
  return { conversationId: request.params.conversationId, data, keyConfigurationVersion: 0, keyArn: 'arn:aws:kms:us-east-1:444455556666:key/ceiling' };
});

const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.stdout.write(`ceiling serving at ${address}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
