import { CompiledQuery, sql, type Kysely, type RawBuilder } from 'kysely';
import { inTransaction } from '../store/transactions.js';

/** Queries on the local KMS tables. No rules here: the operations decide what may change. */

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'Deleted';

export interface KeyRow {
  key_id: string;
  account_id: string;
  region: string;
  description: string;
  key_state: KeyState;
  multi_region: number;
  policy: string;
  material: Buffer | null;
  created_at: number;
  deletion_date: number | null;
  pending_window_days: number | null;
  updated_at: number;
}

export interface AliasRow {
  account_id: string;
  region: string;
  alias_name: string;
  target_key_id: string;
  created_at: number;
  updated_at: number;
}

export interface LocalKmsDatabase {
  localkms_keys: KeyRow;
  localkms_aliases: AliasRow;
  localkms_meta: { name: string; value: string };
}

export type KeyStore = ReturnType<typeof createKeyStore>;

export function createKeyStore(anyDb: Kysely<any>) {
  const db = anyDb as Kysely<LocalKmsDatabase>;

  // The reads every cryptographic request makes, compiled once: for a fixed query, building and
  // compiling it with Kysely on every call is pure overhead (for the alias read about half again its
  // run time on SQLite). Placeholders follow the dialect. (Kysely's SQLite driver still prepares the
  // statement on each run; it offers no statement cache.)
  const selectKeyById = compiledOnce(db, sql<KeyRow>`select * from localkms_keys where key_id = ${''}`);
  // The alias and its key's row in one round trip (alias names are unique per account and region).
  const selectKeyByAlias = compiledOnce(
    db,
    sql<KeyRow>`select * from localkms_keys where key_id =
      (select target_key_id from localkms_aliases where account_id = ${''} and region = ${''} and alias_name = ${''})`,
  );

  async function getMeta(name: string): Promise<string | undefined> {
    const row = await db.selectFrom('localkms_meta').select('value').where('name', '=', name).executeTakeFirst();
    return row?.value;
  }

  return {
    async insertKey(row: KeyRow): Promise<void> {
      await db.insertInto('localkms_keys').values(row).execute();
    },

    async findKey(keyId: string): Promise<KeyRow | undefined> {
      const row = (await selectKeyById([keyId])).rows[0];
      return row && normalizeKey(row);
    },

    /** The row of the key an alias targets; undefined when there is no such alias (or, never in practice, no such key). */
    async findKeyByAlias(accountId: string, region: string, aliasName: string): Promise<KeyRow | undefined> {
      const row = (await selectKeyByAlias([accountId, region, aliasName])).rows[0];
      return row && normalizeKey(row);
    },

    /** Live keys (not Deleted) of one account and region, ordered by key id, after `afterKeyId`. */
    async listKeys(accountId: string, region: string, afterKeyId: string | undefined, limit: number): Promise<KeyRow[]> {
      let q = db
        .selectFrom('localkms_keys')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('region', '=', region)
        .where('key_state', '!=', 'Deleted');
      if (afterKeyId !== undefined) q = q.where('key_id', '>', afterKeyId);
      return (await q.orderBy('key_id').limit(limit).execute()).map(normalizeKey);
    },

    /**
     * Changes the state only if it is still one of `from` — a compare-and-set, so two nodes racing
     * on the same key cannot both win. Returns whether it changed.
     */
    async transitionKey(
      keyId: string,
      from: KeyState[],
      to: { key_state: KeyState; deletion_date: number | null; pending_window_days: number | null; updated_at: number },
    ): Promise<boolean> {
      const r = await db.updateTable('localkms_keys').set(to).where('key_id', '=', keyId).where('key_state', 'in', from).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async updatePolicy(keyId: string, policy: string, now: number): Promise<void> {
      await db.updateTable('localkms_keys').set({ policy, updated_at: now }).where('key_id', '=', keyId).execute();
    },

    /** Keys of an account and region whose deletion window has passed. */
    async findExpiredKeyIds(accountId: string, region: string, now: number): Promise<string[]> {
      const rows = await db
        .selectFrom('localkms_keys')
        .select('key_id')
        .where('account_id', '=', accountId)
        .where('region', '=', region)
        .where('key_state', '=', 'PendingDeletion')
        .where('deletion_date', '<=', now)
        .execute();
      return rows.map((r) => r.key_id);
    },

    /** Deletes a key whose window has passed: material erased, aliases dropped, a tombstone left. */
    async purgeKey(keyId: string, now: number): Promise<void> {
      await inTransaction(db, async (trx) => {
        const r = await trx
          .updateTable('localkms_keys')
          .set({ key_state: 'Deleted', material: null, policy: '{}', updated_at: now })
          .where('key_id', '=', keyId)
          .where('key_state', '=', 'PendingDeletion')
          .where('deletion_date', '<=', now)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) > 0) await trx.deleteFrom('localkms_aliases').where('target_key_id', '=', keyId).execute();
      });
    },

    /** Returns false when the alias already exists. */
    async insertAlias(row: AliasRow): Promise<boolean> {
      const r = await db
        .insertInto('localkms_aliases')
        .values(row)
        .onConflict((oc) => oc.columns(['account_id', 'region', 'alias_name']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
    },

    async findAlias(accountId: string, region: string, aliasName: string): Promise<AliasRow | undefined> {
      const row = await db
        .selectFrom('localkms_aliases')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('region', '=', region)
        .where('alias_name', '=', aliasName)
        .executeTakeFirst();
      return row && normalizeAlias(row);
    },

    async retargetAlias(accountId: string, region: string, aliasName: string, targetKeyId: string, now: number): Promise<void> {
      await db
        .updateTable('localkms_aliases')
        .set({ target_key_id: targetKeyId, updated_at: now })
        .where('account_id', '=', accountId)
        .where('region', '=', region)
        .where('alias_name', '=', aliasName)
        .execute();
    },

    async deleteAlias(accountId: string, region: string, aliasName: string): Promise<void> {
      await db
        .deleteFrom('localkms_aliases')
        .where('account_id', '=', accountId)
        .where('region', '=', region)
        .where('alias_name', '=', aliasName)
        .execute();
    },

    async listAliases(
      accountId: string,
      region: string,
      opts: { targetKeyId?: string; afterAliasName?: string; limit: number },
    ): Promise<AliasRow[]> {
      let q = db.selectFrom('localkms_aliases').selectAll().where('account_id', '=', accountId).where('region', '=', region);
      if (opts.targetKeyId !== undefined) q = q.where('target_key_id', '=', opts.targetKeyId);
      if (opts.afterAliasName !== undefined) q = q.where('alias_name', '>', opts.afterAliasName);
      return (await q.orderBy('alias_name').limit(opts.limit).execute()).map(normalizeAlias);
    },

    getMeta,

    /** Inserts unless present (another node may have been first); returns the value that is stored. */
    async putMetaIfAbsent(name: string, value: string): Promise<string> {
      await db
        .insertInto('localkms_meta')
        .values({ name, value })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      return (await getMeta(name))!;
    },
  };
}

/** A query whose SQL is fixed, compiled for the database's dialect once and run with fresh parameters (in the order they appear). */
function compiledOnce<R>(db: Kysely<any>, query: RawBuilder<R>): (parameters: unknown[]) => Promise<{ rows: R[] }> {
  const text = query.compile(db).sql;
  return (parameters) => db.executeQuery<R>(CompiledQuery.raw(text, parameters));
}

// SQLite hands back numbers as they were stored; PostgreSQL int8 is parsed to Number by the store's
// type parser, and int4 is already a number. Only blobs need care: both drivers return Buffers.
function normalizeKey(row: KeyRow): KeyRow {
  return {
    ...row,
    multi_region: Number(row.multi_region),
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
    deletion_date: row.deletion_date === null ? null : Number(row.deletion_date),
    pending_window_days: row.pending_window_days === null ? null : Number(row.pending_window_days),
  };
}

function normalizeAlias(row: AliasRow): AliasRow {
  return { ...row, created_at: Number(row.created_at), updated_at: Number(row.updated_at) };
}
