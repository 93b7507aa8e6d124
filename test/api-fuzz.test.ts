import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Bad input at scale: random bodies, headers, path parameters and query strings against every
 * JSON endpoint of the OpenAPI document (the real server, through Fastify's injection). Whatever
 * comes in: no 5xx, the process keeps serving, and every error is the one error shape.
 */

const RUNS = 2500;
const ERROR_KEYS = new Set(['message', 'code', 'status', 'errorType', 'contextId', 'details']);

interface Endpoint {
  method: string;
  path: string;
}

describe('fuzzing every JSON endpoint', () => {
  let server: TestServer;
  let endpoints: Endpoint[];
  let realIds: string[];
  let tokens: string[];

  beforeAll(async () => {
    // Random requests include thousands of bad tokens from one address: the failed-authentication
    // limiter (tested on its own) would otherwise refuse the checks that follow.
    server = await startTestServer('sqlite', { CONVAULT_KEY_PROBE_INTERVAL_S: '31536000', LOG_LEVEL: 'silent', CONVAULT_AUTH_FAILURES_PER_MIN: '1000000' });
    const org = await orgWithCustomerKey(server, 'Fuzzed org', createOrgWithToken);
    const viewOnly = await createToken(server, org.orgId, ['conversation:securedData:view']);
    expect((await server.call('PUT', '/api/v2/conversations/fuzz-1/secureddata', { token: org.token, body: { data: { a: '1' } } })).status).toBe(200);
    realIds = [org.orgId, org.configId, 'fuzz-1', 'me'];
    tokens = [server.adminToken, org.token, viewOnly];
    const doc = (await server.runtime.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    endpoints = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/api/') || path === '/healthz' || path === '/readyz')
      .flatMap(([path, ops]) => Object.keys(ops).filter((m) => ['get', 'put', 'post', 'patch', 'delete'].includes(m)).map((m) => ({ method: m.toUpperCase(), path })));
    expect(endpoints.length).toBeGreaterThan(20);
  });
  afterAll(async () => server?.close());

  it(`${RUNS} random requests: no 5xx, one error shape, still serving`, async () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const pathParam = fc.oneof(text, fc.uuid(), fc.constantFrom(...['', '..', '%00', 'a'.repeat(300), '__proto__', 'constructor']), fc.constant('REAL'));
    const queryString = fc.dictionary(
      fc.oneof(fc.constantFrom('limit', 'state', 'from', 'to', 'action', 'cursor', 'conversationId', 'keyArn', 'principal', 'outcome', 'target'), text),
      fc.oneof(text, fc.integer().map(String), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
      { maxKeys: 4 },
    );
    const shapedBody = fc.oneof(
      fc.record({ data: fc.dictionary(text, fc.oneof(text, fc.constant(null), fc.integer(), fc.object({ maxDepth: 1 }))) }, { requiredKeys: [] }),
      fc.record(
        {
          keyConfigurationType: fc.oneof(fc.constantFrom('KmsSymmetric', 'None', 'LocalKeyManager'), text),
          url: fc.oneof(text, fc.constant('arn:aws:kms:us-east-1:111122223333:alias/nope')),
          version: fc.oneof(fc.integer(), text, fc.constant(null)),
          name: text,
          permissions: fc.array(fc.oneof(text, fc.constantFrom('conversation:securedData:view', 'audit:log:view')), { maxLength: 3 }),
          plaintext: text,
          ciphertext: text,
          from: text,
          to: text,
          conversationIds: fc.array(text, { maxLength: 3 }),
        },
        { requiredKeys: [] },
      ),
    );
    const body = fc.oneof(
      fc.constant(undefined),
      shapedBody.map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.json({ maxDepth: 2 }),
      text,
      fc.constant('{"__proto__": {"x": 1}}'),
    );
    const contentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream');
    const auth = fc.oneof(
      fc.constantFrom('admin', 'org', 'viewOnly', 'none').map((k) => k),
      text.map((t) => `raw:${t}`),
    );
    const extraHeaders = fc.dictionary(fc.constantFrom('accept', 'x-request-id', 'if-match', 'accept-encoding', 'x-forwarded-for'), fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), { maxKeys: 3 });

    const request = fc.record({ endpoint: fc.integer({ min: 0, max: 10_000 }), params: fc.array(pathParam, { minLength: 3, maxLength: 3 }), query: queryString, body, contentType, auth, extraHeaders, realId: fc.nat() });

    let count = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        count++;
        const endpoint = endpoints[r.endpoint % endpoints.length]!;
        let i = 0;
        const path = endpoint.path.replace(/\{[^}]+\}/g, () => {
          const p = r.params[i++ % 3]!;
          return encodeURIComponent(p === 'REAL' ? realIds[r.realId % realIds.length]! : p);
        });
        const qs = new URLSearchParams(r.query).toString();
        const headers: Record<string, string> = { ...r.extraHeaders };
        if (r.contentType && r.body !== undefined) headers['content-type'] = r.contentType;
        if (r.auth === 'admin' || r.auth === 'org' || r.auth === 'viewOnly') headers.authorization = `Bearer ${tokens[['admin', 'org', 'viewOnly'].indexOf(r.auth)]}`;
        else if (r.auth.startsWith('raw:')) headers.authorization = r.auth.slice(4).replace(/[^\x20-\x7e]/g, '');
        const res = await server.runtime.app.inject({ method: endpoint.method as 'GET', url: qs ? `${path}?${qs}` : path, headers, ...(r.body !== undefined ? { payload: r.body } : {}) });
        const where = `${endpoint.method} ${path}?${qs} → ${res.statusCode} ${res.body.slice(0, 300)}`;
        expect(res.statusCode, where).toBeLessThan(500);
        if (res.statusCode >= 400) {
          const err = res.json() as Record<string, unknown>;
          expect(Object.keys(err).every((k) => ERROR_KEYS.has(k)), where).toBe(true);
          expect(err, where).toMatchObject({ status: res.statusCode, code: expect.any(String), message: expect.any(String), contextId: res.headers['x-request-id'] });
          if ('errorType' in err) expect(typeof err.errorType, where).toBe('string');
        }
      }),
      { numRuns: RUNS },
    );
    expect(count).toBe(RUNS);
    expect((await server.call('GET', '/healthz')).status).toBe(200);
    // Still working, not merely answering: a write and its read after the storm.
    expect((await server.call('PUT', '/api/v2/conversations/after-fuzz/secureddata', { body: { data: { b: '2' } } })).status).toBe(200);
    expect((await server.call('GET', '/api/v2/conversations/after-fuzz/secureddata')).body.data).toEqual({ b: '2' });
  }, 120_000);
});
