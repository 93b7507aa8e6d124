import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { hashToken } from '../src/services/auth/token-format.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * A verified token is believed for at most CONVAULT_TOKEN_CACHE_MAX_AGE_MS without asking the
 * database again; a change of the token's row (revoked, removed) takes effect within that bound.
 */
const BOUND_MS = 400;

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`token verification cache on ${target.name}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(target.name, { CONVAULT_TOKEN_CACHE_MAX_AGE_MS: String(BOUND_MS) });
    });
    afterAll(async () => server?.close());

    async function refusedWithin(token: string, change: () => Promise<void>): Promise<number> {
      expect((await server.call('GET', '/api/v2/organizations/me', { token })).status).toBe(200); // now cached
      await change();
      const changedAt = Date.now();
      for (;;) {
        const { status, body } = await server.call('GET', '/api/v2/organizations/me', { token });
        if (status === 401) {
          expect(body).toMatchObject({ status: 401, code: expect.any(String), contextId: expect.any(String) });
          return Date.now() - changedAt;
        }
        expect(status).toBe(200);
        expect(Date.now() - changedAt).toBeLessThan(BOUND_MS + 300);
        await sleep(25);
      }
    }

    it('refuses a revoked token within the configured bound', async () => {
      const { token } = await createOrgWithToken(server, 'Revoked token org', ['conversation:securedData:view']);
      const db = server.runtime.database.db;
      const elapsed = await refusedWithin(token, async () => {
        await db.updateTable('api_tokens').set({ revoked_at: Date.now() }).where('token_hash', '=', hashToken(token)).execute();
      });
      expect(elapsed).toBeLessThanOrEqual(BOUND_MS + 300);
      // And it stays refused.
      await sleep(BOUND_MS);
      expect((await server.call('GET', '/api/v2/organizations/me', { token })).status).toBe(401);
    });

    it('refuses a deleted token within the configured bound', async () => {
      const { token } = await createOrgWithToken(server, 'Deleted token org', ['conversation:securedData:view']);
      const db = server.runtime.database.db;
      const elapsed = await refusedWithin(token, async () => {
        await db.deleteFrom('api_tokens').where('token_hash', '=', hashToken(token)).execute();
      });
      expect(elapsed).toBeLessThanOrEqual(BOUND_MS + 300);
    });

    it('does not remember refusals: a token that was unknown works as soon as it exists', async () => {
      const { orgId } = await createOrgWithToken(server, 'Late token org', ['conversation:securedData:view']);
      const late = 'cvt_' + 'late-token-for-cache-test'.padEnd(40, 'x');
      expect((await server.call('GET', '/api/v2/organizations/me', { token: late })).status).toBe(401);
      await server.runtime.services.tokens.create({ principal: 'operator' }, { orgId, name: 'late', permissions: ['conversation:securedData:view'], token: late });
      expect((await server.call('GET', '/api/v2/organizations/me', { token: late })).status).toBe(200);
    });
  });
}

describe('token cache configuration', () => {
  it('defaults to 2 s and refuses more than 5 s', () => {
    expect(loadConfig({}).tokenCacheMaxAgeMs).toBe(2000);
    expect(loadConfig({ CONVAULT_TOKEN_CACHE_MAX_AGE_MS: '0' }).tokenCacheMaxAgeMs).toBe(0);
    expect(() => loadConfig({ CONVAULT_TOKEN_CACHE_MAX_AGE_MS: '5001' })).toThrow(/CONVAULT_TOKEN_CACHE_MAX_AGE_MS/);
  });
});
