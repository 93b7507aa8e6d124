import type { Kysely } from 'kysely';
import type { Database, KeyConfigurationHistoryTable, KeyConfigurationsTable } from '../../store/schema.js';
import { inTransaction } from '../../store/transactions.js';

export type KeyConfigDal = ReturnType<typeof createKeyConfigDal>;

/** Every query takes the organization id: a configuration is only ever found within its org. */
export function createKeyConfigDal(db: Kysely<Database>) {
  return {
    async findByOrg(orgId: string): Promise<KeyConfigurationsTable | undefined> {
      return db.selectFrom('key_configurations').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    },
    async findById(orgId: string, id: string): Promise<KeyConfigurationsTable | undefined> {
      return db.selectFrom('key_configurations').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    },
    /** Inserts unless the org has one; returns whether it did. */
    async insert(row: KeyConfigurationsTable, executor: Kysely<Database> = db): Promise<boolean> {
      const res = await executor
        .insertInto('key_configurations')
        .values(row)
        .onConflict((oc) => oc.column('org_id').doNothing())
        .executeTakeFirst();
      return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    /** Compare-and-swap on version: returns false when someone saved in between. */
    async updateIfVersion(
      orgId: string,
      id: string,
      expectedVersion: number,
      changes: Pick<KeyConfigurationsTable, 'type' | 'url' | 'key_arn' | 'version' | 'updated_at' | 'updated_by_id' | 'updated_by_name' | 'last_error' | 'fields' | 'sealed_secrets'>,
      executor: Kysely<Database> = db,
    ): Promise<boolean> {
      const res = await executor
        .updateTable('key_configurations')
        .set(changes)
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },
    async setLastError(orgId: string, lastError: string | null): Promise<void> {
      await db.updateTable('key_configurations').set({ last_error: lastError }).where('org_id', '=', orgId).execute();
    },
    async setKeyArn(orgId: string, keyArn: string): Promise<void> {
      await db.updateTable('key_configurations').set({ key_arn: keyArn }).where('org_id', '=', orgId).execute();
    },
    async insertHistory(row: KeyConfigurationHistoryTable, executor: Kysely<Database> = db): Promise<void> {
      await executor.insertInto('key_configuration_history').values(row).execute();
    },
    async listHistory(orgId: string, configId: string): Promise<KeyConfigurationHistoryTable[]> {
      return db
        .selectFrom('key_configuration_history')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('config_id', '=', configId)
        .orderBy('version', 'desc')
        .execute();
    },
    /** Every key ARN the organization's configuration has resolved to, now or in an earlier version. */
    async listKeyArns(orgId: string): Promise<string[]> {
      const current = await db.selectFrom('key_configurations').select('key_arn').where('org_id', '=', orgId).execute();
      const earlier = await db.selectFrom('key_configuration_history').select('key_arn').distinct().where('org_id', '=', orgId).execute();
      return [...new Set([...current, ...earlier].map((r) => r.key_arn).filter((arn): arn is string => arn !== null))];
    },
    /**
     * The newest saved configuration of the org that resolved to `keyRef` (the current one first,
     * then its history): what a data key wrapped under that key needs to be opened again.
     */
    async findByKeyRef(orgId: string, keyRef: string): Promise<Pick<KeyConfigurationHistoryTable, 'config_id' | 'version' | 'type' | 'url' | 'fields' | 'sealed_secrets'> | undefined> {
      const current = await db
        .selectFrom('key_configurations')
        .select(['id as config_id', 'version', 'type', 'url', 'fields', 'sealed_secrets'])
        .where('org_id', '=', orgId)
        .where('key_arn', '=', keyRef)
        .executeTakeFirst();
      if (current) return current;
      return db
        .selectFrom('key_configuration_history')
        .select(['config_id', 'version', 'type', 'url', 'fields', 'sealed_secrets'])
        .where('org_id', '=', orgId)
        .where('key_arn', '=', keyRef)
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
    },
    transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
      return inTransaction(db, fn);
    },
  };
}
