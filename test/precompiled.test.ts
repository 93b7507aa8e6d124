import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { precompiled } from '../src/store/precompiled.js';
import { databaseTargets } from './support/databases.js';

interface T {
  notes: { org: string; id: string; body: string; n: number };
}

const insert = precompiled(['org', 'id', 'body', 'n'], (db: Kysely<T>, p) => db.insertInto('notes').values(p));
const byOrg = precompiled(['org', 'min'], (db: Kysely<T>, p) => db.selectFrom('notes').select(['id', 'body', 'n']).where('org', '=', p.org).where('n', '>=', p.min).where('body', '!=', 'constant kept').orderBy('id'));
const bump = precompiled(['org', 'id'], (db: Kysely<T>, p) => db.updateTable('notes').set((eb) => ({ n: eb('n', '+', 1) })).where('org', '=', p.org).where('id', '=', p.id));

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`precompiled queries on ${target.name}`, () => {
    let handle: Awaited<ReturnType<typeof target.open<T>>>;
    beforeAll(async () => {
      handle = await target.open<T>();
      await handle.db.schema.createTable('notes').addColumn('org', 'text').addColumn('id', 'text').addColumn('body', 'text').addColumn('n', 'integer').execute();
    });
    afterAll(async () => handle?.close());

    it('runs one SQL text with each call its own values, the builder constants kept', async () => {
      await insert.execute(handle.db, { org: 'a', id: '1', body: 'first', n: 1 });
      await insert.execute(handle.db, { org: 'a', id: '2', body: 'constant kept', n: 5 });
      await insert.execute(handle.db, { org: 'b', id: '3', body: "it's 'quoted' -- too", n: 7 });
      expect((await byOrg.execute(handle.db, { org: 'a', min: 0 })).rows).toEqual([{ id: '1', body: 'first', n: 1 }]);
      expect((await byOrg.execute(handle.db, { org: 'b', min: 7 })).rows).toEqual([{ id: '3', body: "it's 'quoted' -- too", n: 7 }]);
      expect((await byOrg.execute(handle.db, { org: 'b', min: 8 })).rows).toEqual([]);
      // The SQL is what the builder compiles, with bound parameters only.
      expect(byOrg.sql(handle.db)).toBe(handle.db.selectFrom('notes').select(['id', 'body', 'n']).where('org', '=', 'x').where('n', '>=', 0).where('body', '!=', 'y').orderBy('id').compile().sql);
    });

    it('reports affected rows, and works inside a transaction of the same database', async () => {
      expect(Number((await bump.execute(handle.db, { org: 'a', id: '1' })).numAffectedRows)).toBe(1);
      expect(Number((await bump.execute(handle.db, { org: 'a', id: 'missing' })).numAffectedRows)).toBe(0);
      await handle.db.transaction().execute(async (trx) => {
        await bump.execute(trx, { org: 'a', id: '1' });
        // id 2 has the body the query's own constant excludes.
        expect((await byOrg.execute(trx, { org: 'a', min: 3 })).rows).toEqual([{ id: '1', body: 'first', n: 3 }]);
      });
    });

    it('refuses a query that would put a value into its SQL text or leave one unbound', async () => {
      const inlined = precompiled(['org'], (db: Kysely<T>, p) => db.selectFrom('notes').selectAll().where('org', '=', sql.lit(p.org)));
      await expect(inlined.execute(handle.db, { org: 'a' })).rejects.toThrow(/placeholder into its SQL text/);
      const unbound = precompiled(['org', 'id'], (db: Kysely<T>, p) => db.selectFrom('notes').selectAll().where('org', '=', p.org));
      await expect(unbound.execute(handle.db, { org: 'a', id: '1' })).rejects.toThrow(/does not bind id/);
    });
  });
}
