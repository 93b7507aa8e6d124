import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// Operations at scale (docs/OPERATIONS.md):
//   - webhook_deliveries: the durable outbox of key health webhooks. A row is written in the
//     transaction that records the health transition, so a transition is never stored without its
//     delivery; its id is the idempotency key receivers see on every attempt.
//   (The webhook sender's lease is a row of `leases`, created by 0007-audit-sealing.)
//   - rate_limit_buckets: token buckets shared by every node on PostgreSQL.
export const operations: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('config_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        // The JSON body, fixed when the transition is recorded: every attempt sends the same bytes.
        .addColumn('payload', 'text', (c) => c.notNull())
        // pending | delivered | failed
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', t.bigint, (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .addColumn('delivered_at', t.bigint)
        .execute();
      await db.schema.createIndex('webhook_deliveries_due_idx').on('webhook_deliveries').columns(['state', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_org_idx').on('webhook_deliveries').columns(['org_id', 'created_at']).execute();

      await db.schema
        .createTable('rate_limit_buckets')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('tokens', dialect === 'postgres' ? 'double precision' : 'real', (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .execute();
    },
  };
};
