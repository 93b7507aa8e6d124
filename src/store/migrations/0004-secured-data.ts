import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// The key hierarchy at rest (docs/SECURED_DATA.md, DESIGN.md "Key hierarchy"):
//   org_data_keys      one row per org data key: the KMS CiphertextBlob and what produced it
//   conversation_keys  one row per (org, conversation): the 61-byte wrapped conversation key
//   secured_values     one row per attribute: the value envelope (docs/FORMAT.md)
// No plaintext key or value is ever stored.
export const securedData: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      await db.schema
        .createTable('org_data_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        // What GenerateDataKey was called with: the alias ARN of the configuration, or the platform key ARN (type None).
        .addColumn('key_id_used', 'text', (c) => c.notNull())
        // The key ARN KMS answered with: the key that wraps wrapped_key now (a rewrap updates it with the blob).
        .addColumn('key_arn', 'text', (c) => c.notNull())
        .addColumn('config_type', 'text', (c) => c.notNull())
        .addColumn('config_version', 'integer', (c) => c.notNull())
        // The name of the single encryption-context pair the blob is bound to ({<name>: org_id}).
        .addColumn('context_key', 'text', (c) => c.notNull())
        // The KMS CiphertextBlob of the data key; null once shredded.
        .addColumn('wrapped_key', t.binary)
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        // Conversation keys ever wrapped under this data key (the window's use counter; never decremented).
        .addColumn('conversations', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rewrapped_at', t.bigint)
        .addColumn('shredded_at', t.bigint)
        .execute();
      await db.schema.createIndex('org_data_keys_org_created_idx').on('org_data_keys').columns(['org_id', 'created_at']).execute();
      await db.schema.createIndex('org_data_keys_org_arn_idx').on('org_data_keys').columns(['org_id', 'key_arn']).execute();

      // No foreign key to org_data_keys: a shredded or missing data key must leave the conversation
      // answering "shredded", not vanish by cascade.
      await db.schema
        .createTable('conversation_keys')
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('data_key_id', 'text', (c) => c.notNull())
        .addColumn('wrapped', t.binary, (c) => c.notNull())
        .addColumn('created_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('conversation_keys_pk', ['org_id', 'conversation_id'])
        .execute();
      await db.schema.createIndex('conversation_keys_data_key_idx').on('conversation_keys').columns(['org_id', 'data_key_id']).execute();

      await db.schema
        .createTable('secured_values')
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('envelope', t.binary, (c) => c.notNull())
        .addColumn('updated_at', t.bigint, (c) => c.notNull())
        .addPrimaryKeyConstraint('secured_values_pk', ['org_id', 'conversation_id', 'name'])
        .execute();
    },
  };
};
