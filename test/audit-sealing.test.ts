import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, sealEvent } from '../src/services/audit/audit-chain.js';
import { createAuditDal } from '../src/services/audit/audit-dal.js';
import { createAuditSealer, SEALER_LEASE } from '../src/services/audit/audit-sealer.js';
import { createAuditService } from '../src/services/audit/audit-service.js';
import { canonicalJson } from '../src/services/audit/canonical-json.js';
import type { AuditEvent, AuditEventInput } from '../src/services/audit/types.js';
import { openDatabase, type DatabaseHandle } from '../src/store/database.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { Database } from '../src/store/schema.js';
import { databaseTargets } from './support/databases.js';

const event = (orgId: string, n: number): AuditEventInput => ({
  orgId,
  principal: 'principal-1',
  action: 'secureddata.write',
  target: `conversation-${n}`,
  outcome: 'success',
  details: { n },
});

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`audit sealing on ${target.name}`, () => {
    let handle: Awaited<ReturnType<typeof target.open<Database>>>;
    const others: DatabaseHandle<Database>[] = [];
    /** Another node: its own connection (pool) to the same database. */
    async function secondNode(): Promise<DatabaseHandle<Database>> {
      const other = await openDatabase<Database>({ url: handle.url, dataDir: handle.dataDir, schema: handle.schema });
      others.push(other);
      return other;
    }
    beforeAll(async () => {
      handle = await target.open<Database>();
      await runMigrations(handle.db, handle.dialect, convaultMigrations);
    });
    afterAll(async () => {
      for (const o of others) await o.close();
      await handle?.close();
    });

    it('a listing filtered by action walks its own index in the order it pages (migration 0012), which sealing never rewrites', async () => {
      if (handle.dialect === 'sqlite') {
        // The statement audit-dal.ts listPage sends for ?action=…&cursor=…
        const plan = await sql<{ detail: string }>`explain query plan select * from audit_events where org_id = ${'o'} and pos < ${1} and action = ${'a'} order by pos desc limit ${2}`.execute(handle.db);
        expect(plan.rows.map((r) => r.detail).join('\n')).toMatch(/USING INDEX audit_events_org_action_idx \(org_id=\? AND action=\? AND pos<\?\)/);
        expect(plan.rows.map((r) => r.detail).join('\n')).not.toMatch(/TEMP B-TREE/);
      } else {
        const { rows } = await sql<{ indexdef: string }>`select indexdef from pg_indexes where indexname = 'audit_events_org_action_idx' and schemaname = current_schema()`.execute(handle.db);
        expect(rows[0]?.indexdef).toMatch(/\(org_id, action, pos\)/);
      }
    });

    it('two nodes appending and sealing at once produce one gap-free order that verifies', async () => {
      const node2 = await secondNode();
      const org = randomUUID();
      const audits = [createAuditService({ db: handle.db }), createAuditService({ db: node2.db })];
      const sealers = [
        createAuditSealer({ db: handle.db, dialect: handle.dialect, settings: { intervalMs: 10, batchSize: 25 } }),
        createAuditSealer({ db: node2.db, dialect: handle.dialect, settings: { intervalMs: 10, batchSize: 25 } }),
      ];
      sealers.forEach((s) => s.start());
      try {
        const appended = await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            await sleep(i % 20);
            return audits[i % 2]!.record(event(org, i));
          }),
        );
        for (let i = 0; i < 100 && (await audits[0]!.unsealed(org)).count > 0; i++) await sleep(20);
      } finally {
        await Promise.all(sealers.map((s) => s.stop()));
      }
      const sealed = await all(audits[1]!.exportEvents(org));
      expect(sealed.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(new Set(sealed.map((e) => e.id)).size).toBe(200);
      expect(await audits[0]!.verify(org)).toMatchObject({ ok: true, count: 200, unsealed: { count: 0 } });
      // Several batches, each chained to the one before.
      const seals = await createAuditDal(handle.db).sealsAfter(org, 0, 1000);
      expect(seals.length).toBeGreaterThan(1);
      for (let i = 1; i < seals.length; i++) {
        expect(seals[i]!.prev_seal_hash).toBe(seals[i - 1]!.seal_hash);
        expect(Number(seals[i]!.first_seq)).toBe(Number(seals[i - 1]!.last_seq) + 1);
      }
    });

    // On SQLite a second connection holding a write transaction would block this process's
    // synchronous driver outright; the two-node test above interleaves appends and passes there.
    it.skipIf(target.name !== 'postgres')('events appended while a pass runs are sealed by the next one', async () => {
      const node2 = await secondNode();
      const org = randomUUID();
      const audit = createAuditService({ db: handle.db });
      const sealer = createAuditSealer({ db: handle.db, dialect: handle.dialect });
      for (let i = 1; i <= 5; i++) await audit.record(event(org, i));
      // Node 2 appends event 6 in a transaction that commits only while the pass is under way.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const late = node2.db.transaction().execute(async (trx) => {
        await createAuditService({ db: node2.db }).record(event(org, 6), trx);
        await held;
      });
      await sleep(50);
      const pass = sealer.sealPending();
      await sleep(100);
      release();
      await late;
      await pass;
      const afterFirst = await all(audit.exportEvents(org));
      expect(afterFirst.map((e) => e.target)).toEqual(['conversation-1', 'conversation-2', 'conversation-3', 'conversation-4', 'conversation-5']);
      expect(await audit.unsealed(org)).toMatchObject({ count: 1 });
      await sealer.sealPending();
      const sealed = await all(audit.exportEvents(org));
      expect(sealed.map((e) => [e.seq, e.target])).toEqual([...afterFirst.map((e) => [e.seq, e.target]), [6, 'conversation-6']]);
      const seals = await createAuditDal(handle.db).sealsAfter(org, 0, 10);
      expect(seals.map((s) => [Number(s.batch), Number(s.first_seq), Number(s.last_seq)])).toEqual([[1, 1, 5], [2, 6, 6]]);
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 6 });
    });

    it('a dead holder of the lease keeps nothing unsealed for good: another node seals once the lease runs out', async () => {
      const org = randomUUID();
      const audit = createAuditService({ db: handle.db });
      for (let i = 1; i <= 3; i++) await audit.record(event(org, i));
      const dal = createAuditDal(handle.db);
      // A node took the lease and died (it never renews or releases it).
      await sql`update leases set owner = null, expires_at = 0`.execute(handle.db).catch(() => undefined);
      expect(await dal.claimLease(SEALER_LEASE, 'dead-node', Date.now(), 600)).toBe(true);
      const survivor = createAuditSealer({ db: handle.db, settings: { leaseMs: 600 } });
      expect(await survivor.sealPending()).toBe(0);
      expect(await audit.unsealed(org)).toMatchObject({ count: 3 });
      await sleep(700);
      expect(await survivor.sealPending()).toBeGreaterThanOrEqual(3);
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 3, unsealed: { count: 0 } });
      await survivor.stop();
    });

    it.skipIf(target.name !== 'postgres')('a node killed in the middle of a sealing transaction: its writes roll back, another node seals everything', async () => {
      const org = randomUUID();
      const audit = createAuditService({ db: handle.db });
      for (let i = 1; i <= 4; i++) await audit.record(event(org, i));
      await sql`update leases set owner = null, expires_at = 0`.execute(handle.db);
      // The dying node, on a connection of its own: it takes the lease, starts sealing, and its backend dies mid-transaction.
      const dying = new pg.Client({ connectionString: handle.url, options: `-c search_path=${handle.schema}` });
      dying.on('error', () => undefined);
      await dying.connect();
      expect(await createAuditDal(handle.db).claimLease(SEALER_LEASE, 'dying-node', Date.now(), 600)).toBe(true);
      await dying.query('begin');
      await dying.query(`update leases set expires_at = $1 where name = $2 and owner = 'dying-node'`, [Date.now() + 600, SEALER_LEASE]);
      const first = await dying.query(`select id from audit_events where org_id = $1 and seq is null order by pos limit 1`, [org]);
      await dying.query(`update audit_events set seq = 1, prev_hash = $1, hash = $2 where id = $3`, [GENESIS_HASH, 'f'.repeat(64), first.rows[0].id]);
      await expect(dying.query('select pg_terminate_backend(pg_backend_pid())')).rejects.toThrow();
      expect(await audit.unsealed(org)).toMatchObject({ count: 4 });

      const survivor = createAuditSealer({ db: handle.db, settings: { leaseMs: 600 } });
      expect(await survivor.sealPending()).toBe(0); // the dead node's lease is still running
      for (let i = 0; i < 40 && (await audit.unsealed(org)).count > 0; i++) {
        await sleep(50);
        await survivor.sealPending();
      }
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 4, unsealed: { count: 0 } });
      await survivor.stop();
    });

    describe('verification of sealed events and seals', () => {
      const audit = () => createAuditService({ db: handle.db });
      async function sealedTrail(n: number) {
        const org = randomUUID();
        const sealer = createAuditSealer({ db: handle.db, dialect: handle.dialect, settings: { batchSize: 3 } });
        for (let i = 1; i <= n; i++) await audit().record(event(org, i));
        await sealer.sealPending();
        await sealer.stop();
        return { org, events: await all(audit().exportEvents(org)) };
      }

      it('names a modified sealed event', async () => {
        const { org, events } = await sealedTrail(7);
        await handle.db.updateTable('audit_events').set({ target: 'somewhere-else' }).where('id', '=', events[4]!.id).execute();
        expect(await audit().verify(org)).toMatchObject({ ok: false, count: 4, brokenAt: { id: events[4]!.id, seq: 5 }, reason: expect.stringMatching(/modified/) });
      });

      it('names the event after a deleted one', async () => {
        const { org, events } = await sealedTrail(7);
        await handle.db.deleteFrom('audit_events').where('id', '=', events[2]!.id).execute();
        expect(await audit().verify(org)).toMatchObject({ ok: false, count: 2, brokenAt: { id: events[3]!.id, seq: 4 }, reason: expect.stringMatching(/missing/) });
      });

      it('names the first of two swapped events', async () => {
        const { org, events } = await sealedTrail(7);
        await handle.db.updateTable('audit_events').set({ seq: 1000 }).where('id', '=', events[4]!.id).execute();
        await handle.db.updateTable('audit_events').set({ seq: 5 }).where('id', '=', events[5]!.id).execute();
        await handle.db.updateTable('audit_events').set({ seq: 6 }).where('id', '=', events[4]!.id).execute();
        expect(await audit().verify(org)).toMatchObject({ ok: false, count: 4, brokenAt: { id: events[5]!.id, seq: 5 } });
      });

      it('names the first event of a batch re-hashed by someone rewriting the events', async () => {
        const { org, events } = await sealedTrail(6);
        // Forge event 5 and re-hash 5 and 6 consistently: the event chain alone would verify.
        let prev = events[3]!.hash;
        for (const e of events.slice(4)) {
          const forged = sealEvent({ ...e, details: { n: -1 }, prevHash: prev });
          await handle.db.updateTable('audit_events').set({ details: canonicalJson(forged.details), prev_hash: forged.prevHash, hash: forged.hash }).where('id', '=', e.id).execute();
          prev = forged.hash;
        }
        expect(await audit().verify(org)).toMatchObject({ ok: false, count: 5, brokenAt: { id: events[5]!.id, seq: 6 }, reason: expect.stringMatching(/seal 2/) });
      });

      it('fails on a modified seal and on seals cut off the end', async () => {
        const { org } = await sealedTrail(7);
        await handle.db.updateTable('audit_seals').set({ sealed_at: 1 }).where('org_id', '=', org).where('batch', '=', 2).execute();
        expect(await audit().verify(org)).toMatchObject({ ok: false, count: 3, brokenAt: { seq: 4 }, reason: expect.stringMatching(/seal 2 .*modified/) });
        const cut = await sealedTrail(7);
        await handle.db.deleteFrom('audit_seals').where('org_id', '=', cut.org).where('batch', '=', 3).execute();
        expect(await audit().verify(cut.org)).toMatchObject({ ok: false, count: 6, brokenAt: { seq: 7 }, reason: expect.stringMatching(/seals 3\.\.3 are missing/) });
      });

      it('counts events still waiting for the sealer instead of failing on them', async () => {
        const { org } = await sealedTrail(3);
        await audit().record(event(org, 4));
        const result = await audit().verify(org);
        expect(result).toMatchObject({ ok: true, count: 3, unsealed: { count: 1, oldestAgeMs: expect.any(Number) } });
      });
    });
  });
}

describe('a database written by the previous format (per-event chain, audit_heads locked per append)', () => {
  for (const target of databaseTargets) {
    it.skipIf(!target.available)(`opens on ${target.name} with old chains verifying and new events sealed after them`, async () => {
      const handle = await target.open<Database>();
      try {
        // The schema as the previous build left it: migrations up to 0006.
        const previous = Object.fromEntries(Object.entries(convaultMigrations.migrations).filter(([name]) => name < '0007'));
        await runMigrations(handle.db, handle.dialect, { ...convaultMigrations, migrations: previous });
        // Its writes: each event chained to the previous one and the head moved, in one transaction.
        const org = randomUUID();
        const old: AuditEvent[] = [];
        for (let seq = 1; seq <= 4; seq++) {
          const e = sealEvent({
            id: randomUUID(),
            orgId: org,
            seq,
            at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
            principal: 'p',
            action: 'keyconfig.save',
            target: null,
            outcome: 'success',
            details: { version: seq },
            prevHash: old[seq - 2]?.hash ?? GENESIS_HASH,
          });
          old.push(e);
          await sql`insert into audit_events (id, org_id, seq, at, principal, action, target, outcome, details, prev_hash, hash)
                    values (${e.id}, ${org}, ${seq}, ${Date.parse(e.at)}, 'p', 'keyconfig.save', null, 'success', ${canonicalJson(e.details)}, ${e.prevHash}, ${e.hash})`.execute(handle.db);
        }
        await sql`insert into audit_heads (org_id, seq, last_hash) values (${org}, 4, ${old[3]!.hash})`.execute(handle.db);

        expect(await runMigrations(handle.db, handle.dialect, convaultMigrations)).toEqual(['0007-audit-sealing', '0008-token-lifecycle', '0009-operations', '0010-rewrap-single-active', '0011-local-key-manager', '0012-audit-action-by-pos']);
        const audit = createAuditService({ db: handle.db });
        expect(await audit.verify(org)).toMatchObject({ ok: true, count: 4, unsealed: { count: 0 } });
        expect(await all(audit.exportEvents(org))).toEqual(old);

        for (let i = 5; i <= 7; i++) await audit.record(event(org, i));
        await createAuditSealer({ db: handle.db }).sealPending();
        const trail = await all(audit.exportEvents(org));
        expect(trail.slice(0, 4)).toEqual(old);
        expect(trail.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(trail[4]!.prevHash).toBe(old[3]!.hash);
        expect(await audit.verify(org)).toMatchObject({ ok: true, count: 7 });

        // The old part is still protected: tampering an old event is named.
        await handle.db.updateTable('audit_events').set({ details: '{"version":99}' }).where('id', '=', old[1]!.id).execute();
        expect(await audit.verify(org)).toMatchObject({ ok: false, count: 1, brokenAt: { id: old[1]!.id, seq: 2 } });
      } finally {
        await handle.close();
      }
    });
  }
});
