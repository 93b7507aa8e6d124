import { HEALTH_PROBED_TYPES } from '../../providers/registry.js';
import type { Kysely } from 'kysely';
import type { Database, KeyHealthTable } from '../../store/schema.js';
import type { ProtectedKey } from './probe.js';
import { inTransaction } from '../../store/transactions.js';

export type KeyHealthDal = ReturnType<typeof createKeyHealthDal>;

export type KeyHealthResult = Pick<KeyHealthTable, 'config_id' | 'status' | 'checked_at' | 'last_error' | 'deletion_date' | 'keys'>;

/**
 * Queries of key health. Those of one organization take its id; the three scheduler queries
 * (`configsWithoutRow`, `findDue`, `claim`) look across organizations on purpose: they decide
 * whose turn it is, and read or write nothing but the schedule.
 */
export function createKeyHealthDal(db: Kysely<Database>) {
  return {
    async find(orgId: string, executor: Kysely<Database> = db): Promise<KeyHealthTable | undefined> {
      return executor.selectFrom('key_health').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    },

    /** Creates the row of an organization (status unknown) unless it exists. */
    async insertIfMissing(row: Pick<KeyHealthTable, 'org_id' | 'config_id' | 'next_probe_at' | 'updated_at'>): Promise<void> {
      await db
        .insertInto('key_health')
        .values({ ...row, status: 'unknown', checked_at: null, last_error: null, deletion_date: null, keys: null, version: 0, lease_owner: null, lease_until: null })
        .onConflict((oc) => oc.column('org_id').doNothing())
        .execute();
    },

    /** Customer-key configurations that have no health row yet (scheduler). */
    async configsWithoutRow(limit: number): Promise<Array<{ org_id: string; id: string }>> {
      return db
        .selectFrom('key_configurations as kc')
        .leftJoin('key_health as kh', 'kh.org_id', 'kc.org_id')
        .select(['kc.org_id', 'kc.id'])
        .where('kc.type', 'in', HEALTH_PROBED_TYPES)
        .where('kh.org_id', 'is', null)
        .limit(limit)
        .execute();
    },

    /** Organizations with a customer key whose probe is due and not leased to a node (scheduler). */
    async findDue(now: number, limit: number): Promise<Array<{ org_id: string; next_probe_at: number }>> {
      const rows = await db
        .selectFrom('key_health as kh')
        .innerJoin('key_configurations as kc', 'kc.org_id', 'kh.org_id')
        .select(['kh.org_id', 'kh.next_probe_at'])
        .where('kc.type', 'in', HEALTH_PROBED_TYPES)
        .where('kh.next_probe_at', '<=', now)
        .where((eb) => eb.or([eb('kh.lease_until', 'is', null), eb('kh.lease_until', '<=', now)]))
        .orderBy('kh.next_probe_at')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ org_id: r.org_id, next_probe_at: Number(r.next_probe_at) }));
    },

    /**
     * Claims this period's probe of an organization: moves next_probe_at to the next period and
     * takes the lease, only if next_probe_at still holds what the caller read and no live lease
     * exists. Exactly one node wins a period; returns whether it was this one.
     */
    async claim(orgId: string, q: { expectedNextProbeAt: number; nextProbeAt: number; owner: string; leaseUntil: number; now: number }): Promise<boolean> {
      const res = await db
        .updateTable('key_health')
        .set({ next_probe_at: q.nextProbeAt, lease_owner: q.owner, lease_until: q.leaseUntil })
        .where('org_id', '=', orgId)
        .where('next_probe_at', '=', q.expectedNextProbeAt)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', q.now)]))
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },

    async release(orgId: string, owner: string): Promise<void> {
      await db.updateTable('key_health').set({ lease_owner: null, lease_until: null }).where('org_id', '=', orgId).where('lease_owner', '=', owner).execute();
    },

    /** Writes a probe's result if the row is still at `expectedVersion` (compare-and-set); returns whether it did. */
    async writeResult(orgId: string, expectedVersion: number, result: KeyHealthResult, now: number, executor: Kysely<Database> = db): Promise<boolean> {
      const res = await executor
        .updateTable('key_health')
        .set({ ...result, version: expectedVersion + 1, updated_at: now })
        .where('org_id', '=', orgId)
        .where('version', '=', expectedVersion)
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },

    /** Moves the organization's next probe (a passing Save has just checked the key: one interval from now). */
    async reschedule(orgId: string, nextProbeAt: number): Promise<void> {
      await db.updateTable('key_health').set({ next_probe_at: nextProbeAt }).where('org_id', '=', orgId).execute();
    },

    /** Key ARNs that wrap live (not shredded) data keys of the organization, with how many each. */
    async protectedKeys(orgId: string): Promise<ProtectedKey[]> {
      const rows = await db
        .selectFrom('org_data_keys')
        .select(['key_arn', (eb) => eb.fn.countAll<number>().as('n')])
        .where('org_id', '=', orgId)
        .where('shredded_at', 'is', null)
        .where('wrapped_key', 'is not', null)
        .groupBy('key_arn')
        .orderBy('key_arn')
        .execute();
      return rows.map((r) => ({ keyArn: r.key_arn, dataKeys: Number(r.n) }));
    },

    /** One live data key blob of the organization wrapped by `keyArn`. */
    async sampleDataKey(orgId: string, keyArn: string): Promise<{ wrappedKey: Buffer; contextKey: string } | undefined> {
      const row = await db
        .selectFrom('org_data_keys')
        .select(['wrapped_key', 'context_key'])
        .where('org_id', '=', orgId)
        .where('key_arn', '=', keyArn)
        .where('shredded_at', 'is', null)
        .where('wrapped_key', 'is not', null)
        .limit(1)
        .executeTakeFirst();
      return row?.wrapped_key ? { wrappedKey: Buffer.from(row.wrapped_key), contextKey: row.context_key } : undefined;
    },

    transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
      return inTransaction(db, fn);
    },
  };
}
