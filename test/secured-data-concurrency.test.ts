import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Concurrent first writes: one GenerateDataKey per organization (single-flight), and exactly one
 * conversation key per conversation (the database's primary key decides; the losers re-read it).
 */

const path = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;
const PARALLEL = 20;

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`concurrent first writes on ${target.name}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(target.name);
    });
    afterAll(async () => server?.close());

    const generateDataKeyCalls = () => server.runtime.kms.metrics.count('GenerateDataKey');

    it('first writes to many conversations of a new organization share one GenerateDataKey', async () => {
      const org = await orgWithCustomerKey(server, 'Busy org', createOrgWithToken);
      const before = generateDataKeyCalls();
      const conversations = Array.from({ length: PARALLEL }, () => randomUUID());
      const results = await Promise.all(conversations.map((c, i) => server.call('PUT', path(c), { token: org.token, body: { data: { n: String(i) } } })));
      expect(results.map((r) => r.status)).toEqual(conversations.map(() => 200));
      expect(generateDataKeyCalls() - before).toBe(1);
      const db = server.runtime.database.db;
      const dataKeys = await db.selectFrom('org_data_keys').select('id').where('org_id', '=', org.orgId).execute();
      expect(dataKeys).toEqual([{ id: expect.any(String) }]);
      const protectedByIt = await db.selectFrom('conversation_keys').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', org.orgId).where('data_key_id', '=', dataKeys[0]!.id).executeTakeFirstOrThrow();
      expect(Number(protectedByIt.n)).toBe(PARALLEL);
    });

    it('concurrent first writes to one conversation create exactly one conversation key, and every write lands intact', async () => {
      const org = await orgWithCustomerKey(server, 'Racing org', createOrgWithToken);
      const conv = randomUUID();
      const before = generateDataKeyCalls();
      const results = await Promise.all(
        Array.from({ length: PARALLEL }, (_, i) =>
          server.call(i % 2 ? 'PATCH' : 'PUT', path(conv), { token: org.token, body: { data: { [`w${i}`]: `value ${i}` } } }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      expect(generateDataKeyCalls() - before).toBe(1);
      const db = server.runtime.database.db;
      const keys = await db.selectFrom('conversation_keys').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute();
      expect(keys).toHaveLength(1);
      const dataKeys = await db.selectFrom('org_data_keys').select('id').where('org_id', '=', org.orgId).execute();
      expect(dataKeys.map((k) => k.id)).toEqual([keys[0]!.data_key_id]);

      // Whatever order they committed in, the result is readable and consistent with some serial order.
      const get = await server.call('GET', path(conv), { token: org.token });
      expect(get.status).toBe(200);
      for (const [name, value] of Object.entries(get.body.data as Record<string, string>)) expect(value).toBe(`value ${name.slice(1)}`);
      expect(Object.keys(get.body.data).length).toBeGreaterThan(0);
    });
  });
}
