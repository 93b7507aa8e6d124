import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../src/store/store-faults.js';
import { inTransaction } from '../src/store/transactions.js';
import { postgresTarget } from './support/databases.js';

/**
 * The store layer on PostgreSQL (a fresh schema on the shared server; only this test's own
 * backends are terminated): a read whose connection dies is run again on a fresh one, a write in a
 * transaction is not, and deadlocks are retried.
 */
describe.skipIf(!postgresTarget.available)('store resilience on PostgreSQL', () => {
  let handle: Awaited<ReturnType<typeof postgresTarget.open>>;
  let db: Kysely<any>;
  beforeAll(async () => {
    handle = await postgresTarget.open();
    db = handle.db;
    await sql`create table pairs (id integer primary key, v integer not null)`.execute(db);
    await sql`insert into pairs values (1, 0), (2, 0)`.execute(db);
  });
  afterAll(async () => handle?.close());

  /** Terminates this test's backend that runs a statement containing `marker`, once it shows up. */
  async function terminateWhenRunning(marker: string): Promise<number> {
    const admin = new pg.Client({ connectionString: handle.url });
    await admin.connect();
    try {
      for (let i = 0; i < 100; i++) {
        const res = await admin.query(
          `select count(pg_terminate_backend(pid)) as n from pg_stat_activity where query like $1 and query not like '%pg_stat_activity%'`,
          [`%${marker}%`],
        );
        if (Number(res.rows[0].n) > 0) return Number(res.rows[0].n);
        await sleep(20);
      }
      return 0;
    } finally {
      await admin.end();
    }
  }

  it('runs a read once more on a fresh connection when its connection is terminated under it', async () => {
    const marker = `m_${randomBytes(6).toString('hex')}`;
    const read = sql<{ x: number }>`select pg_sleep(0.5), ${sql.lit(marker)} as marker, 42 as x`.execute(db);
    expect(await terminateWhenRunning(marker)).toBe(1);
    expect((await read).rows[0]!.x).toBe(42);
  });

  it('does not retry inside a transaction: 503-class StoreUnavailableError, and nothing of it is kept', async () => {
    const marker = `m_${randomBytes(6).toString('hex')}`;
    const tx = inTransaction(db, async (trx) => {
      await sql`update pairs set v = 100 where id = 1`.execute(trx);
      await sql`select pg_sleep(0.5), ${sql.lit(marker)} as marker`.execute(trx);
    });
    const outcome = tx.then(
      () => 'committed',
      (err: unknown) => err,
    );
    expect(await terminateWhenRunning(marker)).toBe(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ reason: 'connection-lost', driverCode: '57P01' });
    expect((await sql<{ v: number }>`select v from pairs where id = 1`.execute(db)).rows[0]!.v).toBe(0);
  });

  it('retries a transaction that lost a deadlock, so both writers commit', async () => {
    let attempts = 0;
    let bothLocked!: () => void;
    const firstLocks = new Promise<void>((resolve) => (bothLocked = resolve));
    let locked = 0;
    const writer = (first: number, second: number) =>
      inTransaction(db, async (trx) => {
        attempts++;
        await sql`update pairs set v = v + 1 where id = ${first}`.execute(trx);
        if (++locked === 2) bothLocked();
        await firstLocks; // each holds its first row before reaching for the other's
        await sql`update pairs set v = v + 1 where id = ${second}`.execute(trx);
      });
    await Promise.all([writer(1, 2), writer(2, 1)]);
    expect(attempts).toBe(3); // one of the two lost the deadlock once and ran again
    const rows = (await sql<{ id: number; v: number }>`select id, v from pairs order by id`.execute(db)).rows;
    expect(rows).toEqual([
      { id: 1, v: 2 },
      { id: 2, v: 2 },
    ]);
  });
});
