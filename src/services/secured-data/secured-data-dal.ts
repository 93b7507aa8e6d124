import type { Kysely } from 'kysely';
import type { DialectName } from '../../store/database.js';
import type { GroupCommitter } from '../../store/group-commit.js';
import type { ConversationKeysTable, Database, OrgDataKeysTable, SecuredValuesTable } from '../../store/schema.js';
import { precompiled } from '../../store/precompiled.js';
import { inTransaction } from '../../store/transactions.js';

export type SecuredDataDal = ReturnType<typeof createSecuredDataDal>;

/** A conversation as one read sees it: its key row, the data key row it points to, and its values. */
export interface ConversationSnapshot {
  key: Pick<ConversationKeysTable, 'data_key_id' | 'wrapped'>;
  /** undefined when the data key row is gone (shredded by deletion). */
  dataKey: OrgDataKeysTable | undefined;
  values: Array<Pick<SecuredValuesTable, 'name' | 'envelope'>>;
}

/** The data key row's columns when joined as `d` to a conversation key. */
const DATA_KEY_COLUMNS = [
  'd.id as d_id',
  'd.key_id_used as d_key_id_used',
  'd.key_arn as d_key_arn',
  'd.config_type as d_config_type',
  'd.config_version as d_config_version',
  'd.context_key as d_context_key',
  'd.wrapped_key as d_wrapped_key',
  'd.created_at as d_created_at',
  'd.conversations as d_conversations',
  'd.rewrapped_at as d_rewrapped_at',
  'd.shredded_at as d_shredded_at',
] as const;

type JoinedDataKey = {
  d_id: string | null;
  d_key_id_used: string | null;
  d_key_arn: string | null;
  d_config_type: OrgDataKeysTable['config_type'] | null;
  d_config_version: number | null;
  d_context_key: string | null;
  d_wrapped_key: Buffer | null;
  d_created_at: number | null;
  d_conversations: number | null;
  d_rewrapped_at: number | null;
  d_shredded_at: number | null;
};

/** undefined when the join found no data key row (shredded by deletion). */
function dataKeyFromJoin(orgId: string, r: JoinedDataKey): OrgDataKeysTable | undefined {
  if (r.d_id === null) return undefined;
  return {
    id: r.d_id,
    org_id: orgId,
    key_id_used: r.d_key_id_used!,
    key_arn: r.d_key_arn!,
    config_type: r.d_config_type!,
    config_version: Number(r.d_config_version),
    context_key: r.d_context_key!,
    wrapped_key: r.d_wrapped_key === null ? null : Buffer.from(r.d_wrapped_key),
    created_at: Number(r.d_created_at),
    conversations: Number(r.d_conversations),
    rewrapped_at: r.d_rewrapped_at === null ? null : Number(r.d_rewrapped_at),
    shredded_at: r.d_shredded_at === null ? null : Number(r.d_shredded_at),
  };
}

// The request path's statements, built once (src/store/precompiled.ts).
const conversationKeyJoin = (db: Kysely<Database>, p: Record<'orgId' | 'conversationId', string>) =>
  db
    .selectFrom('conversation_keys as k')
    .leftJoin('org_data_keys as d', (j) => j.onRef('d.org_id', '=', 'k.org_id').onRef('d.id', '=', 'k.data_key_id'))
    .where('k.org_id', '=', p.orgId)
    .where('k.conversation_id', '=', p.conversationId);
const findConversationKey = precompiled(['orgId', 'conversationId'], (db: Kysely<Database>, p) =>
  conversationKeyJoin(db, p).select(['k.org_id', 'k.conversation_id', 'k.data_key_id', 'k.wrapped', 'k.created_at', ...DATA_KEY_COLUMNS]),
);
const readConversation = precompiled(['orgId', 'conversationId'], (db: Kysely<Database>, p) =>
  conversationKeyJoin(db, p)
    .leftJoin('secured_values as v', (j) => j.onRef('v.org_id', '=', 'k.org_id').onRef('v.conversation_id', '=', 'k.conversation_id'))
    .select(['k.data_key_id', 'k.wrapped', ...DATA_KEY_COLUMNS, 'v.name', 'v.envelope'])
    .orderBy('v.name'),
);
const insertConversationKey = precompiled(['org_id', 'conversation_id', 'data_key_id', 'wrapped', 'created_at'], (db: Kysely<Database>, p) =>
  db
    .insertInto('conversation_keys')
    .values(p)
    .onConflict((oc) => oc.columns(['org_id', 'conversation_id']).doNothing()),
);
const conversationKeyQuery = (db: Kysely<Database>, p: Record<'orgId' | 'conversationId', string>) =>
  db.selectFrom('conversation_keys').select('wrapped').where('org_id', '=', p.orgId).where('conversation_id', '=', p.conversationId);
const conversationKeyWrapped = precompiled(['orgId', 'conversationId'], conversationKeyQuery);
const conversationKeyForUpdate = precompiled(['orgId', 'conversationId'], (db: Kysely<Database>, p) => conversationKeyQuery(db, p).forUpdate());
const deleteConversationValues = precompiled(['orgId', 'conversationId'], (db: Kysely<Database>, p) =>
  db.deleteFrom('secured_values').where('org_id', '=', p.orgId).where('conversation_id', '=', p.conversationId),
);
const upsertValue = precompiled(['org_id', 'conversation_id', 'name', 'envelope', 'updated_at'], (db: Kysely<Database>, p) =>
  db
    .insertInto('secured_values')
    .values(p)
    .onConflict((oc) => oc.columns(['org_id', 'conversation_id', 'name']).doUpdateSet((eb) => ({ envelope: eb.ref('excluded.envelope'), updated_at: eb.ref('excluded.updated_at') }))),
);
const dataKeyLiveQuery = (db: Kysely<Database>, p: Record<'orgId' | 'dataKeyId', string>) =>
  db.selectFrom('org_data_keys').select('id').where('org_id', '=', p.orgId).where('id', '=', p.dataKeyId).where('shredded_at', 'is', null);
const dataKeyLive = precompiled(['orgId', 'dataKeyId'], dataKeyLiveQuery);
const dataKeyLiveForShare = precompiled(['orgId', 'dataKeyId'], (db: Kysely<Database>, p) => dataKeyLiveQuery(db, p).forShare());

/** Every query takes the organization id: a row is only ever found within its org. */
export function createSecuredDataDal(db: Kysely<Database>, dialect: DialectName, groupCommit?: Pick<GroupCommitter<Database>, 'run'>) {
  const dal = {
    // ---- org data keys -------------------------------------------------------------------------

    async insertDataKey(row: OrgDataKeysTable): Promise<void> {
      await db.insertInto('org_data_keys').values(row).execute();
    },

    async findDataKey(orgId: string, id: string, executor: Kysely<Database> = db): Promise<OrgDataKeysTable | undefined> {
      return executor.selectFrom('org_data_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    },

    /** The newest live data key made under exactly this configuration, if it is still inside its window. */
    async findReusableDataKey(
      orgId: string,
      q: { keyIdUsed: string; configVersion: number; configType: OrgDataKeysTable['config_type']; contextKey: string; createdAfter: number; maxConversations: number },
    ): Promise<OrgDataKeysTable | undefined> {
      return db
        .selectFrom('org_data_keys')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('key_id_used', '=', q.keyIdUsed)
        .where('config_version', '=', q.configVersion)
        .where('config_type', '=', q.configType)
        .where('context_key', '=', q.contextKey)
        .where('created_at', '>', q.createdAfter)
        .where('conversations', '<', q.maxConversations)
        .where('shredded_at', 'is', null)
        .where('wrapped_key', 'is not', null)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
    },

    // ---- conversation keys ---------------------------------------------------------------------

    /** The conversation key row and the data key row it points to, in one statement. */
    async findConversationKey(orgId: string, conversationId: string): Promise<{ key: ConversationKeysTable; dataKey: OrgDataKeysTable | undefined } | undefined> {
      const row = (await findConversationKey.execute(db, { orgId, conversationId })).rows[0];
      if (!row) return undefined;
      const key: ConversationKeysTable = { org_id: row.org_id, conversation_id: row.conversation_id, data_key_id: row.data_key_id, wrapped: Buffer.from(row.wrapped), created_at: Number(row.created_at) };
      return { key, dataKey: dataKeyFromJoin(orgId, row) };
    },

    /**
     * Inserts a new conversation key unless the conversation has one (the primary key decides a
     * race: exactly one wins). The winner also checks that its data key is still live — one
     * shredded meanwhile (by another node) answers 'dataKeyGone', and the caller rolls back — and
     * drops values a crash left behind after a shred (they belong to a destroyed key).
     */
    async insertConversationKey(trx: Kysely<Database>, row: ConversationKeysTable): Promise<'inserted' | 'exists' | 'dataKeyGone'> {
      const res = await insertConversationKey.execute(trx, row);
      if (Number(res.numAffectedRows ?? 0) === 0) return 'exists';
      if (!(await dal.dataKeyUsable(trx, row.org_id, row.data_key_id))) return 'dataKeyGone';
      await deleteConversationValues.execute(trx, { orgId: row.org_id, conversationId: row.conversation_id });
      return 'inserted';
    },

    /** Compare-and-swap of a conversation key (re-keying after a key configuration switch); the same answers as insert. */
    async replaceConversationKey(trx: Kysely<Database>, expectedWrapped: Buffer, row: ConversationKeysTable): Promise<'inserted' | 'exists' | 'dataKeyGone'> {
      const current = await dal.lockConversationKey(trx, row.org_id, row.conversation_id);
      if (!current || !current.wrapped.equals(expectedWrapped)) return 'exists';
      await trx
        .updateTable('conversation_keys')
        .set({ data_key_id: row.data_key_id, wrapped: row.wrapped, created_at: row.created_at })
        .where('org_id', '=', row.org_id)
        .where('conversation_id', '=', row.conversation_id)
        .execute();
      if (!(await dal.dataKeyUsable(trx, row.org_id, row.data_key_id))) return 'dataKeyGone';
      return 'inserted';
    },

    /** The conversation key row, locked until the transaction ends on PostgreSQL (SQLite transactions are serial). */
    async lockConversationKey(trx: Kysely<Database>, orgId: string, conversationId: string): Promise<{ wrapped: Buffer } | undefined> {
      const query = dialect === 'postgres' ? conversationKeyForUpdate : conversationKeyWrapped;
      const row = (await query.execute(trx, { orgId, conversationId })).rows[0];
      return row ? { wrapped: Buffer.from(row.wrapped) } : undefined;
    },

    /**
     * Whether the data key is live, checked in the transaction that stores a conversation key under
     * it. PostgreSQL takes a share lock: a shred (an update of the row) waits for this transaction
     * and then deletes its conversation key, and one that committed first makes this answer false —
     * while concurrent writers of one organization do not queue on the row as they would on an
     * update. SQLite transactions are serial.
     */
    async dataKeyUsable(trx: Kysely<Database>, orgId: string, dataKeyId: string): Promise<boolean> {
      const query = dialect === 'postgres' ? dataKeyLiveForShare : dataKeyLive;
      return (await query.execute(trx, { orgId, dataKeyId })).rows.length > 0;
    },

    /**
     * Reserves up to `n` more conversations on a live data key for this node, within `max`; returns
     * how many were granted (0: the key is full or shredded). Nodes reserve in blocks so that the
     * per-key bound holds across nodes without touching the row for every conversation.
     */
    async reserveConversations(orgId: string, dataKeyId: string, n: number, max: number): Promise<number> {
      const row = await db
        .updateTable('org_data_keys')
        .set((eb) => ({ conversations: eb('conversations', '+', n) }))
        .where('org_id', '=', orgId)
        .where('id', '=', dataKeyId)
        .where('shredded_at', 'is', null)
        .where('conversations', '<', max)
        .returning('conversations')
        .executeTakeFirst();
      if (!row) return 0;
      // The slots past `max` are not granted; the counter is an upper bound of what was used.
      return Math.min(n, max - (Number(row.conversations) - n));
    },

    /** Destroys the conversation key (crypto-shred). Returns whether there was one. */
    async deleteConversationKey(orgId: string, conversationId: string): Promise<boolean> {
      const res = await db.deleteFrom('conversation_keys').where('org_id', '=', orgId).where('conversation_id', '=', conversationId).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    },

    // ---- values --------------------------------------------------------------------------------

    /** Key row, data key row and every value in one statement, so a concurrent re-key never mixes generations. */
    async readConversation(orgId: string, conversationId: string): Promise<ConversationSnapshot | undefined> {
      const { rows } = await readConversation.execute(db, { orgId, conversationId });
      const first = rows[0];
      if (!first) return undefined;
      const dataKey = dataKeyFromJoin(orgId, first);
      const values = rows.filter((r) => r.name !== null).map((r) => ({ name: r.name!, envelope: Buffer.from(r.envelope!) }));
      return { key: { data_key_id: first.data_key_id, wrapped: Buffer.from(first.wrapped) }, dataKey, values };
    },

    async listValues(trx: Kysely<Database>, orgId: string, conversationId: string): Promise<Array<Pick<SecuredValuesTable, 'name' | 'envelope'>>> {
      const rows = await trx
        .selectFrom('secured_values')
        .select(['name', 'envelope'])
        .where('org_id', '=', orgId)
        .where('conversation_id', '=', conversationId)
        .execute();
      return rows.map((r) => ({ name: r.name, envelope: Buffer.from(r.envelope) }));
    },

    async upsertValues(trx: Kysely<Database>, rows: SecuredValuesTable[]): Promise<void> {
      // Bounded by the 100-attribute limit; chunked anyway to stay under parameter limits.
      // One value (the common write) through the statement built once; more in chunks.
      if (rows.length === 1) {
        await upsertValue.execute(trx, rows[0]!);
        return;
      }
      for (let i = 0; i < rows.length; i += 50) {
        await trx
          .insertInto('secured_values')
          .values(rows.slice(i, i + 50))
          .onConflict((oc) => oc.columns(['org_id', 'conversation_id', 'name']).doUpdateSet((eb) => ({ envelope: eb.ref('excluded.envelope'), updated_at: eb.ref('excluded.updated_at') })))
          .execute();
      }
    },

    async deleteValues(trx: Kysely<Database>, orgId: string, conversationId: string, names?: string[]): Promise<number> {
      if (names !== undefined && names.length === 0) return 0;
      if (names === undefined) return Number((await deleteConversationValues.execute(trx, { orgId, conversationId })).numAffectedRows ?? 0);
      let q = trx.deleteFrom('secured_values').where('org_id', '=', orgId).where('conversation_id', '=', conversationId);
      if (names !== undefined) q = q.where('name', 'in', names);
      const res = await q.executeTakeFirst();
      return Number(res.numDeletedRows);
    },

    async deleteAllValues(orgId: string, conversationId: string): Promise<number> {
      return dal.deleteValues(db, orgId, conversationId);
    },

    async listNames(trx: Kysely<Database>, orgId: string, conversationId: string): Promise<string[]> {
      const rows = await trx
        .selectFrom('secured_values')
        .select('name')
        .where('org_id', '=', orgId)
        .where('conversation_id', '=', conversationId)
        .orderBy('name')
        .execute();
      return rows.map((r) => r.name);
    },

    /** A write transaction: its own, or a savepoint in a group commit (SQLite), acknowledged after the commit either way. */
    transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
      return groupCommit ? groupCommit.run(fn) : inTransaction(db, fn);
    },
  };
  return dal;
}
