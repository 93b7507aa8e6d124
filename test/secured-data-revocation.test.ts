import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * The customer takes the key away → writes are refused and nothing is stored; reads stop once the
 * caches expire (max age 1 s here), including a conversation read a moment before; enabling the key
 * again restores service without a restart. Waits are just over the max age, never longer.
 */

const path = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;
const JUST_OVER_MAX_AGE_MS = 1_100;

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`revoking the customer key on ${target.name}`, () => {
    let server: TestServer;
    let org: { orgId: string; token: string; key: CustomerKey };

    beforeAll(async () => {
      // No background key probes: their KMS calls would blur the counts of the expiry test.
      server = await startTestServer(target.name, { CONVAULT_KEY_CACHE_MAX_AGE_S: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '86400' });
      org = await orgWithCustomerKey(server, 'Revoker', createOrgWithToken);
    });
    afterAll(async () => server?.close());

    const call = (method: string, conv: string, body?: unknown) => server.call(method, path(conv), { token: org.token, body });
    const lastError = async () => (await server.call('GET', '/api/v2/conversations/keyconfigurations', { token: org.token })).body.entities[0].lastError;

    it('disabled CMK: writes refused with nothing stored, reads fail after the max age (also a hot conversation), recovery on enable', async () => {
      const hot = randomUUID();
      const fresh = randomUUID();
      expect((await call('PUT', hot, { data: { pan: 'before' } })).status).toBe(200);
      expect((await call('GET', hot)).status).toBe(200); // read a moment before: every key of it is cached now

      await org.key.disable();
      await sleep(JUST_OVER_MAX_AGE_MS);

      const read = await call('GET', hot);
      expect(read.status).toBe(424);
      expect(read.body).toMatchObject({ errorType: 'CustomerKeyUnavailable', code: 'customer.key.error' });
      expect(read.body.message).toMatch(/disabled/i);
      expect(read.body.data).toBeUndefined();

      const newConversation = await call('PUT', fresh, { data: { pan: 'never stored' } });
      expect(newConversation.status).toBe(424);
      expect(newConversation.body.errorType).toBe('CustomerKeyUnavailable');
      const existingConversation = await call('PATCH', hot, { data: { pan: 'never stored either' } });
      expect(existingConversation.status).toBe(424);

      // The key configuration shows why, for the admin.
      expect(await lastError()).toMatchObject({ errorType: 'CustomerKeyUnavailable', awsError: 'DisabledException' });

      await org.key.enable();
      expect((await call('GET', hot)).body.data).toEqual({ pan: 'before' });
      const none = await call('GET', fresh);
      expect(none.status).toBe(404);
      expect((await call('PUT', fresh, { data: { pan: 'after' } })).status).toBe(200);
      expect((await call('GET', fresh)).body.data).toEqual({ pan: 'after' });
      expect(await lastError()).toBeUndefined();
    });

    it('a conversation key expires with the data key it was unwrapped under, not a max age after its own first use', async () => {
      // The data key is unlocked by the first write; a second conversation's key is made under it
      // later, while the data key is still cached (checked: no KMS call for it — on a machine too slow
      // for that, the staging is repeated).
      const kmsCalls = () => server.runtime.kms.metrics.count('Decrypt') + server.runtime.kms.metrics.count('GenerateDataKey');
      let late = '';
      let dataKeyUnlockedBy = 0;
      for (let attempt = 0; ; attempt++) {
        const early = randomUUID();
        late = randomUUID();
        server.runtime.services.securedData.clearCaches(); // the data key is unlocked by the write below, not earlier
        expect((await call('PUT', early, { data: { a: 'early' } })).status).toBe(200);
        dataKeyUnlockedBy = Date.now(); // its plaintext leaves the cache by this + max age
        await sleep(600);
        const before = kmsCalls();
        expect((await call('PUT', late, { data: { a: 'late' } })).status).toBe(200);
        expect((await call('GET', late)).status).toBe(200);
        if (kmsCalls() === before) break;
        if (attempt === 4) throw new Error('could not write the second conversation while the data key was cached');
      }
      await org.key.disable();
      try {
        // Past the data key's expiry, well before a max age counted from the late conversation key.
        await sleep(dataKeyUnlockedBy + JUST_OVER_MAX_AGE_MS - Date.now());
        const read = await call('GET', late);
        expect(read.status).toBe(424);
        expect(read.body.errorType).toBe('CustomerKeyUnavailable');
      } finally {
        await org.key.enable();
      }
      expect((await call('GET', late)).body.data).toEqual({ a: 'late' });
    });

    it('a key policy that no longer grants the platform: 424 CustomerKeyUnavailable after the max age, recovery when granted again', async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { a: 'v' } });
      await org.key.grantPlatform([]); // the customer removes the platform statement
      await sleep(JUST_OVER_MAX_AGE_MS);
      const read = await call('GET', conv);
      expect(read.status).toBe(424);
      expect(read.body.errorType).toBe('CustomerKeyUnavailable');
      expect(read.body.details).toMatchObject({ awsError: 'AccessDeniedException' });
      expect((await call('PUT', randomUUID(), { data: { a: 'v' } })).status).toBe(424);
      await org.key.grantPlatform([org.orgId]);
      expect((await call('GET', conv)).body.data).toEqual({ a: 'v' });
    });

    it('KMS unreachable: 503 CustomerKeyUnavailable, nothing stored', async () => {
      const conv = randomUUID();
      const faults = server.runtime.kms.localKms!.faults;
      await sleep(JUST_OVER_MAX_AGE_MS); // let every cached key expire
      faults.set({ outage: 'unavailable' });
      try {
        const res = await call('PUT', conv, { data: { a: 'v' } });
        expect(res.status).toBe(503);
        expect(res.body.errorType).toBe('CustomerKeyUnavailable');
      } finally {
        faults.reset();
        await faults.settled();
      }
      const db = server.runtime.database.db;
      expect(await db.selectFrom('conversation_keys').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute()).toEqual([]);
      expect(await db.selectFrom('secured_values').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute()).toEqual([]);
    });
  });
}
