import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { postgresTarget, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Two real runtimes on one PostgreSQL schema (each with its own local KMS over the shared key store),
 * for what the unit tests prove only with fakes: a node adopts the data key another node made
 * instead of generating its own, and re-reads a data key row another node rewrapped rather than
 * unwrapping its stale copy with the old key.
 */

const path = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;
const MAX_AGE_MS = 1_000;

describe.skipIf(!postgresTarget.available)('two runtimes on one PostgreSQL database', () => {
  const dataDir = tempDir();
  let one: TestServer;
  let two: TestServer;
  let org: { orgId: string; token: string; key: CustomerKey };

  beforeAll(async () => {
    const env = {
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_LOCAL_KMS_ROOT_KEY: randomBytes(32).toString('hex'),
      CONVAULT_KEY_CACHE_MAX_AGE_S: String(MAX_AGE_MS / 1000),
      CONVAULT_KEY_PROBE_INTERVAL_S: '86400',
    };
    one = await startTestServer('postgres', env);
    two = await startTestServer('postgres', { ...env, DATABASE_URL: one.databaseUrl! });
    org = await orgWithCustomerKey(one, 'Shared', createOrgWithToken);
  });
  afterAll(async () => {
    await two?.close();
    await one?.close(); // drops the schema
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const calls = (server: TestServer, operation: string) => server.runtime.kms.metrics.snapshot().filter((e) => e.operation === operation && e.outcome === 'ok').reduce((n, e) => n + e.count, 0);
  const dataKeyOf = async (conversationId: string) =>
    (await one.runtime.database.db.selectFrom('conversation_keys').select('data_key_id').where('org_id', '=', org.orgId).where('conversation_id', '=', conversationId).executeTakeFirstOrThrow()).data_key_id;

  it('the second node adopts the data key the first one made: one Decrypt, no GenerateDataKey', async () => {
    expect((await one.call('PUT', path('from-one'), { token: org.token, body: { data: { v: 'one' } } })).status).toBe(200);
    const generated = calls(two, 'GenerateDataKey');
    const decrypted = calls(two, 'Decrypt');
    expect((await two.call('PUT', path('from-two'), { token: org.token, body: { data: { v: 'two' } } })).status).toBe(200);
    expect(calls(two, 'GenerateDataKey') - generated).toBe(0);
    expect(calls(two, 'Decrypt') - decrypted).toBe(1);
    expect(await dataKeyOf('from-two')).toBe(await dataKeyOf('from-one'));
    expect((await two.call('GET', path('from-one'), { token: org.token })).body.data).toEqual({ v: 'one' });
    expect((await one.call('GET', path('from-two'), { token: org.token })).body.data).toEqual({ v: 'two' });
  });

  it('after the first node rewraps, the second re-reads the row and unwraps with the new key, the old one disabled', async () => {
    // The second node holds the data key (and its row as it was) from the reads above.
    expect((await two.call('GET', path('from-two'), { token: org.token })).status).toBe(200);
    const next = await createCustomerKey(one, { orgIds: [org.orgId] });
    await configureOrgKey(one, org.token, next.aliasArn);
    const configId = (await one.call('GET', '/api/v2/conversations/keyconfigurations', { token: org.token })).body.entities[0].id;
    const started = await one.call('POST', `/api/v2/conversations/keyconfigurations/${configId}/rewrap`, { token: org.token });
    let job = started.body;
    while (['queued', 'running'].includes(job.state)) {
      await sleep(50);
      job = (await one.call('GET', `/api/v2/jobs/${started.body.id}`, { token: org.token })).body;
    }
    expect(job).toMatchObject({ state: 'succeeded', failed: 0 });
    await org.key.disable();

    // Past the max age the second node must go back to the database: its copy of the row names the old key.
    await sleep(MAX_AGE_MS + 100);
    const decrypted = calls(two, 'Decrypt');
    for (const conv of ['from-one', 'from-two']) {
      const res = await two.call('GET', path(conv), { token: org.token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.keyArn).toBe(next.keyArn);
    }
    expect(calls(two, 'Decrypt') - decrypted).toBe(1);
  });

  it('a rewrap started on the other node right after a Save targets the key just saved', async () => {
    // The second node has just resolved the configuration (cached up to CONVAULT_CONFIG_REFRESH_MS).
    expect((await two.call('PUT', path('before-save'), { token: org.token, body: { data: { v: 'before' } } })).status).toBe(200);
    const latest = await createCustomerKey(one, { orgIds: [org.orgId] });
    await configureOrgKey(one, org.token, latest.aliasArn);
    const configId = (await one.call('GET', '/api/v2/conversations/keyconfigurations', { token: org.token })).body.entities[0].id;
    const started = await two.call('POST', `/api/v2/conversations/keyconfigurations/${configId}/rewrap`, { token: org.token });
    expect(started.status).toBe(202);
    expect(started.body.targetKeyId).toBe(latest.aliasArn);
    let job = started.body;
    while (['queued', 'running'].includes(job.state)) {
      await sleep(50);
      job = (await two.call('GET', `/api/v2/jobs/${started.body.id}`, { token: org.token })).body;
    }
    expect(job).toMatchObject({ state: 'succeeded', failed: 0 });
    expect((await one.call('GET', path('before-save'), { token: org.token })).body).toMatchObject({ data: { v: 'before' }, keyArn: latest.keyArn });
  });
});

describe.skipIf(!postgresTarget.available)('the per-data-key conversation bound across two runtimes', () => {
  const dataDir = tempDir();
  const MAX = 40;
  let one: TestServer;
  let two: TestServer;

  beforeAll(async () => {
    const env = {
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_LOCAL_KMS_ROOT_KEY: randomBytes(32).toString('hex'),
      CONVAULT_DATA_KEY_MAX_CONVERSATIONS: String(MAX),
      CONVAULT_KEY_PROBE_INTERVAL_S: '86400',
    };
    one = await startTestServer('postgres', env);
    two = await startTestServer('postgres', { ...env, DATABASE_URL: one.databaseUrl! });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('concurrent new conversations on both nodes: no data key protects more than the bound, every value reads', async () => {
    const org = await orgWithCustomerKey(one, 'Bounded', createOrgWithToken);
    const ids = Array.from({ length: 100 }, (_, i) => `bounded-${i}`);
    const answers = await Promise.all(ids.map((c, i) => (i % 2 ? two : one).call('PUT', path(c), { token: org.token, body: { data: { v: c } } })));
    expect(answers.map((a) => a.status)).toEqual(ids.map(() => 200));
    const perKey = await one.runtime.database.db
      .selectFrom('conversation_keys')
      .select(['data_key_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('org_id', '=', org.orgId)
      .groupBy('data_key_id')
      .execute();
    expect(perKey.reduce((n, r) => n + Number(r.n), 0)).toBe(100);
    expect(Math.max(...perKey.map((r) => Number(r.n)))).toBeLessThanOrEqual(MAX);
    for (const [i, c] of ids.entries()) expect((await (i % 2 ? one : two).call('GET', path(c), { token: org.token })).body.data).toEqual({ v: c });
  });
});
