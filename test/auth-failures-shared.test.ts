import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreRateLimiter } from '../src/services/store-rate-limiter.js';
import { postgresTarget, postgresUrl, tempDir, uniqueSchema } from './support/databases.js';
import { dropSchema, startTestServer, type TestServer } from './support/runtime.js';

/**
 * The failed-authentication limiter on PostgreSQL holds across nodes: guesses spread over two
 * nodes get the limit once in all. Successful requests never touch its table, and buckets of
 * addresses that stopped failing are deleted.
 */

const LIMIT = 4;
const ME = '/api/v2/organizations/me';

describe.skipIf(!postgresTarget.available)('failed authentications across two nodes on PostgreSQL', () => {
  const schema = uniqueSchema();
  const nodes: TestServer[] = [];
  const dataDir = tempDir();

  beforeAll(async () => {
    const shared = {
      DATABASE_URL: `${postgresUrl()}?schema=${schema}`,
      CONVAULT_BOOTSTRAP_TOKEN: 'auth-failures-bootstrap-token-0123',
      CONVAULT_LOCAL_KMS_ROOT_KEY: randomBytes(32).toString('hex'),
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

  const buckets = () => nodes[0]!.runtime.database.db.selectFrom('rate_limit_buckets').selectAll().where('key', 'like', 'auth-failures:%').execute();

  it('successful requests leave the table alone', async () => {
    for (const node of nodes) for (let i = 0; i < 3; i++) expect((await node.call('GET', ME)).status).toBe(200);
    expect(await buckets()).toEqual([]);
  });

  it('failures alternating between the nodes: the limit once in all, then 429 with Retry-After on both', async () => {
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

  it('buckets that refilled are deleted once a window, so addresses cannot pile up rows', async () => {
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
