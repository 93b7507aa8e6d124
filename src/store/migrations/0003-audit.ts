import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// No foreign key to organizations on purpose: an audit trail must outlive what it talks about,
// and a cascade must never be able to delete events.
export const audit: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .addColumn('at', t.bigint, (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      // Unique, so even a bug in the head locking could not fork the chain: a second event with
      // the same seq fails instead of being stored. Also the index every list and export walks.
      await db.schema.createIndex('audit_events_org_seq_uq').on('audit_events').columns(['org_id', 'seq']).unique().execute();
      await db.schema.createIndex('audit_events_org_action_idx').on('audit_events').columns(['org_id', 'action', 'seq']).execute();
      await db.schema
        .createTable('audit_heads')
        .addColumn('org_id', 'text', (c) => c.primaryKey())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .execute();
    },
  };
};
