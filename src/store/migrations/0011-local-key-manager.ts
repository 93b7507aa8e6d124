import type { DialectMigration } from '../migrate.js';
import { columnTypes } from '../migrate.js';

// Key configuration types beyond an AWS alias (LocalKeyManager: a customer's XKS proxy).
//   - fields: JSON object of the type's non-secret fields other than url (keyId, apiId, caBundle,
//     clientCertificate); null for KmsSymmetric and None.
//   - sealed_secrets: the type's secret fields (apiKey, clientKey) as one JSON object sealed under
//     the platform key (src/services/keyconfig/secret-box.ts); null when the type has none.
// Both tables get them: a rewrap must still reach the key manager of an earlier version, with the
// credentials that version was saved with.
export const localKeyManager: DialectMigration = (dialect) => {
  const t = columnTypes(dialect);
  return {
    async up(db) {
      for (const table of ['key_configurations', 'key_configuration_history']) {
        await db.schema.alterTable(table).addColumn('fields', 'text').execute();
        await db.schema.alterTable(table).addColumn('sealed_secrets', t.binary).execute();
      }
      await db.schema.createIndex('key_configuration_history_key_idx').on('key_configuration_history').columns(['org_id', 'key_arn']).execute();
    },
  };
};
