import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// Token lifecycle (docs/SECURITY.md): an optional expiry per token, checked with revoked_at on every
// authentication; tokens of an organization are listed by org.
export const tokenLifecycle: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema.alterTable('api_tokens').addColumn('expires_at', t.bigint).execute();
      await db.schema.createIndex('api_tokens_org_idx').on('api_tokens').columns(['org_id', 'created_at']).execute();
    },
  };
};
