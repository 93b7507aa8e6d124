import type { Kysely } from 'kysely';
import type { AuditEventsTable, AuditHeadsTable, Database } from '../../store/schema.js';
import { GENESIS_HASH } from './audit-chain.js';

export type AuditDal = ReturnType<typeof createAuditDal>;

export type ActionFilter = { exact: string } | { prefix: string };

export interface AuditPageQuery {
  /** Only events with a smaller seq (the cursor). */
  beforeSeq?: number;
  fromMs?: number;
  toMs?: number;
  action?: ActionFilter;
  limit: number;
}

/** The audit queries. Insert and read only: nothing here updates or deletes an event. */
export function createAuditDal(db: Kysely<Database>) {
  return {
    /**
     * Claims the next seq of the organization's chain and returns it with the hash it must chain
     * to. One statement that both creates the head on the first event and increments it after:
     * in PostgreSQL the upsert row-locks the head until the transaction ends, so a concurrent
     * append (from any process) waits and then sees the new head; in SQLite it is a write, so this
     * transaction becomes the database's single writer before it has read anything. Call it
     * inside a transaction, and finish with `setHeadHash` in the same one.
     */
    async advanceHead(orgId: string): Promise<{ seq: number; prevHash: string }> {
      const row = await db
        .insertInto('audit_heads')
        .values({ org_id: orgId, seq: 1, last_hash: GENESIS_HASH })
        .onConflict((oc) => oc.column('org_id').doUpdateSet((eb) => ({ seq: eb('audit_heads.seq', '+', 1) })))
        .returning(['seq', 'last_hash'])
        .executeTakeFirstOrThrow();
      return { seq: Number(row.seq), prevHash: row.last_hash };
    },

    async setHeadHash(orgId: string, seq: number, hash: string): Promise<void> {
      const result = await db
        .updateTable('audit_heads')
        .set({ last_hash: hash })
        .where('org_id', '=', orgId)
        .where('seq', '=', seq)
        .executeTakeFirst();
      // Cannot happen while advanceHead's lock is held; if it does, abort rather than fork the chain.
      if (Number(result.numUpdatedRows) !== 1) throw new Error(`audit chain head of ${orgId} moved during an append; the transaction was rolled back`);
    },

    async insertEvent(row: AuditEventsTable): Promise<void> {
      await db.insertInto('audit_events').values(row).execute();
    },

    async findHead(orgId: string): Promise<AuditHeadsTable | undefined> {
      return db.selectFrom('audit_heads').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    },

    /** Newest first. */
    async listPage(orgId: string, q: AuditPageQuery): Promise<AuditEventsTable[]> {
      let query = db.selectFrom('audit_events').selectAll().where('org_id', '=', orgId);
      if (q.beforeSeq !== undefined) query = query.where('seq', '<', q.beforeSeq);
      if (q.fromMs !== undefined) query = query.where('at', '>=', q.fromMs);
      if (q.toMs !== undefined) query = query.where('at', '<', q.toMs);
      const action = q.action;
      if (action && 'exact' in action) query = query.where('action', '=', action.exact);
      // substr, not LIKE: action names may hold `_`, a LIKE wildcard, and SQLite's LIKE ignores case.
      if (action && 'prefix' in action) query = query.where((eb) => eb(eb.fn('substr', ['action', eb.val(1), eb.val(action.prefix.length)]), '=', action.prefix));
      return query.orderBy('seq', 'desc').limit(q.limit).execute();
    },

    /** Oldest first, the `limit` events after `afterSeq`. */
    async eventsAfter(orgId: string, afterSeq: number, limit: number): Promise<AuditEventsTable[]> {
      return db
        .selectFrom('audit_events')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('seq', '>', afterSeq)
        .orderBy('seq', 'asc')
        .limit(limit)
        .execute();
    },
  };
}
