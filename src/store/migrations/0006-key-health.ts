import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// Key health (docs/KEY_HEALTH.md): one row per organization with a customer key, holding
//   - the last probe's result (status, checked_at, last_error, deletion_date, keys), written with
//     a compare-and-set on `version` so concurrent probes raise each transition once;
//   - the schedule (next_probe_at) and the lease (lease_owner, lease_until) a node claims with a
//     compare-and-set on next_probe_at, so two nodes never probe the same org in the same period.
export const keyHealth: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema
        .createTable('key_health')
        .addColumn('org_id', 'text', (c) => c.primaryKey().references('organizations.id').onDelete('cascade'))
        .addColumn('config_id', 'text', (c) => c.notNull())
        // unknown | ok | degraded | failed
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('checked_at', t.bigint)
        // JSON of the error body of the last probe that was not ok.
        .addColumn('last_error', 'text')
        // Earliest deletion date of a key that still protects data (or the current key), if any.
        .addColumn('deletion_date', t.bigint)
        // JSON array of the keys the last probe looked at and their states.
        .addColumn('keys', 'text')
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_probe_at', t.bigint, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.bigint)
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('key_health_next_probe_idx').on('key_health').columns(['next_probe_at']).execute();
    },
  };
};
