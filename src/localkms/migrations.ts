import { columnTypes, type MigrationSet } from '../store/migrate.js';

/**
 * The local KMS's own tables, prefixed `localkms_` and migrated under their own migration table, so
 * they live side by side with convault's tables (embedded) or alone in `localkms.db` (`kms serve`).
 * Names sort in the order they run; never edit one that has shipped.
 */
export const localKmsMigrations: MigrationSet = {
  tableName: 'localkms_migrations',
  migrations: {
    '0001-keys-and-aliases': (dialect) => {
      const t = columnTypes(dialect);
      return {
        async up(db) {
          await db.schema
            .createTable('localkms_keys')
            .addColumn('key_id', 'text', (c) => c.primaryKey())
            .addColumn('account_id', 'text', (c) => c.notNull())
            .addColumn('region', 'text', (c) => c.notNull())
            .addColumn('description', 'text', (c) => c.notNull())
            // Enabled | Disabled | PendingDeletion | Deleted (a tombstone: material erased, row kept
            // so blobs of a deleted key report NotFound rather than garbage).
            .addColumn('key_state', 'text', (c) => c.notNull())
            .addColumn('multi_region', 'integer', (c) => c.notNull())
            .addColumn('policy', 'text', (c) => c.notNull())
            // Key material sealed under the root key; null once the key is deleted.
            .addColumn('material', t.binary)
            .addColumn('created_at', t.bigint, (c) => c.notNull())
            .addColumn('deletion_date', t.bigint)
            .addColumn('pending_window_days', 'integer')
            .addColumn('updated_at', t.bigint, (c) => c.notNull())
            .execute();
          await db.schema.createIndex('localkms_keys_account_region_idx').on('localkms_keys').columns(['account_id', 'region', 'key_id']).execute();
          await db.schema
            .createTable('localkms_aliases')
            .addColumn('account_id', 'text', (c) => c.notNull())
            .addColumn('region', 'text', (c) => c.notNull())
            .addColumn('alias_name', 'text', (c) => c.notNull())
            .addColumn('target_key_id', 'text', (c) => c.notNull())
            .addColumn('created_at', t.bigint, (c) => c.notNull())
            .addColumn('updated_at', t.bigint, (c) => c.notNull())
            .addPrimaryKeyConstraint('localkms_aliases_pk', ['account_id', 'region', 'alias_name'])
            .execute();
          await db.schema.createIndex('localkms_aliases_target_idx').on('localkms_aliases').column('target_key_id').execute();
          await db.schema
            .createTable('localkms_meta')
            .addColumn('name', 'text', (c) => c.primaryKey())
            .addColumn('value', 'text', (c) => c.notNull())
            .execute();
        },
      };
    },
    // Access keys the local KMS issued (`convault kms credentials`): the secret is sealed under the
    // root key with the access key id as AAD, so reading the database does not yield a signing key.
    '0002-credentials': (dialect) => {
      const t = columnTypes(dialect);
      return {
        async up(db) {
          await db.schema
            .createTable('localkms_credentials')
            .addColumn('access_key_id', 'text', (c) => c.primaryKey())
            .addColumn('account_id', 'text', (c) => c.notNull().unique())
            .addColumn('secret_sealed', t.binary, (c) => c.notNull())
            .addColumn('created_at', t.bigint, (c) => c.notNull())
            .execute();
        },
      };
    },
  },
};
