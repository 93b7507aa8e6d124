/** Row types of the convault database, shared by every DAL. Timestamps are epoch milliseconds. */

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface PrincipalsTable {
  id: string;
  org_id: string;
  name: string;
  kind: 'user' | 'client';
  /** JSON array of permission strings. */
  permissions: string;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  org_id: string;
  principal_id: string;
  /** Hex SHA-256 of the token; the token itself is never stored. */
  token_hash: string;
  /** First characters of the token, so an admin can tell tokens apart. */
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface KeyConfigurationsTable {
  id: string;
  org_id: string;
  type: 'KmsSymmetric' | 'None';
  /** The alias ARN as saved; '' for None. */
  url: string;
  /** The key ARN KMS resolved the alias to at the last save or probe. */
  key_arn: string | null;
  version: number;
  /** JSON of the ErrorBody of the last failed use or probe. */
  last_error: string | null;
  created_at: number;
  updated_at: number;
  updated_by_id: string;
  updated_by_name: string;
}

export interface KeyConfigurationHistoryTable {
  id: string;
  config_id: string;
  org_id: string;
  version: number;
  type: 'KmsSymmetric' | 'None';
  url: string;
  key_arn: string | null;
  saved_at: number;
  saved_by_id: string;
  saved_by_name: string;
  /** JSON of the Test report that allowed the save. */
  test_report: string;
}

/** One audit event; append-only (see src/services/audit). `hash` chains it to the previous event of the organization. */
export interface AuditEventsTable {
  id: string;
  org_id: string;
  /** 1, 2, 3 … per organization, without gaps. */
  seq: number;
  at: number;
  principal: string;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  /** Canonical JSON object of counts, ids and names; never secret values. */
  details: string;
  prev_hash: string;
  hash: string;
}

/** The last event of each organization's audit chain; its row lock serializes appends. */
export interface AuditHeadsTable {
  org_id: string;
  seq: number;
  last_hash: string;
}

/** One org data key (src/services/secured-data): a KMS CiphertextBlob and what produced it. */
export interface Database {
  organizations: OrganizationsTable;
  principals: PrincipalsTable;
  api_tokens: ApiTokensTable;
  meta: MetaTable;
  key_configurations: KeyConfigurationsTable;
  key_configuration_history: KeyConfigurationHistoryTable;
  audit_events: AuditEventsTable;
  audit_heads: AuditHeadsTable;
}
