import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

/** Set/Get/Delete Secured Data through the HTTP API, on every database. */

const path = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;

function expectError(res: { status: number; body: any }, status: number, errorType?: string) {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ status, code: expect.any(String), message: expect.any(String), contextId: expect.any(String) });
  if (errorType) expect(res.body.errorType).toBe(errorType);
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`secured data API on ${target.name}`, () => {
    let server: TestServer;
    let org: { orgId: string; token: string; key: CustomerKey };
    let other: { orgId: string; token: string; key: CustomerKey };

    beforeAll(async () => {
      server = await startTestServer(target.name);
      org = await orgWithCustomerKey(server, 'Org A', createOrgWithToken);
      other = await orgWithCustomerKey(server, 'Org B', createOrgWithToken);
    });
    afterAll(async () => server?.close());

    const call = (method: string, conversationId: string, body?: unknown, token = org.token) => server.call(method, path(conversationId), { token, body });

    it('PUT replaces, GET decrypts and names the key that protects the conversation', async () => {
      const conv = randomUUID();
      const put = await call('PUT', conv, { data: { cardNumber: '4111 1111 1111 1111', 'cvv.code': '123', empty: '' } });
      expect(put.status).toBe(200);
      expect(put.body).toEqual({ conversationId: conv, attributeNames: ['cardNumber', 'cvv.code', 'empty'], keyConfigurationVersion: 1, keyArn: org.key.keyArn });

      const get = await call('GET', conv);
      expect(get.status).toBe(200);
      expect(get.body).toEqual({ conversationId: conv, data: { cardNumber: '4111 1111 1111 1111', 'cvv.code': '123', empty: '' }, keyConfigurationVersion: 1, keyArn: org.key.keyArn });

      const replaced = await call('PUT', conv, { data: { only: 'this' } });
      expect(replaced.body.attributeNames).toEqual(['only']);
      expect((await call('GET', conv)).body.data).toEqual({ only: 'this' });
    });

    it('PATCH merges, null deletes, and PATCH creates a conversation that does not exist yet', async () => {
      const conv = randomUUID();
      expect((await call('PATCH', conv, { data: { a: '1', b: '2' } })).status).toBe(200);
      const patched = await call('PATCH', conv, { data: { a: null, c: '3', b: 'two' } });
      expect(patched.status).toBe(200);
      expect(patched.body.attributeNames).toEqual(['b', 'c']);
      expect((await call('GET', conv)).body.data).toEqual({ b: 'two', c: '3' });
      // Deleting an attribute that is not there is not an error.
      expect((await call('PATCH', conv, { data: { nope: null } })).status).toBe(200);
    });

    it('PATCH that only deletes, on a conversation without secured data: 404 as a GET answers, and nothing is created', async () => {
      const conv = randomUUID();
      const missing = await call('GET', conv);
      const deleting = await call('PATCH', conv, { data: { card: null, cvv: null } });
      expectError(deleting, 404);
      expect({ ...deleting.body, contextId: undefined }).toEqual({ ...missing.body, contextId: undefined });
      // Deleting nothing at all is the same request: nothing to create.
      expectError(await call('PATCH', conv, { data: {} }), 404);
      // Another organization's conversation is missing for this one, whatever it deletes.
      const foreign = randomUUID();
      await call('PUT', foreign, { data: { theirs: 'B' } }, other.token);
      expectError(await call('PATCH', foreign, { data: { theirs: null } }), 404);
      expect((await call('GET', foreign, undefined, other.token)).body.data).toEqual({ theirs: 'B' });

      expectError(await call('GET', conv), 404);
      const db = server.runtime.database.db;
      expect(await db.selectFrom('conversation_keys').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute()).toEqual([]);
      // Once the conversation exists, deleting its last attribute is a change like any other.
      expect((await call('PATCH', conv, { data: { card: '4111' } })).status).toBe(200);
      expect((await call('PATCH', conv, { data: { card: null } })).body.attributeNames).toEqual([]);
    });

    it('keeps Unicode values exactly', async () => {
      const conv = randomUUID();
      const data = { emoji: '💳 ✓ ü 中文 \u0000 "quoted" \\ back', newline: 'a\nb\r\n' };
      await call('PUT', conv, { data });
      expect((await call('GET', conv)).body.data).toEqual(data);
    });

    it('requires the permissions of the issue: view to read, edit to write and shred', async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { a: 'secret' } });
      const viewOnly = await createToken(server, org.orgId, ['conversation:securedData:view']);
      const editOnly = await createToken(server, org.orgId, ['conversation:securedData:edit']);
      const encryptOnly = await createToken(server, org.orgId, ['conversation:encryption:use']);

      expect((await call('GET', conv, undefined, viewOnly)).status).toBe(200);
      for (const method of ['PUT', 'PATCH'] as const) {
        const res = await call(method, conv, { data: { a: 'x' } }, viewOnly);
        expectError(res, 403);
        expect(res.body.details.missingPermissions).toEqual(['conversation:securedData:edit']);
      }
      expectError(await call('DELETE', conv, undefined, viewOnly), 403);

      const read = await call('GET', conv, undefined, editOnly);
      expectError(read, 403);
      expect(read.body.details.missingPermissions).toEqual(['conversation:securedData:view']);
      expect((await call('PATCH', conv, { data: { b: 'y' } }, editOnly)).status).toBe(200);

      expectError(await call('GET', conv, undefined, encryptOnly), 403);
      expectError(await server.call('GET', path(conv), { token: null }), 401);
      expect((await call('GET', conv)).body.data).toEqual({ a: 'secret', b: 'y' });
    });

    it('enforces the limits: names, 32,000-character values, 100 attributes (413/400 MaximumDataSizeExceeded)', async () => {
      const conv = randomUUID();
      const max = 'x'.repeat(32_000);
      expect((await call('PUT', conv, { data: { big: max } })).status).toBe(200);
      expect((await call('GET', conv)).body.data.big).toBe(max);
      expectError(await call('PUT', conv, { data: { big: `${max}y` } }), 413, 'MaximumDataSizeExceeded');
      expectError(await call('PATCH', conv, { data: { big: `${max}y` } }), 413, 'MaximumDataSizeExceeded');

      const hundred = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`attr${i}`, `v${i}`]));
      expect((await call('PUT', conv, { data: hundred })).status).toBe(200);
      expectError(await call('PUT', conv, { data: { ...hundred, one: 'too many' } }), 413, 'MaximumDataSizeExceeded');
      // A merge that would leave 101 attributes is refused as a whole: nothing of it is stored.
      const over = await call('PATCH', conv, { data: { one: 'too many', attr0: 'changed' } });
      expectError(over, 413, 'MaximumDataSizeExceeded');
      const after = await call('GET', conv);
      expect(Object.keys(after.body.data)).toHaveLength(100);
      expect(after.body.data.attr0).toBe('v0');
      // … but a merge that deletes one and adds one fits.
      expect((await call('PATCH', conv, { data: { one: 'fits', attr0: null } })).status).toBe(200);

      expectError(await call('PUT', conv, { data: { ['n'.repeat(129)]: 'v' } }), 400, 'MaximumDataSizeExceeded');
      expect((await call('PUT', conv, { data: { ['n'.repeat(128)]: 'v' } })).status).toBe(200);
      expectError(await call('PUT', conv, { data: { 'bad name': 'v' } }), 400);
      expectError(await call('PUT', conv, { data: { 'bad/name': 'v' } }), 400);
      expectError(await call('PUT', conv, { data: { a: 42 } }), 400);
      expectError(await call('PUT', conv, { data: { a: null } }), 400);
      expectError(await call('PUT', conv, { notData: {} }), 400);
      expectError(await call('PUT', 'bad%20id', { data: { a: 'v' } }), 400);
      expect((await call('PUT', `conv:${'x'.repeat(95)}`, { data: { a: 'v' } })).status).toBe(200);
    });

    it("answers 404 for a conversation without secured data and for another organization's conversation", async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { mine: 'A' } });
      const unknown = await call('GET', randomUUID());
      const foreign = await call('GET', conv, undefined, other.token);
      expectError(unknown, 404);
      expectError(foreign, 404);
      expect(foreign.body.message).toBe(unknown.body.message);
      expectError(await call('DELETE', conv, undefined, other.token), 404);
      // The other organization writing "the same" conversation id gets its own, separate data.
      expect((await call('PUT', conv, { data: { theirs: 'B' } }, other.token)).body.keyArn).toBe(other.key.keyArn);
      expect((await call('GET', conv)).body.data).toEqual({ mine: 'A' });
      expect((await call('GET', conv, undefined, other.token)).body.data).toEqual({ theirs: 'B' });
    });

    it('crypto-shreds: DELETE destroys the conversation key, then the values; GET answers 404 afterwards', async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { a: '1', b: '2' } });
      const db = server.runtime.database.db;
      const before = await db.selectFrom('conversation_keys').select('wrapped').where('org_id', '=', org.orgId).where('conversation_id', '=', conv).executeTakeFirstOrThrow();

      const del = await call('DELETE', conv);
      expect(del.status).toBe(204);
      expectError(await call('GET', conv), 404);
      expectError(await call('DELETE', conv), 404);
      expect(await db.selectFrom('conversation_keys').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute()).toEqual([]);
      expect(await db.selectFrom('secured_values').selectAll().where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute()).toEqual([]);

      // The id can be used again: a new conversation key, nothing of the old data.
      await call('PATCH', conv, { data: { c: '3' } });
      expect((await call('GET', conv)).body.data).toEqual({ c: '3' });
      const after = await db.selectFrom('conversation_keys').select('wrapped').where('org_id', '=', org.orgId).where('conversation_id', '=', conv).executeTakeFirstOrThrow();
      expect(Buffer.from(after.wrapped).equals(Buffer.from(before.wrapped))).toBe(false);
    });

    it('a crash between destroying the key and deleting the values leaves nothing readable, and the id starts clean', async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { a: 'old' } });
      const db = server.runtime.database.db;
      // Simulate the crash: only the key row goes.
      await db.deleteFrom('conversation_keys').where('org_id', '=', org.orgId).where('conversation_id', '=', conv).execute();
      expectError(await call('GET', conv), 404);
      await call('PATCH', conv, { data: { b: 'new' } });
      expect((await call('GET', conv)).body.data).toEqual({ b: 'new' });
    });

    it('audits reads with attribute names only, and writes and shreds, never values', async () => {
      const conv = randomUUID();
      await call('PUT', conv, { data: { auditedName: 'AUDIT-MUST-NOT-SEE-THIS' } });
      await call('GET', conv);
      await call('DELETE', conv);
      const res = await server.call('GET', '/api/v2/audits?action=secureddata.*', { token: org.token });
      expect(res.status).toBe(200);
      const events = res.body.entities.filter((e: any) => e.target === conv);
      expect(events.map((e: any) => e.action).sort()).toEqual(['secureddata.read', 'secureddata.shred', 'secureddata.write']);
      const read = events.find((e: any) => e.action === 'secureddata.read');
      expect(read).toMatchObject({ outcome: 'success', details: { attributes: ['auditedName'], attributeCount: 1 } });
      expect(JSON.stringify(res.body)).not.toContain('AUDIT-MUST-NOT-SEE-THIS');
    });

    it('with type None, protects data under the platform key (never plaintext)', async () => {
      const plain = await createOrgWithToken(server, 'No CMK', ['conversation:securedData:view', 'conversation:securedData:edit']);
      const conv = randomUUID();
      const put = await call('PUT', conv, { data: { a: 'v' } }, plain.token);
      expect(put.status).toBe(200);
      expect(put.body.keyArn).toBe(server.runtime.kms.platformKeyArn);
      expect(put.body.keyConfigurationVersion).toBe(0);
      expect((await call('GET', conv, undefined, plain.token)).body.data).toEqual({ a: 'v' });
    });

    it('after a key configuration switch, writes move the conversation to the new key; data under the old key stays readable', async () => {
      const switcher = await orgWithCustomerKey(server, 'Switcher', createOrgWithToken);
      const convMerged = randomUUID();
      const convReplaced = randomUUID();
      const convUntouched = randomUUID();
      for (const conv of [convMerged, convReplaced, convUntouched]) await call('PUT', conv, { data: { a: 'under A', b: 'also A' } }, switcher.token);

      const keyB = await createCustomerKey(server, { orgIds: [switcher.orgId] });
      await configureOrgKey(server, switcher.token, keyB.aliasArn);

      const untouched = await call('GET', convUntouched, undefined, switcher.token);
      expect(untouched.body).toMatchObject({ data: { a: 'under A', b: 'also A' }, keyArn: switcher.key.keyArn, keyConfigurationVersion: 1 });

      const merged = await call('PATCH', convMerged, { data: { b: 'under B' } }, switcher.token);
      expect(merged.body).toMatchObject({ attributeNames: ['a', 'b'], keyArn: keyB.keyArn, keyConfigurationVersion: 2 });
      expect((await call('GET', convMerged, undefined, switcher.token)).body).toMatchObject({ data: { a: 'under A', b: 'under B' }, keyArn: keyB.keyArn });

      const replaced = await call('PUT', convReplaced, { data: { c: 'new' } }, switcher.token);
      expect(replaced.body).toMatchObject({ attributeNames: ['c'], keyArn: keyB.keyArn });
      expect((await call('GET', convReplaced, undefined, switcher.token)).body.data).toEqual({ c: 'new' });

      // New conversations use B; the data keys record the configuration they were made under.
      const db = server.runtime.database.db;
      const dataKeys = await db.selectFrom('org_data_keys').select(['id', 'key_id_used', 'key_arn', 'config_version']).where('org_id', '=', switcher.orgId).orderBy('created_at').execute();
      const rows = [];
      for (const { id, ...k } of dataKeys) {
        const n = await db.selectFrom('conversation_keys').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', switcher.orgId).where('data_key_id', '=', id).executeTakeFirstOrThrow();
        rows.push({ ...k, conversations: Number(n.n) });
      }
      expect(rows).toEqual([
        // The two rewritten conversations moved to B; the untouched one is still protected by A's data key.
        { key_id_used: switcher.key.aliasArn, key_arn: switcher.key.keyArn, config_version: 1, conversations: 1 },
        { key_id_used: keyB.aliasArn, key_arn: keyB.keyArn, config_version: 2, conversations: 2 },
      ]);
    });

    it('never wraps a new conversation under a data key another node shredded, even while this node still caches it', async () => {
      const shredOrg = await orgWithCustomerKey(server, 'Shredded window', createOrgWithToken);
      const first = randomUUID();
      await call('PUT', first, { data: { a: 'in the shredded window' } }, shredOrg.token);
      const db = server.runtime.database.db;
      // Another node shreds the current window (issue 6's time-window shred does exactly this).
      await db.updateTable('org_data_keys').set({ wrapped_key: null, shredded_at: Date.now() }).where('org_id', '=', shredOrg.orgId).execute();

      const second = randomUUID();
      const put = await call('PUT', second, { data: { b: 'written after the shred' } }, shredOrg.token);
      expect(put.status).toBe(200);
      expect((await call('GET', second, undefined, shredOrg.token)).body.data).toEqual({ b: 'written after the shred' });
      const gone = await call('GET', first, undefined, shredOrg.token);
      expectError(gone, 404, 'DataShredded');
      const keys = await db.selectFrom('org_data_keys').select(['shredded_at']).where('org_id', '=', shredOrg.orgId).orderBy('created_at').execute();
      expect(keys.map((k) => k.shredded_at === null)).toEqual([false, true]);
      // Writing the shredded conversation again starts it afresh.
      expect((await call('PATCH', first, { data: { c: 'fresh' } }, shredOrg.token)).body.attributeNames).toEqual(['c']);
      expect((await call('GET', first, undefined, shredOrg.token)).body.data).toEqual({ c: 'fresh' });
    });
  });
}
