import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Properties through the real service and database: every value round-trips; stored envelopes and
 * keys moved to another attribute, conversation or organization, or altered in any bit, never open —
 * the API answers a typed DataIntegrityError and returns nothing of the data.
 */

const path = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;
const RUNS = 25;

const attributeName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,24}$/).filter((n) => n !== '__proto__');
// Any Unicode text: every code point (astral ones as surrogate pairs), no lone surrogates; size 'max'
// so lengths spread over 0-200 (the default size stays under ~20). The limits themselves are the edge cases below.
const anyValue = fc.string({ unit: 'binary', maxLength: 200, size: 'max' });
const twoDistinctValues = fc.tuple(anyValue, anyValue).filter(([a, b]) => a !== b);

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`secured data properties on ${target.name}`, () => {
    let server: TestServer;
    let a: { orgId: string; token: string };
    let b: { orgId: string; token: string };

    beforeAll(async () => {
      server = await startTestServer(target.name);
      a = await orgWithCustomerKey(server, 'Org A', createOrgWithToken);
      b = await orgWithCustomerKey(server, 'Org B', createOrgWithToken);
    });
    afterAll(async () => server?.close());

    const db = () => server.runtime.database.db;
    const put = async (token: string, conv: string, data: Record<string, string>) => {
      const res = await server.call('PUT', path(conv), { token, body: { data } });
      expect(res.status).toBe(200);
    };
    const envelopeOf = async (orgId: string, conv: string, name: string): Promise<Buffer> => {
      const row = await db()
        .selectFrom('secured_values')
        .select('envelope')
        .where('org_id', '=', orgId)
        .where('conversation_id', '=', conv)
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return Buffer.from(row.envelope);
    };
    const setEnvelope = async (orgId: string, conv: string, name: string, envelope: Buffer) => {
      await db().updateTable('secured_values').set({ envelope }).where('org_id', '=', orgId).where('conversation_id', '=', conv).where('name', '=', name).execute();
    };
    /** The GET is refused with a typed integrity error, and none of the given values leaks into the answer. */
    const expectRefused = async (token: string, conv: string, secrets: string[]) => {
      const res = await server.call('GET', path(conv), { token });
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ errorType: 'DataIntegrityError', code: 'secured.data.integrity' });
      expect(res.body.data).toBeUndefined();
      const text = JSON.stringify(res.body);
      for (const secret of secrets) if (secret.length >= 4) expect(text).not.toContain(secret);
    };

    it('any set of attributes round-trips exactly', async () => {
      await fc.assert(
        fc.asyncProperty(fc.dictionary(attributeName, anyValue, { minKeys: 1, maxKeys: 8 }), async (data) => {
          const conv = randomUUID();
          await put(a.token, conv, data);
          const res = await server.call('GET', path(conv), { token: a.token });
          expect(res.status).toBe(200);
          expect(res.body.data).toEqual(data);
        }),
        { numRuns: RUNS },
      );
    });

    it('round-trips at the limits (100 attributes, 128-character names, 32,000-character values) and refuses past them', async () => {
      const many: Record<string, string> = {};
      for (let i = 0; i < 100; i++) many[`${'n'.repeat(125)}${String(i).padStart(3, '0')}`] = `v${i}`;
      const large = { ascii: 'x'.repeat(32_000), astral: '👋'.repeat(16_000), empty: '', tiny: 'a' };
      for (const data of [many, large]) {
        const conv = randomUUID();
        await put(a.token, conv, data);
        expect((await server.call('GET', path(conv), { token: a.token })).body.data).toEqual(data);
      }
      const refused = async (data: Record<string, string>) => (await server.call('PUT', path(randomUUID()), { token: a.token, body: { data } })).status;
      expect(await refused({ ...many, one: 'too many' })).toBeGreaterThanOrEqual(400);
      expect(await refused({ ['n'.repeat(129)]: 'v' })).toBe(400);
      expect(await refused({ big: 'x'.repeat(32_001) })).toBeGreaterThanOrEqual(400);
      for (const lone of ['\uD800', 'a\uDC00b', 'x\uDBFF']) expect(await refused({ pan: lone })).toBe(400);
    });

    it('an envelope moved to another attribute of the conversation does not open', async () => {
      await fc.assert(
        fc.asyncProperty(twoDistinctValues, async ([x, y]) => {
          const conv = randomUUID();
          await put(a.token, conv, { first: x, second: y });
          await setEnvelope(a.orgId, conv, 'first', await envelopeOf(a.orgId, conv, 'second'));
          await expectRefused(a.token, conv, [x, y]);
        }),
        { numRuns: RUNS },
      );
    });

    it('an envelope moved to another conversation of the organization does not open', async () => {
      await fc.assert(
        fc.asyncProperty(twoDistinctValues, async ([x, y]) => {
          const [c1, c2] = [randomUUID(), randomUUID()];
          await put(a.token, c1, { pan: x });
          await put(a.token, c2, { pan: y });
          await setEnvelope(a.orgId, c2, 'pan', await envelopeOf(a.orgId, c1, 'pan'));
          await expectRefused(a.token, c2, [x]);
        }),
        { numRuns: RUNS },
      );
    });

    it("an envelope moved into another organization's conversation does not open", async () => {
      await fc.assert(
        fc.asyncProperty(twoDistinctValues, async ([x, y]) => {
          const conv = randomUUID(); // the same conversation id in both organizations
          await put(a.token, conv, { pan: x });
          await put(b.token, conv, { pan: y });
          await setEnvelope(b.orgId, conv, 'pan', await envelopeOf(a.orgId, conv, 'pan'));
          await expectRefused(b.token, conv, [x]);
        }),
        { numRuns: RUNS },
      );
    });

    it('a wrapped conversation key moved to another conversation does not open', async () => {
      await fc.assert(
        fc.asyncProperty(anyValue, async (x) => {
          const [c1, c2] = [randomUUID(), randomUUID()];
          await put(a.token, c1, { pan: x });
          await put(a.token, c2, { other: 'v' });
          const k1 = await db().selectFrom('conversation_keys').selectAll().where('org_id', '=', a.orgId).where('conversation_id', '=', c1).executeTakeFirstOrThrow();
          // c2 now claims c1's key (and data key), and holds c1's envelope under the same name.
          await db().updateTable('conversation_keys').set({ wrapped: k1.wrapped, data_key_id: k1.data_key_id }).where('org_id', '=', a.orgId).where('conversation_id', '=', c2).execute();
          await db().deleteFrom('secured_values').where('org_id', '=', a.orgId).where('conversation_id', '=', c2).execute();
          await db()
            .insertInto('secured_values')
            .values({ org_id: a.orgId, conversation_id: c2, name: 'pan', envelope: await envelopeOf(a.orgId, c1, 'pan'), updated_at: Date.now() })
            .execute();
          await expectRefused(a.token, c2, [x]);
        }),
        { numRuns: 10 },
      );
    });

    it('any single-bit flip, truncation or extension of a stored envelope is refused', async () => {
      const conv = randomUUID();
      const value = 'card 4111 1111 1111 1111 exp 12/29';
      await put(a.token, conv, { pan: value });
      const original = await envelopeOf(a.orgId, conv, 'pan');
      const alteration = fc.oneof(
        fc.nat({ max: original.length * 8 - 1 }).map((bit) => {
          const out = Buffer.from(original);
          out[bit >> 3]! ^= 1 << (bit & 7);
          return out;
        }),
        fc.nat({ max: original.length - 1 }).map((n) => original.subarray(0, n)),
        fc.uint8Array({ minLength: 1, maxLength: 8 }).map((extra) => Buffer.concat([original, Buffer.from(extra)])),
      );
      await fc.assert(
        fc.asyncProperty(alteration, async (altered) => {
          await setEnvelope(a.orgId, conv, 'pan', altered);
          await expectRefused(a.token, conv, [value]);
        }),
        { numRuns: 40 },
      );
      await setEnvelope(a.orgId, conv, 'pan', original);
      expect((await server.call('GET', path(conv), { token: a.token })).body.data).toEqual({ pan: value });
    });

    it('an altered wrapped conversation key or org data key blob is refused, never a crash', async () => {
      const conv = randomUUID();
      await put(a.token, conv, { pan: 'SECRET-VALUE-123' });
      const key = await db().selectFrom('conversation_keys').selectAll().where('org_id', '=', a.orgId).where('conversation_id', '=', conv).executeTakeFirstOrThrow();
      const wrapped = Buffer.from(key.wrapped);
      wrapped[30]! ^= 0x80;
      await db().updateTable('conversation_keys').set({ wrapped }).where('org_id', '=', a.orgId).where('conversation_id', '=', conv).execute();
      await expectRefused(a.token, conv, ['SECRET-VALUE-123']);
      await db().updateTable('conversation_keys').set({ wrapped: key.wrapped }).where('org_id', '=', a.orgId).where('conversation_id', '=', conv).execute();

      // The org data key blob is read only when its plaintext is not cached: drop the caches first.
      const dataKey = await db().selectFrom('org_data_keys').selectAll().where('id', '=', key.data_key_id).executeTakeFirstOrThrow();
      const blob = Buffer.from(dataKey.wrapped_key!);
      blob[blob.length - 5]! ^= 1;
      await db().updateTable('org_data_keys').set({ wrapped_key: blob }).where('id', '=', dataKey.id).execute();
      server.runtime.services.securedData.clearCaches();
      await expectRefused(a.token, conv, ['SECRET-VALUE-123']);

      await db().updateTable('org_data_keys').set({ wrapped_key: dataKey.wrapped_key }).where('id', '=', dataKey.id).execute();
      expect((await server.call('GET', path(conv), { token: a.token })).body.data).toEqual({ pan: 'SECRET-VALUE-123' });
    });
  });
}
