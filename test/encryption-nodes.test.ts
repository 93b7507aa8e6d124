import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { databaseTargets, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Decrypt Data on one node of a message another node encrypted right after a key rotation. The
 * second node still has the old configuration cached (up to CONVAULT_CONFIG_REFRESH_MS), and its
 * decrypt materials for that configuration were made by an earlier Decrypt: it must still see the
 * organization's keys as the database has them now, not as they were at that first Decrypt (found
 * by the soak: a 400 "made for someone else" for a message of the organization itself).
 */

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`Decrypt Data across two nodes after a rotation (${target.name})`, () => {
    const dataDir = tempDir();
    let one: TestServer;
    let two: TestServer;
    let org: { orgId: string; token: string; key: CustomerKey };

    beforeAll(async () => {
      const env = {
        CONVAULT_DATA_DIR: dataDir,
        CONVAULT_LOCAL_KMS_ROOT_KEY: randomBytes(32).toString('hex'),
        CONVAULT_KEY_PROBE_INTERVAL_S: '86400',
        // The second node keeps the old configuration for the whole test, as it may for 2 s by default.
        CONVAULT_CONFIG_REFRESH_MS: '600000',
      };
      one = await startTestServer(target.name, env);
      two = await startTestServer(target.name, { ...env, ...(one.databaseUrl ? { DATABASE_URL: one.databaseUrl } : {}) });
      org = await orgWithCustomerKey(one, 'Rotating', createOrgWithToken);
    });
    afterAll(async () => {
      await two?.close();
      await one?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    const encrypt = async (server: TestServer, data: string) => {
      const res = await server.call('POST', '/api/v2/conversations/encrypt', { token: org.token, body: { data } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.encryptedData as string;
    };
    const decrypt = (server: TestServer, encryptedData: string) => server.call('POST', '/api/v2/conversations/decrypt', { token: org.token, body: { encryptedData } });

    it('the other node decrypts what the rotating node encrypted under the new key', async () => {
      // The second node decrypts once under the first key: its decrypt materials for this configuration exist.
      const before = await encrypt(one, 'before the rotation');
      expect((await decrypt(two, before)).body).toEqual({ data: 'before the rotation' });

      const next = await createCustomerKey(one, { orgIds: [org.orgId] });
      await configureOrgKey(one, org.token, next.aliasArn);
      const after = await encrypt(one, 'after the rotation');

      const res = await decrypt(two, after);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toEqual({ data: 'after the rotation' });
      // And the old messages still decrypt on both.
      expect((await decrypt(two, before)).body).toEqual({ data: 'before the rotation' });
      expect((await decrypt(one, before)).body).toEqual({ data: 'before the rotation' });
    });
  });
}
