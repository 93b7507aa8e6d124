import { afterEach, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { openDatabase } from '../src/store/database.js';
import { BoundedLru } from '../src/store/statement-cache.js';
import { databaseTargets } from './support/databases.js';

interface T {
  items: { id: number; name: string; extra?: string | null };
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`statement cache on ${target.name}`, () => {
    let close: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await close?.();
      close = undefined;
    });

    let where: { url?: string; dataDir: string; schema?: string };
    async function open(statementCacheSize?: number) {
      const base = await target.open();
      where = { url: base.url, dataDir: base.dataDir, schema: base.schema };
      // A second handle on the same database, with the cache size under test.
      const handle = await openDatabase<T>({ ...where, statementCacheSize });
      close = async () => {
        await handle.close();
        await base.close();
      };
      return handle;
    }

    async function createItems(db: Kysely<T>) {
      await db.schema.createTable('items').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text', (c) => c.notNull()).execute();
    }

    it('prepares a statement once and reuses it for every execution', async () => {
      const handle = await open();
      await createItems(handle.db);
      const before = handle.statements();
      for (let i = 0; i < 20; i++) await handle.db.insertInto('items').values({ id: i, name: `n${i}` }).execute();
      for (let i = 0; i < 20; i++) expect((await handle.db.selectFrom('items').select('name').where('id', '=', i).executeTakeFirst())?.name).toBe(`n${i}`);
      const after = handle.statements();
      expect(after.misses - before.misses).toBe(2);
      expect(after.hits - before.hits).toBe(38);
      expect(after.executed - before.executed).toBeGreaterThanOrEqual(40);
    });

    it('stays within its bound, evicting the least recently used statement', async () => {
      const handle = await open(3);
      await createItems(handle.db);
      await handle.db.insertInto('items').values({ id: 1, name: 'one' }).execute();
      // Ten different statement texts (a different number of columns each).
      for (let n = 1; n <= 10; n++) {
        const rows = await handle.db
          .selectFrom('items')
          .select((eb) => Array.from({ length: n }, (_, i) => eb.val(i).as(`c${i}`)))
          .where('id', '=', 1)
          .execute();
        expect(Object.keys(rows[0]!)).toHaveLength(n);
      }
      const stats = handle.statements();
      expect(stats.size).toBeLessThanOrEqual(3);
      expect(stats.evictions).toBeGreaterThanOrEqual(7);
      // Evicted statements are prepared again when needed and still answer correctly.
      const again = await handle.db.selectFrom('items').select((eb) => [eb.val(7).as('x')]).where('id', '=', 1).executeTakeFirst();
      expect(Number(again?.x)).toBe(7);
    });

    it('answers with the new schema after a migration changes a table a cached statement reads', async () => {
      const handle = await open();
      await createItems(handle.db);
      await handle.db.insertInto('items').values({ id: 1, name: 'one' }).execute();
      const readAll = () => handle.db.selectFrom('items').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
      expect(await readAll()).toEqual({ id: 1, name: 'one' });
      const generation = handle.statements().generation;
      await handle.db.schema.alterTable('items').addColumn('extra', 'text').execute();
      expect(handle.statements().generation).toBeGreaterThan(generation);
      await handle.db.updateTable('items').set({ extra: 'x' }).where('id', '=', 1).execute();
      expect(await readAll()).toEqual({ id: 1, name: 'one', extra: 'x' });
    });

    it('answers with the new schema when another connection migrated the table', async () => {
      const handle = await open();
      await createItems(handle.db);
      await handle.db.insertInto('items').values({ id: 1, name: 'one' }).execute();
      const readAll = () => handle.db.selectFrom('items').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
      // Warm every pooled connection's statement.
      await Promise.all(Array.from({ length: 4 }, readAll));
      const other = await openDatabase<T>(where);
      try {
        await other.db.schema.alterTable('items').addColumn('extra', 'text').execute();
        await other.db.updateTable('items').set({ extra: 'y' }).where('id', '=', 1).execute();
      } finally {
        await other.close();
      }
      // PostgreSQL may refuse a cached plan once per connection ("cached plan must not change result type");
      // the connection's statements are then dropped and the next attempt sees the new schema.
      let row: Awaited<ReturnType<typeof readAll>> | undefined;
      for (let attempt = 0; attempt < 12 && !row?.extra; attempt++) row = await readAll().catch(() => undefined);
      expect(row).toEqual({ id: 1, name: 'one', extra: 'y' });
    });
  });
}

describe('bounded LRU', () => {
  it('evicts the least recently used entry and reports it', () => {
    const evicted: string[] = [];
    const lru = new BoundedLru<string, number>(2, (k) => evicted.push(k));
    lru.set('a', 1);
    lru.set('b', 2);
    lru.get('a');
    lru.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(lru.size).toBe(2);
    expect(lru.get('a')).toBe(1);
    expect(() => new BoundedLru(0)).toThrow(RangeError);
  });
});
