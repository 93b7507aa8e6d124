import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/database.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { Database } from '../src/store/schema.js';
import { computeEventHash, GENESIS_HASH } from '../src/services/audit/audit-chain.js';
import { createAuditSealer, type AuditSealer } from '../src/services/audit/audit-sealer.js';
import { createAuditService, type AuditService } from '../src/services/audit/audit-service.js';
import type { AuditEntry, AuditEvent, AuditEventInput } from '../src/services/audit/types.js';
import { databaseTargets } from './support/databases.js';

const T0 = Date.UTC(2026, 0, 31, 12, 0, 0);

/** A clock that advances one second per reading, so `at` is predictable. */
function steppingClock(start = T0) {
  let now = start - 1000;
  return () => (now += 1000);
}

const event = (orgId: string, n: number, over: Partial<AuditEventInput> = {}): AuditEventInput => ({
  orgId,
  principal: 'principal-1',
  action: 'secureddata.read',
  target: `conversation-${n}`,
  outcome: 'success',
  details: { attributes: n },
  ...over,
});

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`audit service on ${target.name}`, () => {
    let handle: Awaited<ReturnType<typeof target.open<Database>>>;
    let audit: AuditService;
    let sealer: AuditSealer;
    beforeAll(async () => {
      handle = await target.open<Database>();
      await runMigrations(handle.db, handle.dialect, convaultMigrations);
      audit = createAuditService({ db: handle.db, clock: steppingClock() });
      sealer = createAuditSealer({ db: handle.db });
    });
    const seal = () => sealer.sealPending();
    /** The organization's events as sealed, oldest first. */
    const sealedEvents = async (org: string) => {
      await seal();
      return all(audit.exportEvents(org));
    };
    const withoutChain = ({ seq: _s, prevHash: _p, hash: _h, ...rest }: AuditEntry | AuditEvent) => rest;
    afterAll(async () => handle?.close());

    it('appends without chain fields; the sealer chains them: seq 1..n, each prevHash the previous hash, hashes recomputable', async () => {
      const org = randomUUID();
      const appended: AuditEntry[] = [];
      for (let n = 1; n <= 5; n++) appended.push(await audit.record(event(org, n)));
      expect(appended.map((e) => [e.seq, e.prevHash, e.hash])).toEqual(Array(5).fill([null, null, null]));
      // Listed at once, unsealed, and counted as such.
      expect((await audit.list(org)).entities.map(withoutChain)).toEqual([...appended].reverse().map(withoutChain));
      expect(await audit.unsealed(org)).toMatchObject({ count: 5, oldestAt: appended[0]!.at });
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 0, unsealed: { count: 5 } });

      const recorded = await sealedEvents(org);
      expect(recorded.map(withoutChain)).toEqual(appended.map(withoutChain));
      expect(recorded.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(recorded[0]!.prevHash).toBe(GENESIS_HASH);
      for (let i = 1; i < 5; i++) expect(recorded[i]!.prevHash).toBe(recorded[i - 1]!.hash);
      for (const e of recorded) expect(computeEventHash(e)).toBe(e.hash);
      expect(recorded[0]).toMatchObject({ orgId: org, principal: 'principal-1', action: 'secureddata.read', target: 'conversation-1', outcome: 'success', details: { attributes: 1 } });
      expect(recorded[0]!.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

      // What is read back is exactly what was sealed.
      expect((await audit.list(org)).entities).toEqual([...recorded].reverse());
      expect(await audit.verify(org)).toEqual({ ok: true, count: 5, unsealed: { count: 0, oldestAt: null, oldestAgeMs: null } });
    });

    it('stores a missing target as null and drops undefined details members, hashing what it stores', async () => {
      const org = randomUUID();
      const e = await audit.record({ orgId: org, principal: 'system:test', action: 'health.transition', outcome: 'failure', details: { from: 'ok', to: 'failed', note: undefined } });
      expect(e.target).toBeNull();
      expect(e.details).toEqual({ from: 'ok', to: 'failed' });
      await seal();
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 1 });
    });

    it('refuses invalid events before writing anything', async () => {
      const org = randomUUID();
      await expect(audit.record(event(org, 1, { action: 'Not An Action' }))).rejects.toThrow(/action must be dotted lower-case/);
      await expect(audit.record(event(org, 1, { action: 'save' }))).rejects.toThrow(/action/);
      await expect(audit.record(event(org, 1, { outcome: 'maybe' as never }))).rejects.toThrow(/outcome/);
      await expect(audit.record(event(org, 1, { principal: '' }))).rejects.toThrow(/principal/);
      await expect(audit.record(event(org, 1, { details: { when: new Date() } }))).rejects.toThrow(/toISOString/);
      await expect(audit.record(event(org, 1, { details: { blob: 'x'.repeat(9000) } }))).rejects.toThrow(/never contents/);
      expect((await audit.list(org)).entities).toEqual([]);
      await audit.record(event(org, 1));
      expect((await sealedEvents(org)).map((e) => e.seq)).toEqual([1]);
    });

    it("commits the event with the caller's transaction, or not at all", async () => {
      const org = randomUUID();
      await audit.record(event(org, 1));
      await expect(
        handle.db.transaction().execute(async (trx) => {
          await audit.record(event(org, 2, { action: 'keyconfig.save' }), trx);
          throw new Error('the change failed');
        }),
      ).rejects.toThrow('the change failed');
      await handle.db.transaction().execute((trx) => audit.record(event(org, 3, { action: 'keyconfig.save' }), trx));
      expect((await audit.list(org)).entities.map((e) => e.target)).toEqual(['conversation-3', 'conversation-1']);
      // The rolled-back append left nothing to seal: no gap.
      expect((await sealedEvents(org)).map((e) => [e.seq, e.target])).toEqual([[1, 'conversation-1'], [2, 'conversation-3']]);
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 2 });
      await audit.record(event(org, 4), handle.db);
      expect((await sealedEvents(org)).map((e) => e.seq)).toEqual([1, 2, 3]);
    });

    it('seals 50 concurrent records into one chain', async () => {
      const org = randomUUID();
      await Promise.all(Array.from({ length: 50 }, (_, i) => audit.record(event(org, i + 1))));
      const recorded = await sealedEvents(org);
      expect(recorded.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(new Set(recorded.map((e) => e.prevHash)).size).toBe(50);
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 50 });
    });

    it.skipIf(target.name !== 'postgres')('never forks the chain when two processes (separate pools) append at once', async () => {
      const second = await openDatabase<Database>({ url: handle.url, dataDir: handle.dataDir, schema: handle.schema });
      try {
        const org = randomUUID();
        const a = createAuditService({ db: handle.db });
        const b = createAuditService({ db: second.db });
        await Promise.all(
          Array.from({ length: 80 }, (_, i) =>
            i % 2 === 0
              ? a.record(event(org, i))
              : // Half of them inside a caller's transaction that does other work before it commits.
                second.db.transaction().execute(async (trx) => {
                  const e = await b.record(event(org, i, { action: 'keyconfig.save' }), trx);
                  await new Promise((r) => setTimeout(r, 2));
                  return e;
                }),
          ),
        );
        expect((await sealedEvents(org)).map((e) => e.seq)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
        expect(await a.verify(org)).toMatchObject({ ok: true, count: 80 });
        expect(await b.verify(org)).toMatchObject({ ok: true, count: 80 });
      } finally {
        await second.close();
      }
    });

    async function chainOf(n: number): Promise<{ org: string; events: AuditEvent[] }> {
      const org = randomUUID();
      for (let i = 1; i <= n; i++) await audit.record(event(org, i));
      return { org, events: await sealedEvents(org) };
    }

    it('fails verification AT a row whose details were modified in the database', async () => {
      const { org, events } = await chainOf(6);
      await handle.db.updateTable('audit_events').set({ details: '{"attributes":1000}' }).where('id', '=', events[3]!.id).execute();
      expect(await audit.verify(org)).toMatchObject({
        ok: false,
        count: 3,
        brokenAt: { id: events[3]!.id, seq: 4 },
        reason: expect.stringMatching(/modified/),
      });
    });

    it('fails verification AT a row whose action was modified in the database', async () => {
      const { org, events } = await chainOf(4);
      await handle.db.updateTable('audit_events').set({ action: 'secureddata.write' }).where('id', '=', events[1]!.id).execute();
      expect(await audit.verify(org)).toMatchObject({ ok: false, brokenAt: { id: events[1]!.id, seq: 2 } });
    });

    it('fails verification AT a row whose details no longer parse', async () => {
      const { org, events } = await chainOf(3);
      await handle.db.updateTable('audit_events').set({ details: 'not json' }).where('id', '=', events[2]!.id).execute();
      expect(await audit.verify(org)).toMatchObject({ ok: false, brokenAt: { id: events[2]!.id, seq: 3 } });
    });

    it('fails verification at the event after a deleted middle row', async () => {
      const { org, events } = await chainOf(5);
      await handle.db.deleteFrom('audit_events').where('id', '=', events[2]!.id).execute();
      expect(await audit.verify(org)).toMatchObject({
        ok: false,
        count: 2,
        brokenAt: { id: events[3]!.id, seq: 4 },
        reason: expect.stringMatching(/missing/),
      });
    });

    it('fails verification at the first of two reordered rows', async () => {
      const { org, events } = await chainOf(4);
      // Swap the seq of rows 2 and 3 (through a free value, as (org_id, seq) is unique).
      await handle.db.updateTable('audit_events').set({ seq: 1000 }).where('id', '=', events[1]!.id).execute();
      await handle.db.updateTable('audit_events').set({ seq: 2 }).where('id', '=', events[2]!.id).execute();
      await handle.db.updateTable('audit_events').set({ seq: 3 }).where('id', '=', events[1]!.id).execute();
      expect(await audit.verify(org)).toMatchObject({ ok: false, count: 1, brokenAt: { id: events[2]!.id, seq: 2 } });
    });

    it('fails verification when the newest events were deleted', async () => {
      const { org, events } = await chainOf(4);
      await handle.db.deleteFrom('audit_events').where('id', 'in', [events[2]!.id, events[3]!.id]).execute();
      expect(await audit.verify(org)).toMatchObject({ ok: false, count: 2, brokenAt: { id: null, seq: 3 }, reason: expect.stringMatching(/missing/) });
    });

    it('pages newest first with an opaque cursor, and filters by time and action', async () => {
      const org = randomUUID();
      const clocked = createAuditService({ db: handle.db, clock: steppingClock(T0) });
      const actions = ['keyconfig.test', 'keyconfig.save', 'secureddata.read', 'secureddata.write', 'rewrap.job.start'];
      for (let i = 0; i < 12; i++) await clocked.record(event(org, i, { action: actions[i % actions.length]! }));
      await seal();

      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await audit.list(org, { limit: 5, cursor });
        seen.push(...page.entities.map((e) => e.seq!));
        cursor = page.nextCursor;
        pages += 1;
        if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      // Exactly a page's worth leaves no cursor behind.
      expect((await audit.list(org, { limit: 12 })).nextCursor).toBeUndefined();

      // Events are one second apart from T0: [T0+3s, T0+6s) holds seq 4, 5, 6.
      const window = await audit.list(org, { from: new Date(T0 + 3000), to: new Date(T0 + 6000) });
      expect(window.entities.map((e) => e.seq)).toEqual([6, 5, 4]);
      expect((await audit.list(org, { action: 'keyconfig.save' })).entities.map((e) => e.seq)).toEqual([12, 7, 2]);
      expect((await audit.list(org, { action: 'keyconfig.*' })).entities.map((e) => e.seq)).toEqual([12, 11, 7, 6, 2, 1]);
      expect((await audit.list(org, { action: 'rewrap.*', limit: 1 })).entities.map((e) => e.action)).toEqual(['rewrap.job.start']);
      const filteredPage = await audit.list(org, { action: 'keyconfig.*', limit: 4 });
      expect((await audit.list(org, { action: 'keyconfig.*', cursor: filteredPage.nextCursor })).entities.map((e) => e.seq)).toEqual([2, 1]);

      await expect(audit.list(org, { limit: 201 })).rejects.toMatchObject({ status: 400, details: { field: 'limit' } });
      await expect(audit.list(org, { cursor: 'garbage!' })).rejects.toMatchObject({ status: 400, details: { field: 'cursor' } });
      await expect(audit.list(org, { action: 'DROP TABLE' })).rejects.toMatchObject({ status: 400, details: { field: 'action' } });
      await expect(audit.list(org, { from: new Date(T0 + 5000), to: new Date(T0) })).rejects.toMatchObject({ status: 400, details: { field: 'to' } });
    });

    it("keeps organizations apart: B sees none of A's events, not even with A's cursor", async () => {
      const a = await chainOf(6);
      const b = randomUUID();
      expect((await audit.list(b)).entities).toEqual([]);
      expect(await all(audit.exportEvents(b))).toEqual([]);
      expect(await audit.verify(b)).toMatchObject({ ok: true, count: 0 });
      const aPage = await audit.list(a.org, { limit: 2 });
      expect(aPage.nextCursor).toBeDefined();
      expect((await audit.list(b, { cursor: aPage.nextCursor })).entities).toEqual([]);
      await audit.record(event(b, 1));
      await seal();
      // A cursor is a position in the trail: with A's, B sees only its own events from before it (none here).
      expect((await audit.list(b, { cursor: aPage.nextCursor })).entities).toEqual([]);
      const bPage = await audit.list(b);
      expect(bPage.entities.map((e) => e.orgId)).toEqual([b]);
      // Each organization has a chain of its own, from seq 1 and the genesis hash.
      const [bFirst] = (await audit.list(b)).entities;
      expect(bFirst).toMatchObject({ seq: 1, prevHash: GENESIS_HASH });
      expect(await audit.verify(a.org)).toMatchObject({ ok: true, count: 6 });
    });

    it('exports oldest first across export batches', async () => {
      const org = randomUUID();
      await Promise.all(Array.from({ length: 520 }, (_, i) => audit.record(event(org, i))));
      const exported = await sealedEvents(org);
      expect(exported.map((e) => e.seq)).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
      expect(await audit.verify(org)).toMatchObject({ ok: true, count: 520 });
    });
  });
}
