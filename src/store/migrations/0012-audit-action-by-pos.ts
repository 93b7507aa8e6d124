import type { DialectMigration } from '../migrate.js';

/**
 * The index behind `GET /api/v2/audits?action=…` orders by `pos` (the order events were appended,
 * the order that listing pages in) instead of `seq`. `seq` is null until an event is sealed, so the
 * old index was written twice per event — at the append and again at the seal — and could not give
 * a listing its order. Same statements on SQLite and PostgreSQL; no row changes.
 */
export const auditActionByPos: DialectMigration = () => ({
  async up(db) {
    await db.schema.dropIndex('audit_events_org_action_idx').execute();
    await db.schema.createIndex('audit_events_org_action_idx').on('audit_events').columns(['org_id', 'action', 'pos']).execute();
  },
});
