/** Row types of the convault database, shared by every DAL. Timestamps are epoch milliseconds. */
import type { Generated } from 'kysely';

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
  /** After this instant the token no longer authenticates; null → no expiry. */
  expires_at: number | null;
}

export interface MetaTable {
  key: string;
  value: string;
}

export type KeyConfigurationTypeName = 'KmsSymmetric' | 'LocalKeyManager' | 'None';

export interface KeyConfigurationsTable {
  id: string;
  org_id: string;
  type: KeyConfigurationTypeName;
  /** The alias ARN or the XKS proxy URI prefix as saved; '' for None. */
  url: string;
  /** The key the configuration resolved to at the last save or probe: a key ARN, or the XKS key reference (`<url>/keys/<keyId>`). */
  key_arn: string | null;
  version: number;
  /** JSON of the type's non-secret fields other than url (LocalKeyManager: keyId, apiId, caBundle, clientCertificate). */
  fields: string | null;
  /** The type's secret fields (apiKey, clientKey), sealed under the platform key; never returned. */
  sealed_secrets: Buffer | null;
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
  type: KeyConfigurationTypeName;
  url: string;
  key_arn: string | null;
  fields: string | null;
  sealed_secrets: Buffer | null;
  saved_at: number;
  saved_by_id: string;
  saved_by_name: string;
  /** JSON of the Test report that allowed the save. */
  test_report: string;
}

/**
 * One audit event; append-only (see src/services/audit). Appended with `seq`, `prev_hash` and
 * `hash` null; the sealer fills them, chaining the event to the previous one of the organization.
 */
export interface AuditEventsTable {
  /** Assigned by the database on insert: the order in which the sealer takes unsealed events. */
  pos: Generated<number>;
  id: string;
  org_id: string;
  /** 1, 2, 3 … per organization, without gaps, once sealed; null until then. */
  seq: number | null;
  at: number;
  principal: string;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  /** Canonical JSON object of counts, ids and names; never secret values. */
  details: string;
  prev_hash: string | null;
  hash: string | null;
}

/** The last sealed event and the last seal of each organization's audit trail; written by the sealer only. */
export interface AuditHeadsTable {
  org_id: string;
  seq: number;
  last_hash: string;
  batch: number;
  seal_hash: string;
}

/** One sealed batch of an organization's events: `seal_hash` covers it and, through `prev_seal_hash`, every seal before it. */
export interface AuditSealsTable {
  org_id: string;
  batch: number;
  first_seq: number;
  last_seq: number;
  /** `hash` of the event at `last_seq`. */
  last_hash: string;
  sealed_at: number;
  prev_seal_hash: string;
  seal_hash: string;
}

/** A named lease: one holder at a time until `expires_at` (the audit sealer's, the webhook sender's). */
export interface LeasesTable {
  name: string;
  owner: string | null;
  expires_at: number;
}

/** One org data key (src/services/secured-data): a KMS CiphertextBlob and what produced it. */
export interface OrgDataKeysTable {
  id: string;
  org_id: string;
  /** What GenerateDataKey was called with: the configuration's alias ARN, or the platform key ARN (type None). */
  key_id_used: string;
  /** The key ARN KMS resolved it to: the key that wraps `wrapped_key` now (a rewrap updates both). */
  key_arn: string;
  config_type: KeyConfigurationTypeName;
  config_version: number;
  /** Name of the single encryption-context pair `{<context_key>: org_id}` the blob is bound to. */
  context_key: string;
  /** The KMS CiphertextBlob; null once shredded. */
  wrapped_key: Buffer | null;
  created_at: number;
  /** Conversation keys ever wrapped under this data key (the rotation window's counter; never decremented). */
  conversations: number;
  rewrapped_at: number | null;
  shredded_at: number | null;
}

/** One conversation key, wrapped under an org data key (docs/FORMAT.md, 61 bytes). */
export interface ConversationKeysTable {
  org_id: string;
  conversation_id: string;
  data_key_id: string;
  wrapped: Buffer;
  created_at: number;
}

/** One secured attribute: a value envelope (docs/FORMAT.md) under its conversation key. */
export interface SecuredValuesTable {
  org_id: string;
  conversation_id: string;
  name: string;
  envelope: Buffer;
  updated_at: number;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobsTable {
  id: string;
  org_id: string;
  type: 'rewrap';
  state: JobState;
  /** What the job moves data keys to: the alias ARN of the configuration, or the platform key. */
  target_key_id: string;
  /** The key ARN the target resolved to when the job started. */
  target_key_arn: string | null;
  total: number | null;
  done: number;
  failed: number;
  /** JSON array of { dataKeyId, keyArn, reason } (capped). */
  errors: string;
  created_at: number;
  created_by: string;
  started_at: number | null;
  finished_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  cancel_requested: number;
}

/** Key health of one organization (src/services/key-health): the last probe's result, its schedule and lease. */
export interface KeyHealthTable {
  org_id: string;
  config_id: string;
  status: 'unknown' | 'ok' | 'degraded' | 'failed';
  checked_at: number | null;
  /** JSON of the error body of the last probe that was not ok. */
  last_error: string | null;
  /** Earliest deletion date (ms) of the current key or of a key that still protects data. */
  deletion_date: number | null;
  /** JSON array of the keys the last probe looked at and their states. */
  keys: string | null;
  /** Bumped by every result written (compare-and-set, so a transition is raised once). */
  version: number;
  /** When the next background probe is due; a node claims it by moving it forward (compare-and-set). */
  next_probe_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  updated_at: number;
}

/** A key health webhook delivery (the durable outbox, src/services/key-health/webhook-outbox.ts). */
export interface WebhookDeliveriesTable {
  /** Also the idempotency key: sent as X-Convault-Delivery and Idempotency-Key on every attempt. */
  id: string;
  org_id: string;
  config_id: string;
  event: string;
  payload: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

/** A token bucket shared by the nodes on PostgreSQL (src/services/store-rate-limiter.ts). */
export interface RateLimitBucketsTable {
  key: string;
  tokens: number;
  updated_at: number;
}

export interface Database {
  organizations: OrganizationsTable;
  principals: PrincipalsTable;
  api_tokens: ApiTokensTable;
  meta: MetaTable;
  key_configurations: KeyConfigurationsTable;
  key_configuration_history: KeyConfigurationHistoryTable;
  audit_events: AuditEventsTable;
  audit_heads: AuditHeadsTable;
  audit_seals: AuditSealsTable;
  leases: LeasesTable;
  org_data_keys: OrgDataKeysTable;
  conversation_keys: ConversationKeysTable;
  secured_values: SecuredValuesTable;
  jobs: JobsTable;
  key_health: KeyHealthTable;
  webhook_deliveries: WebhookDeliveriesTable;
  rate_limit_buckets: RateLimitBucketsTable;
}
