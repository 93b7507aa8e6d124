import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

export const keyconfig: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema
        .createTable('key_configurations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // One configuration for conversations per organization.
        .addColumn('org_id', 'text', (c) => c.notNull().unique().references('organizations.id').onDelete('cascade'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('key_arn', 'text')
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .addColumn('updated_by_id', 'text', (c) => c.notNull())
        .addColumn('updated_by_name', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('key_configuration_history')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('config_id', 'text', (c) => c.notNull().references('key_configurations.id').onDelete('cascade'))
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('key_arn', 'text')
        .addColumn('saved_at', t.bigint, (c) => c.notNull())
        .addColumn('saved_by_id', 'text', (c) => c.notNull())
        .addColumn('saved_by_name', 'text', (c) => c.notNull())
        .addColumn('test_report', 'text', (c) => c.notNull())
        .addUniqueConstraint('key_configuration_history_version_uq', ['config_id', 'version'])
        .execute();
      await db.schema.createIndex('key_configuration_history_org_idx').on('key_configuration_history').columns(['org_id', 'version']).execute();
    },
  };
};
