import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { DialectName } from '../../store/database.js';
import { precompiled } from '../../store/precompiled.js';
import type { AuditEventsTable, AuditHeadsTable, AuditSealsTable, Database } from '../../store/schema.js';
import { GENESIS_HASH } from './audit-chain.js';

export type AuditDal = ReturnType<typeof createAuditDal>;
export type AuditEventRow = Selectable<AuditEventsTable>;

export type ActionFilter = { exact: string } | { prefix: string };

export interface AuditPageQuery {
  /** Only events appended before this position (the cursor). */
  beforePos?: number;
  fromMs?: number;
  toMs?: number;
  action?: ActionFilter;
  limit: number;
}

/** The chain fields the sealer gives one event. */
export interface SealedFields {
  id: string;
  seq: number;
  prevHash: string;
  hash: string;
}

const EVENT_COLUMNS = ['id', 'org_id', 'seq', 'at', 'principal', 'action', 'target', 'outcome', 'details', 'prev_hash', 'hash'] as const;
type EventColumn = (typeof EVENT_COLUMNS)[number];
// Every read and write of secured data appends one: built once (src/store/precompiled.ts).
const insertEvent = precompiled(EVENT_COLUMNS, (db: Kysely<Database>, p) => db.insertInto('audit_events').values(p));
// On SQLite the sealer fills every event with its own statement, on the thread that serves requests: built once too.
const sealEvent = precompiled(['seq', 'prevHash', 'hash', 'id', 'orgId'] as const, (db: Kysely<Database>, p) =>
  db.updateTable('audit_events').set({ seq: p.seq, prev_hash: p.prevHash, hash: p.hash }).where('id', '=', p.id).where('org_id', '=', p.orgId).where('seq', 'is', null),
);

/** The audit queries. Nothing here deletes an event; the only update is the sealer filling an event's chain fields, once. */
export function createAuditDal(db: Kysely<Database>) {
  return {
    /** The request path's only audit statement: no chain fields, no lock on anything but the new row. */
    async insertEvent(row: Insertable<AuditEventsTable>): Promise<void> {
      // A column the row leaves out is bound as null, as Kysely would have left it to its default (null).
      const values = Object.fromEntries(EVENT_COLUMNS.map((c) => [c, row[c] ?? null])) as Record<EventColumn, unknown>;
      await insertEvent.execute(db, values);
    },

    async findHead(orgId: string): Promise<AuditHeadsTable | undefined> {
      return db.selectFrom('audit_heads').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    },

    /** Newest first, in the order events were appended. */
    async listPage(orgId: string, q: AuditPageQuery): Promise<AuditEventRow[]> {
      let query = db.selectFrom('audit_events').selectAll().where('org_id', '=', orgId);
      if (q.beforePos !== undefined) query = query.where('pos', '<', q.beforePos);
      if (q.fromMs !== undefined) query = query.where('at', '>=', q.fromMs);
      if (q.toMs !== undefined) query = query.where('at', '<', q.toMs);
      const action = q.action;
      if (action && 'exact' in action) query = query.where('action', '=', action.exact);
      // substr, not LIKE: action names may hold `_`, a LIKE wildcard, and SQLite's LIKE ignores case.
      if (action && 'prefix' in action) query = query.where((eb) => eb(eb.fn('substr', ['action', eb.val(1), eb.val(action.prefix.length)]), '=', action.prefix));
      return query.orderBy('pos', 'desc').limit(q.limit).execute();
    },

    /** Oldest first, the `limit` sealed events after `afterSeq`. */
    async eventsAfter(orgId: string, afterSeq: number, limit: number): Promise<AuditEventRow[]> {
      return db
        .selectFrom('audit_events')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('seq', '>', afterSeq)
        .orderBy('seq', 'asc')
        .limit(limit)
        .execute();
    },

    /** Oldest first, the `limit` seals after `afterBatch`. */
    async sealsAfter(orgId: string, afterBatch: number, limit: number): Promise<AuditSealsTable[]> {
      return db.selectFrom('audit_seals').selectAll().where('org_id', '=', orgId).where('batch', '>', afterBatch).orderBy('batch', 'asc').limit(limit).execute();
    },

    /** How many events of the organization wait for the sealer, and when the oldest was appended. */
    async unsealedSummary(orgId: string): Promise<{ count: number; oldestAt: number | null }> {
      const row = await db
        .selectFrom('audit_events')
        .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.min('at').as('oldest')])
        .where('org_id', '=', orgId)
        .where('seq', 'is', null)
        .executeTakeFirst();
      return { count: Number(row?.count ?? 0), oldestAt: row?.oldest == null ? null : Number(row.oldest) };
    },

    // ---- the sealer (src/services/audit/audit-sealer.ts) --------------------------------------

    /** When the next event the sealer takes was appended (null: nothing waits); the partial index on unsealed events answers it. */
    async oldestUnsealedAt(): Promise<number | null> {
      const row = await db.selectFrom('audit_events').select('at').where('seq', 'is', null).orderBy('pos', 'asc').limit(1).executeTakeFirst();
      return row ? Number(row.at) : null;
    },

    /** The oldest unsealed events of every organization, in the order they were appended. */
    async unsealedEvents(limit: number): Promise<AuditEventRow[]> {
      return db.selectFrom('audit_events').selectAll().where('seq', 'is', null).orderBy('pos', 'asc').limit(limit).execute();
    },

    async headsOf(orgIds: string[]): Promise<AuditHeadsTable[]> {
      if (orgIds.length === 0) return [];
      return db.selectFrom('audit_heads').selectAll().where('org_id', 'in', orgIds).execute();
    },

    /**
     * Inside the sealing transaction: moves the organization's head from `from` to `to`
     * (compare-and-set, so a sealer that lost its lease cannot seal twice) and records the seal.
     */
    async advanceHead(trx: Kysely<Database>, from: Pick<AuditHeadsTable, 'org_id' | 'seq' | 'batch'>, to: AuditHeadsTable, seal: AuditSealsTable): Promise<boolean> {
      if (from.batch === 0) {
        const res = await trx
          .insertInto('audit_heads')
          .values(to)
          .onConflict((oc) => oc.column('org_id').doNothing())
          .executeTakeFirst();
        if (Number(res.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
      } else {
        const res = await trx
          .updateTable('audit_heads')
          .set({ seq: to.seq, last_hash: to.last_hash, batch: to.batch, seal_hash: to.seal_hash })
          .where('org_id', '=', from.org_id)
          .where('seq', '=', from.seq)
          .where('batch', '=', from.batch)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) return false;
      }
      await trx.insertInto('audit_seals').values(seal).execute();
      return true;
    },

    /**
     * Fills the chain fields of events that are still unsealed; returns how many it filled. On
     * PostgreSQL 100 events per statement (a round trip each); SQLite runs in-process, one per row.
     */
    async sealEvents(trx: Kysely<Database>, orgId: string, events: SealedFields[], dialect: DialectName = 'sqlite'): Promise<number> {
      let sealed = 0;
      if (dialect === 'postgres') {
        for (let i = 0; i < events.length; i += 100) {
          const rows = events.slice(i, i + 100).map((e) => sql`(${e.id}, ${e.seq}::bigint, ${e.prevHash}, ${e.hash})`);
          const res = await sql`update audit_events as e set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
            from (values ${sql.join(rows)}) as v(id, seq, prev_hash, hash)
            where e.id = v.id and e.org_id = ${orgId} and e.seq is null`.execute(trx);
          sealed += Number(res.numAffectedRows ?? 0);
        }
        return sealed;
      }
      for (const e of events) {
        const res = await sealEvent.execute(trx, { seq: e.seq, prevHash: e.prevHash, hash: e.hash, id: e.id, orgId });
        sealed += Number(res.numAffectedRows ?? 0);
      }
      return sealed;
    },

    // ---- leases ----------------------------------------------------------------------------

    /** Takes or renews the named lease until `now + ms`; false while another owner holds a live one. */
    async claimLease(name: string, owner: string, now: number, ms: number, executor: Kysely<Database> = db): Promise<boolean> {
      await executor.insertInto('leases').values({ name, owner: null, expires_at: 0 }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const res = await executor
        .updateTable('leases')
        .set({ owner, expires_at: now + ms })
        .where('name', '=', name)
        .where((eb) => eb.or([eb('owner', '=', owner), eb('owner', 'is', null), eb('expires_at', '<', now)]))
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },

    async releaseLease(name: string, owner: string): Promise<void> {
      await db.updateTable('leases').set({ owner: null, expires_at: 0 }).where('name', '=', name).where('owner', '=', owner).execute();
    },
  };
}

/** A head for an organization that has none yet: nothing sealed, genesis hashes. */
export function emptyHead(orgId: string): AuditHeadsTable {
  return { org_id: orgId, seq: 0, last_hash: GENESIS_HASH, batch: 0, seal_hash: GENESIS_HASH };
}

