import { columnTypes, type MigrationSet } from '../store/migrate.js';

/**
 * The proxy's tables in its own `xks.db`, under their own migration table. Names sort in the
 * order they run; never edit one that has shipped.
 */
export const xksMigrations: MigrationSet = {
  tableName: 'xks_migrations',
  migrations: {
    '0001-keys-and-credentials': (dialect) => {
      const t = columnTypes(dialect);
      return {
        async up(db) {
          await db.schema
            .createTable('xks_keys')
            .addColumn('key_id', 'text', (c) => c.primaryKey())
            // Comma-separated subset of ENCRYPT,DECRYPT; empty for a key with no usage.
            .addColumn('key_usage', 'text', (c) => c.notNull())
            .addColumn('key_status', 'text', (c) => c.notNull())
            // 'software': material sealed in `material`; 'pkcs11': the key lives in the token (CKA_ID = key id).
            .addColumn('backend', 'text', (c) => c.notNull())
            .addColumn('material', t.binary)
            .addColumn('created_at', t.bigint, (c) => c.notNull())
            .addColumn('updated_at', t.bigint, (c) => c.notNull())
            .execute();
          await db.schema
            .createTable('xks_credentials')
            .addColumn('access_key_id', 'text', (c) => c.primaryKey())
            .addColumn('uri_path', 'text', (c) => c.notNull())
            // The secret sealed under the root key, label = access key id.
            .addColumn('secret', t.binary, (c) => c.notNull())
            .addColumn('created_at', t.bigint, (c) => c.notNull())
            .execute();
          await db.schema.createIndex('xks_credentials_uri_path_idx').on('xks_credentials').column('uri_path').execute();
        },
      };
    },
  },
};
