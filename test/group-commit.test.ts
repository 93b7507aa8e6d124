import { randomUUID } from 'node:crypto';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGroupCommitter } from '../src/store/group-commit.js';
import { sqliteTarget } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

interface T {
  notes: { id: string; body: string };
}

describe('group commit on SQLite', () => {
  let handle: Awaited<ReturnType<typeof sqliteTarget.open<T>>>;
  beforeAll(async () => {
    handle = await sqliteTarget.open<T>();
    await handle.db.schema.createTable('notes').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('body', 'text', (c) => c.notNull()).execute();
  });
  afterAll(async () => handle?.close());

  it('runs concurrent writes in shared transactions; one that fails is undone alone and the others commit', async () => {
    const committer = createGroupCommitter(handle.db);
    const ids = Array.from({ length: 12 }, () => randomUUID());
    const results = await Promise.allSettled(
      ids.map((id, i) =>
        committer.run(async (trx) => {
          await trx.insertInto('notes').values({ id, body: `note ${i}` }).execute();
          if (i === 5) {
            // Wrote, then failed: as a request whose check fails after its writes.
            await trx.insertInto('notes').values({ id: `${id}-second`, body: 'also undone' }).execute();
            throw new Error('request 5 failed');
          }
          if (i === 8) await trx.insertInto('notes').values({ id: ids[0]!, body: 'duplicate key' }).execute(); // a failing statement
          return i;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(ids.map((_, i) => (i === 5 || i === 8 ? 'rejected' : 'fulfilled')));
    expect((results[5] as PromiseRejectedResult).reason.message).toBe('request 5 failed');
    const stored = await handle.db.selectFrom('notes').select('id').where('id', 'in', [...ids, `${ids[5]}-second`]).execute();
    expect(new Set(stored.map((r) => r.id))).toEqual(new Set(ids.filter((_, i) => i !== 5 && i !== 8)));
    // They shared transactions: fewer commits than requests.
    expect(committer.stats()).toMatchObject({ requests: 12 });
    expect(committer.stats().batches).toBeLessThan(12);
  });

  it('requests queued in separate turns of the event loop share one transaction (as HTTP requests arrive)', async () => {
    const sizes: number[] = [];
    const committer = createGroupCommitter(handle.db, { onBatch: (n) => sizes.push(n) });
    // Each request reaches the committer from its own callback, as requests read from different sockets do.
    const ids = Array.from({ length: 6 }, () => randomUUID());
    await Promise.all(ids.map((id) => new Promise((resolve, reject) => setImmediate(() => committer.run((trx) => trx.insertInto('notes').values({ id, body: 'turn' }).execute()).then(resolve, reject)))));
    expect(sizes).toEqual([6]);
    expect(committer.stats()).toMatchObject({ batches: 1, requests: 6, largestBatch: 6 });
  });

  it('answers each request only after the shared transaction committed', async () => {
    const committer = createGroupCommitter(handle.db);
    // Another connection to the file sees only committed rows.
    const reader = new SQLite(path.join(handle.dataDir, 'convault.db'), { readonly: true });
    try {
      const ids = Array.from({ length: 8 }, () => randomUUID());
      const seenAtAnswer = await Promise.all(
        ids.map((id) =>
          committer.run((trx) => trx.insertInto('notes').values({ id, body: 'x' }).execute()).then(() => reader.prepare('select count(*) as n from notes where id = ?').get(id) as { n: number }),
        ),
      );
      expect(seenAtAnswer.map((r) => r.n)).toEqual(ids.map(() => 1));
    } finally {
      reader.close();
    }
  });
});

describe('group commit through the API (SQLite)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => server?.close());

  it('concurrent HTTP writes share commits (convault_sqlite_group_commit_requests: fewer commits than requests)', async () => {
    const org = await createOrgWithToken(server, 'Batching org', ['conversation:securedData:view', 'conversation:securedData:edit']);
    const histogram = () => server.runtime.metrics.registry.getSingleMetric('convault_sqlite_group_commit_requests')!.get();
    const totals = async () => {
      const values = (await histogram()).values;
      const pick = (name: string) => Number(values.find((v) => (v as { metricName?: string }).metricName === name)?.value ?? 0);
      return { commits: pick('convault_sqlite_group_commit_requests_count'), requests: pick('convault_sqlite_group_commit_requests_sum') };
    };
    const before = await totals();
    const ids = Array.from({ length: 32 }, () => randomUUID());
    const answers = await Promise.all(ids.map((c) => server.call('PUT', `/api/v2/conversations/${c}/secureddata`, { token: org.token, body: { data: { v: c } } })));
    expect(answers.map((a) => a.status)).toEqual(ids.map(() => 200));
    const after = await totals();
    // Every write and its audit event went through the committer; they did not each pay a commit.
    expect(after.requests - before.requests).toBeGreaterThanOrEqual(32);
    expect(after.commits - before.commits).toBeLessThan(after.requests - before.requests);
  });

  it('a request refused inside the shared transaction (too many attributes) neither fails nor loses concurrent writes', async () => {
    const org = await createOrgWithToken(server, 'Group commit org', ['conversation:securedData:view', 'conversation:securedData:edit']);
    const path = (c: string) => `/api/v2/conversations/${c}/secureddata`;
    const full = randomUUID();
    const hundred = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`a${i}`, 'v']));
    expect((await server.call('PUT', path(full), { token: org.token, body: { data: hundred } })).status).toBe(200);
    const others = Array.from({ length: 15 }, () => randomUUID());
    const [tooMany, ...rest] = await Promise.all([
      // Merging one more attribute into 100 is refused after its writes ran, inside the transaction.
      server.call('PATCH', path(full), { token: org.token, body: { data: { extra: 'x' } } }),
      ...others.map((c, i) => server.call('PUT', path(c), { token: org.token, body: { data: { n: String(i) } } })),
    ]);
    expect(tooMany.status).toBe(413);
    expect(rest.map((r) => r.status)).toEqual(others.map(() => 200));
    for (const [i, c] of others.entries()) expect((await server.call('GET', path(c), { token: org.token })).body.data).toEqual({ n: String(i) });
    expect(Object.keys((await server.call('GET', path(full), { token: org.token })).body.data)).toHaveLength(100);
  });
});
