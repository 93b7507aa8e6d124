import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreRateLimiter } from '../src/services/store-rate-limiter.js';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { postgresTarget, postgresUrl, tempDir, uniqueSchema } from './support/databases.js';
import { createOrgWithToken, dropSchema, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Limits shared across nodes on PostgreSQL: two nodes on one database allow the limit once in
 * all, not once per node — Test calls, manual probes and failed authentications alike, even when
 * the calls race.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const LIMIT = 4;
const ME = '/api/v2/organizations/me';

describe.skipIf(!postgresTarget.available)('limits across two nodes on PostgreSQL', () => {
  const schema = uniqueSchema();
  const nodes: TestServer[] = [];
  // One data directory: the first node writes the admin token there, the second reads it.
  const dataDir = tempDir();

  beforeAll(async () => {
    const shared = {
      DATABASE_URL: `${postgresUrl()}?schema=${schema}`,
      CONVAULT_BOOTSTRAP_TOKEN: 'shared-limits-bootstrap-token-0123',
      CONVAULT_LOCAL_KMS_ROOT_KEY: randomBytes(32).toString('hex'),
      CONVAULT_TEST_RATE_LIMIT_PER_MIN: String(LIMIT),
      CONVAULT_AUTH_FAILURES_PER_MIN: String(LIMIT),
      CONVAULT_KEY_PROBE_INTERVAL_S: '31536000',
      CONVAULT_DATA_DIR: dataDir,
    };
    nodes.push(await startTestServer('postgres', shared));
    nodes.push(await startTestServer('postgres', shared));
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await dropSchema(schema);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Fires `n` calls at once, alternating between the nodes; returns the answers. */
  const race = (n: number, call: (node: TestServer) => Promise<{ status: number; body: any; headers: Headers }>) =>
    Promise.all(Array.from({ length: n }, (_, i) => call(nodes[i % 2]!)));

  const expectExactlyLimit = (answers: Array<{ status: number; body: any; headers: Headers }>) => {
    expect(answers.filter((a) => a.status === 200)).toHaveLength(LIMIT);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(answers.length - LIMIT);
    for (const a of limited) {
      expect(a.body).toMatchObject({ status: 429, code: 'too.many.requests', errorType: 'RateLimited', contextId: expect.any(String) });
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
  };

  it('Test (validate): the organization gets the limit once across both nodes', async () => {
    const org = await createOrgWithToken(nodes[0]!, 'Test limit', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
    const answers = await race(3 * LIMIT, (node) => node.call('POST', `${BASE}/validate`, { token: org.token, body: { keyConfigurationType: 'None' } }));
    expectExactlyLimit(answers);
    // Another organization has its own bucket.
    const other = await createOrgWithToken(nodes[1]!, 'Other org', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
    expect((await nodes[1]!.call('POST', `${BASE}/validate`, { token: other.token, body: { keyConfigurationType: 'None' } })).status).toBe(200);
  });

  it('manual probes: the limit once across both nodes', async () => {
    const org = await orgWithCustomerKey(nodes[0]!, 'Probe limit', createOrgWithToken);
    const answers = await race(2 * LIMIT, (node) => node.call('POST', `${BASE}/${org.configId}/health/probe`, { token: org.token }));
    expectExactlyLimit(answers);
  });

  it('refills continuously with the database clock, whatever node asks', async () => {
    const database = nodes[0]!.runtime.database;
    // One token every 500 ms.
    const limiter = createStoreRateLimiter({ ...database, name: 'refill-test', limit: 3, windowMs: 1500 });
    for (let i = 0; i < 3; i++) await limiter.take('k', 'things');
    await expect(limiter.take('k', 'things')).rejects.toMatchObject({ status: 429, details: { retryAfterSeconds: 1 } });
    await new Promise((r) => setTimeout(r, 600));
    await expect(limiter.take('k', 'things')).resolves.toBeUndefined();
  });

  // Last: the address of these tests ends refused on both nodes.
  const buckets = () => nodes[0]!.runtime.database.db.selectFrom('rate_limit_buckets').selectAll().where('key', 'like', 'auth-failures:%').execute();

  it('failed authentications: successful requests leave the table alone', async () => {
    for (const node of nodes) for (let i = 0; i < 3; i++) expect((await node.call('GET', ME)).status).toBe(200);
    expect(await buckets()).toEqual([]);
  });

  it('failed authentications alternating between the nodes: the limit once in all, then 429 with Retry-After on both', async () => {
    const answers = [];
    for (let i = 0; i < LIMIT + 2; i++) answers.push(await nodes[i % 2]!.call('GET', ME, { token: `cvt_guess-${i}` }));
    expect(answers.map((a) => a.status)).toEqual([...Array<number>(LIMIT).fill(401), 429, 429]);
    for (const limited of answers.slice(LIMIT)) {
      expect(limited.body).toMatchObject({ status: 429, code: 'too.many.requests', errorType: 'RateLimited', contextId: expect.any(String) });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // One bucket, for the one address all of them came from.
    expect((await buckets()).map((b) => b.key)).toEqual(['auth-failures:127.0.0.1']);
    // A node that saw the refusal refuses the address without asking the database, a valid token included.
    for (const node of nodes) expect((await node.call('GET', ME)).status).toBe(429);
  });

  it('buckets (failed authentications: client addresses) that refilled are deleted once a window, so addresses cannot pile up rows', async () => {
    const database = nodes[0]!.runtime.database;
    const limiter = createStoreRateLimiter({ ...database, name: 'sweep-test', limit: 2, windowMs: 1000 });
    for (let i = 0; i < 20; i++) await limiter.take(`address-${i}`, 'things');
    const rows = () => database.db.selectFrom('rate_limit_buckets').select('key').where('key', 'like', 'sweep-test:%').execute();
    expect(await rows()).toHaveLength(20);
    await new Promise((r) => setTimeout(r, 1100));
    await limiter.take('address-late', 'things');
    expect((await rows()).map((r) => r.key)).toEqual(['sweep-test:address-late']);
  });
});
