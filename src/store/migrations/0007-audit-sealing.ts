import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// Audit events are appended without chain fields and sealed later in batches (docs/AUDIT.md):
//   audit_events  seq, prev_hash and hash become nullable (null until sealed); `pos`, assigned
//                 by the database on insert, orders the unsealed events for the sealer
//   audit_heads   now written by the sealer only; records the last seal of the organization too
//   audit_seals   one row per sealed batch, chained by the hash of the previous seal
//   leases        named leases (the sealer's: one node seals at a time)
// Existing chains are kept exactly: their events keep seq, prev_hash and hash, and each
// organization's chain so far becomes its first seal, so it verifies as before.

const GENESIS = '0'.repeat(64);

/** The seal hash, as src/services/audit/audit-chain.ts computes it (repeated here: a migration never changes). */
function sealHash(prevSealHash: string, seal: { orgId: string; batch: number; firstSeq: number; lastSeq: number; lastHash: string; sealedAt: number }): string {
  const canonical = `{"batch":${seal.batch},"firstSeq":${seal.firstSeq},"lastHash":${JSON.stringify(seal.lastHash)},"lastSeq":${seal.lastSeq},"orgId":${JSON.stringify(seal.orgId)},"sealedAt":${seal.sealedAt}}`;
  return createHash('sha256').update(prevSealHash + canonical, 'utf8').digest('hex');
}

export const auditSealing: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db: Kysely<any>) {
      if (dialect === 'postgres') {
        await sql`alter table audit_events alter column seq drop not null, alter column prev_hash drop not null, alter column hash drop not null`.execute(db);
        await sql`alter table audit_events add column pos bigserial`.execute(db);
      } else {
        // SQLite cannot relax NOT NULL in place: the table is rebuilt with every row kept.
        await db.schema
          .createTable('audit_events_v2')
          .addColumn('pos', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('org_id', 'text', (c) => c.notNull())
          .addColumn('seq', t.bigint)
          .addColumn('at', t.bigint, (c) => c.notNull())
          .addColumn('principal', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text')
          .addColumn('hash', 'text')
          .execute();
        await sql`insert into audit_events_v2 (id, org_id, seq, at, principal, action, target, outcome, details, prev_hash, hash)
                  select id, org_id, seq, at, principal, action, target, outcome, details, prev_hash, hash from audit_events order by org_id, seq`.execute(db);
        await db.schema.dropTable('audit_events').execute();
        await sql`alter table audit_events_v2 rename to audit_events`.execute(db);
        await db.schema.createIndex('audit_events_org_seq_uq').on('audit_events').columns(['org_id', 'seq']).unique().execute();
        await db.schema.createIndex('audit_events_org_action_idx').on('audit_events').columns(['org_id', 'action', 'seq']).execute();
      }
      // Listing is in the order events were appended; the sealer reads what is still unsealed.
      await db.schema.createIndex('audit_events_org_pos_idx').on('audit_events').columns(['org_id', 'pos']).execute();
      await db.schema.createIndex('audit_events_unsealed_idx').on('audit_events').column('pos').where(sql.ref('seq'), 'is', null).execute();

      await db.schema.alterTable('audit_heads').addColumn('batch', t.bigint, (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('audit_heads').addColumn('seal_hash', 'text', (c) => c.notNull().defaultTo(GENESIS)).execute();
      await db.schema
        .createTable('audit_seals')
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('batch', t.bigint, (c) => c.notNull())
        .addColumn('first_seq', t.bigint, (c) => c.notNull())
        .addColumn('last_seq', t.bigint, (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .addColumn('sealed_at', t.bigint, (c) => c.notNull())
        .addColumn('prev_seal_hash', 'text', (c) => c.notNull())
        .addColumn('seal_hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_seals_pk', ['org_id', 'batch'])
        .execute();
      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text')
        .addColumn('expires_at', t.bigint, (c) => c.notNull().defaultTo(0))
        .execute();

      const heads = await db.selectFrom('audit_heads').select(['org_id', 'seq', 'last_hash']).execute();
      const sealedAt = Date.now();
      for (const head of heads) {
        const seal = { orgId: head.org_id as string, batch: 1, firstSeq: 1, lastSeq: Number(head.seq), lastHash: head.last_hash as string, sealedAt };
        const hash = sealHash(GENESIS, seal);
        await db
          .insertInto('audit_seals')
          .values({ org_id: seal.orgId, batch: 1, first_seq: 1, last_seq: seal.lastSeq, last_hash: seal.lastHash, sealed_at: sealedAt, prev_seal_hash: GENESIS, seal_hash: hash })
          .execute();
        await db.updateTable('audit_heads').set({ batch: 1, seal_hash: hash }).where('org_id', '=', seal.orgId).execute();
      }
    },
  };
};
