import { sql, type Kysely } from 'kysely';
import type { Database, JobsTable, OrgDataKeysTable } from '../../store/schema.js';
import { inTransaction } from '../../store/transactions.js';

export type LifecycleDal = ReturnType<typeof createLifecycleDal>;

export interface KeyUsageCounts {
  keyArn: string;
  dataKeys: number;
  conversations: number;
  values: number;
  oldest: number | null;
  newest: number | null;
}

export type RewrapCandidate = Pick<OrgDataKeysTable, 'id' | 'key_arn' | 'wrapped_key' | 'context_key'>;

const ACTIVE_STATES = ['queued', 'running'] as const;

/** Queries of the key lifecycle; each takes the organization id. */
export function createLifecycleDal(db: Kysely<Database>) {
  const live = (orgId: string) =>
    db.selectFrom('org_data_keys').where('org_data_keys.org_id', '=', orgId).where('org_data_keys.shredded_at', 'is', null);

  const latestJob = (orgId: string, type: JobsTable['type'], active: 'in' | 'not in') =>
    db
      .selectFrom('jobs')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('type', '=', type)
      .where('state', active, ACTIVE_STATES)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();

  return {
    /** Live data keys, conversations and values per wrapping key ARN: counted, not estimated. */
    async usageByKeyArn(orgId: string): Promise<KeyUsageCounts[]> {
      const keys = await live(orgId)
        .select(['key_arn', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('created_at').as('oldest'), (eb) => eb.fn.max('created_at').as('newest')])
        .groupBy('key_arn')
        .execute();
      const conversations = await live(orgId)
        .innerJoin('conversation_keys as ck', (j) => j.onRef('ck.data_key_id', '=', 'org_data_keys.id').on('ck.org_id', '=', orgId))
        .select(['org_data_keys.key_arn as key_arn', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('org_data_keys.key_arn')
        .execute();
      const values = await live(orgId)
        .innerJoin('conversation_keys as ck', (j) => j.onRef('ck.data_key_id', '=', 'org_data_keys.id').on('ck.org_id', '=', orgId))
        .innerJoin('secured_values as sv', (j) => j.onRef('sv.conversation_id', '=', 'ck.conversation_id').on('sv.org_id', '=', orgId))
        .select(['org_data_keys.key_arn as key_arn', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('org_data_keys.key_arn')
        .execute();
      const count = (rows: Array<{ key_arn: string; n: number | string | bigint }>, arn: string) => Number(rows.find((r) => r.key_arn === arn)?.n ?? 0);
      return keys.map((k) => ({
        keyArn: k.key_arn,
        dataKeys: Number(k.n),
        conversations: count(conversations, k.key_arn),
        values: count(values, k.key_arn),
        oldest: k.oldest === null ? null : Number(k.oldest),
        newest: k.newest === null ? null : Number(k.newest),
      }));
    },

    /** Every key ARN a configuration of the org was ever saved with (so a retired key still shows). */
    async historicKeyArns(orgId: string): Promise<string[]> {
      const rows = await db
        .selectFrom('key_configuration_history')
        .select('key_arn')
        .distinct()
        .where('org_id', '=', orgId)
        .where('key_arn', 'is not', null)
        .execute();
      return rows.map((r) => r.key_arn!);
    },

    async countNotWrappedBy(orgId: string, keyArn: string): Promise<number> {
      const row = await live(orgId)
        .where('wrapped_key', 'is not', null)
        .where('key_arn', '!=', keyArn)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** The next live data keys (by id, after `afterId`) not wrapped by `keyArn`: keyset paging, one pass. */
    async nextNotWrappedBy(orgId: string, keyArn: string, afterId: string, limit: number): Promise<RewrapCandidate[]> {
      return live(orgId)
        .where('wrapped_key', 'is not', null)
        .where('key_arn', '!=', keyArn)
        .where('id', '>', afterId)
        .select(['id', 'key_arn', 'wrapped_key', 'context_key'])
        .orderBy('id')
        .limit(limit)
        .execute();
    },

    /** Swaps a data key's blob only if the row still holds the one we rewrapped (no lost update). */
    async swapWrappedKey(orgId: string, id: string, expected: Buffer, next: { wrappedKey: Buffer; keyArn: string; at: number }): Promise<boolean> {
      const res = await db
        .updateTable('org_data_keys')
        .set({ wrapped_key: next.wrappedKey, key_arn: next.keyArn, rewrapped_at: next.at })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('shredded_at', 'is', null)
        .where('wrapped_key', '=', expected)
        .executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },

    /** Destroys the data keys created in [from, to): their blobs are gone, so KMS can never unwrap them again. */
    async shredWindow(orgId: string, from: number, to: number, at: number): Promise<{ ids: string[]; conversations: number; values: number }> {
      return inTransaction(db, async (trx) => {
        const rows = await trx
          .selectFrom('org_data_keys')
          .select('id')
          .where('org_id', '=', orgId)
          .where('shredded_at', 'is', null)
          .where('created_at', '>=', from)
          .where('created_at', '<', to)
          .execute();
        const ids = rows.map((r) => r.id);
        if (ids.length === 0) return { ids, conversations: 0, values: 0 };
        const conv = await trx
          .selectFrom('conversation_keys')
          .where('org_id', '=', orgId)
          .where('data_key_id', 'in', ids)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        const vals = await trx
          .selectFrom('secured_values as sv')
          .innerJoin('conversation_keys as ck', (j) => j.onRef('ck.conversation_id', '=', 'sv.conversation_id').on('ck.org_id', '=', orgId))
          .where('sv.org_id', '=', orgId)
          .where('ck.data_key_id', 'in', ids)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('org_data_keys')
          .set({ wrapped_key: null, shredded_at: at })
          .where('org_id', '=', orgId)
          .where('id', 'in', ids)
          .execute();
        return { ids, conversations: Number(conv.n), values: Number(vals.n) };
      });
    },

    /**
     * Inserts the job; false when the organization already has an active job of its type (the
     * partial unique index of migration 0010: a concurrent start got there first).
     */
    async insertJob(row: JobsTable): Promise<boolean> {
      const res = await db.insertInto('jobs').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async findJob(orgId: string, id: string): Promise<JobsTable | undefined> {
      return db.selectFrom('jobs').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    },
    /** The organization's most recent job of a type that is queued or running. */
    async findActiveJob(orgId: string, type: JobsTable['type']): Promise<JobsTable | undefined> {
      return latestJob(orgId, type, 'in');
    },
    /** The organization's most recent job of a type that has ended. */
    async findLatestEndedJob(orgId: string, type: JobsTable['type']): Promise<JobsTable | undefined> {
      return latestJob(orgId, type, 'not in');
    },
    /** Active jobs nobody holds (never started, or their node died and the lease ran out). */
    async listClaimableJobs(now: number): Promise<Array<Pick<JobsTable, 'id' | 'org_id'>>> {
      return db
        .selectFrom('jobs')
        .select(['id', 'org_id'])
        .where('state', 'in', ACTIVE_STATES)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
        .orderBy('created_at')
        .limit(20)
        .execute();
    },
    /** Takes or renews the job's lease; false when another node holds a live one or the job ended. */
    async claimJob(orgId: string, id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
      const res = await db
        .updateTable('jobs')
        .set({ lease_owner: owner, lease_expires_at: now + leaseMs, state: 'running', started_at: sql<number>`coalesce(started_at, ${now})` })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('state', 'in', ACTIVE_STATES)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now), eb('lease_owner', '=', owner)]))
        .executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },
    /** Writes progress and renews the lease; returns whether a cancel was requested. */
    async heartbeat(
      orgId: string,
      id: string,
      owner: string,
      progress: Pick<JobsTable, 'done' | 'failed' | 'errors'> & Partial<Pick<JobsTable, 'total' | 'target_key_arn'>>,
      leaseUntil: number,
    ): Promise<{ held: boolean; cancelRequested: boolean }> {
      await db
        .updateTable('jobs')
        .set({ ...progress, lease_expires_at: leaseUntil })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .where('state', '=', 'running')
        .execute();
      const row = await db.selectFrom('jobs').select(['lease_owner', 'cancel_requested', 'state']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
      return { held: row?.lease_owner === owner && row.state === 'running', cancelRequested: row?.cancel_requested === 1 };
    },
    async finishJob(orgId: string, id: string, owner: string, state: 'succeeded' | 'failed' | 'cancelled', progress: Pick<JobsTable, 'done' | 'failed' | 'errors'>, at: number): Promise<void> {
      await db
        .updateTable('jobs')
        .set({ ...progress, state, finished_at: at, lease_owner: null, lease_expires_at: null })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .execute();
    },
    /** Gives the job back (progress kept) so the next start or sweep resumes it at once. */
    async releaseJob(orgId: string, id: string, owner: string, progress: Pick<JobsTable, 'done' | 'failed' | 'errors'>): Promise<void> {
      await db
        .updateTable('jobs')
        .set({ ...progress, lease_owner: null, lease_expires_at: null })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .execute();
    },
    /** Cancels a job nobody runs at once; a running one is asked to stop at its next heartbeat. */
    async requestCancel(orgId: string, id: string, now: number): Promise<void> {
      await db
        .updateTable('jobs')
        .set({ state: 'cancelled', finished_at: now })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('state', 'in', ACTIVE_STATES)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
        .execute();
      await db.updateTable('jobs').set({ cancel_requested: 1 }).where('org_id', '=', orgId).where('id', '=', id).where('state', 'in', ACTIVE_STATES).execute();
    },
  };
}
