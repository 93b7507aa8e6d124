import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import { createOrgDal } from '../src/services/orgs/org-dal.js';
import { createTokenDal } from '../src/services/auth/token-dal.js';
import type { Database } from '../src/store/schema.js';
import { databaseTargets } from './support/databases.js';

// The same repository suite on both databases; PostgreSQL runs in a schema of its own, dropped afterwards.
for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`store on ${target.name}`, () => {
    let handle: Awaited<ReturnType<typeof target.open<Database>>>;
    beforeAll(async () => {
      handle = await target.open<Database>();
    });
    afterAll(async () => handle?.close());

    it('applies the migrations once and is idempotent', async () => {
      const first = await runMigrations(handle.db, handle.dialect, convaultMigrations);
      expect(first).toContain('0001-foundation');
      const second = await runMigrations(handle.db, handle.dialect, convaultMigrations);
      expect(second).toEqual([]);
      const tables = (await handle.db.introspection.getTables()).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['organizations', 'principals', 'api_tokens', 'meta']));
    });

    it('stores and finds organizations, principals and tokens', async () => {
      const orgs = createOrgDal(handle.db);
      const tokens = createTokenDal(handle.db);
      const orgId = randomUUID();
      await orgs.insertOrganization({ id: orgId, name: 'Acme', created_at: 1_700_000_000_000 });
      expect(await orgs.findOrganization(orgId)).toEqual({ id: orgId, name: 'Acme', created_at: 1_700_000_000_000 });
      const principalId = randomUUID();
      await orgs.insertPrincipal({ id: principalId, org_id: orgId, name: 'p', kind: 'client', permissions: '["audit:log:view"]', created_at: 1 });
      expect((await orgs.findPrincipal(orgId, principalId))?.name).toBe('p');
      expect(await orgs.findPrincipal(randomUUID(), principalId)).toBeUndefined();
      await tokens.insertToken({ id: randomUUID(), org_id: orgId, principal_id: principalId, token_hash: 'ab'.repeat(32), prefix: 'cvt_x', created_at: 2, revoked_at: null, expires_at: null });
      const found = await tokens.findActiveByHash('ab'.repeat(32), 3);
      expect(found?.org_id).toBe(orgId);
      expect(found?.permissions).toBe('["audit:log:view"]');
      expect(await tokens.findActiveByHash('cd'.repeat(32), 3)).toBeUndefined();
      // Expired at 100: found before, not at or after.
      const expiring = randomUUID();
      await tokens.insertToken({ id: expiring, org_id: orgId, principal_id: principalId, token_hash: '12'.repeat(32), prefix: 'cvt_y', created_at: 2, revoked_at: null, expires_at: 100 });
      expect((await tokens.findActiveByHash('12'.repeat(32), 99))?.id).toBe(expiring);
      expect(await tokens.findActiveByHash('12'.repeat(32), 100)).toBeUndefined();
      expect(await tokens.revokeToken(orgId, expiring, 50)).toBe(true);
      expect(await tokens.revokeToken(orgId, expiring, 51)).toBe(false);
      expect(await tokens.findActiveByHash('12'.repeat(32), 60)).toBeUndefined();
    });

    it('claims a meta key exactly once', async () => {
      const orgs = createOrgDal(handle.db);
      expect(await orgs.claimMeta('k', 'one')).toBe(true);
      expect(await orgs.claimMeta('k', 'two')).toBe(false);
      expect(await orgs.getMeta('k')).toBe('one');
    });

    it('refuses a token whose principal does not exist (foreign keys enforced)', async () => {
      const orgs = createOrgDal(handle.db);
      const orgId = randomUUID();
      await orgs.insertOrganization({ id: orgId, name: 'B', created_at: 1 });
      await expect(
        createTokenDal(handle.db).insertToken({ id: randomUUID(), org_id: orgId, principal_id: randomUUID(), token_hash: 'ef'.repeat(32), prefix: 'x', created_at: 1, revoked_at: null, expires_at: null }),
      ).rejects.toThrow();
      await sql`select 1`.execute(handle.db);
    });
  });
}
