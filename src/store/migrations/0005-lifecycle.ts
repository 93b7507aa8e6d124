import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

export const lifecycle: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      // Background jobs (rewrap): their progress and a lease, so a job survives a crash of the node
      // running it and two nodes never run one job at the same time.
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('target_key_id', 'text', (c) => c.notNull())
        .addColumn('target_key_arn', 'text')
        .addColumn('total', 'integer')
        .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('errors', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('started_at', t.bigint)
        .addColumn('finished_at', t.bigint)
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', t.bigint)
        .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('jobs_org_state_idx').on('jobs').columns(['org_id', 'state']).execute();
      await db.schema.createIndex('jobs_state_idx').on('jobs').columns(['state', 'lease_expires_at']).execute();
    },
  };
};
