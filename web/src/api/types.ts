/** The shapes of the convault API the admin UI uses (docs/API.md, docs/KEY_CONFIGURATION.md, docs/AUDIT.md). */

/** Every API error has this body. */
export interface ErrorBody {
  message: string;
  code: string;
  status: number;
  errorType?: string;
  contextId: string;
  details?: Record<string, unknown>;
}

export interface Organization {
  id: string;
  name: string;
}

export type KeyConfigurationType = 'KmsSymmetric' | 'LocalKeyManager' | 'None';

/** One field of a key configuration type, as the server's registry describes it. */
export interface KeyFieldInfo {
  name: string;
  required: boolean;
  /** Write-only: answered masked, never shown. */
  secret: boolean;
  description: string;
  format?: 'pem';
}

/** GET …/keyconfigurations/types: a type, its fields and capabilities. */
export interface KeyConfigurationTypeInfo {
  keyConfigurationType: KeyConfigurationType;
  label: string;
  customerOwned: boolean;
  supportsHealthProbe: boolean;
  supportsEncryptData: boolean;
  supportsServerSideRewrap: boolean;
  fields: KeyFieldInfo[];
}

/** LocalKeyManager's fields beyond url; apiKey and clientKey come back masked. */
export interface ProviderFieldValues {
  keyId?: string;
  apiId?: string;
  apiKey?: string;
  caBundle?: string;
  clientCertificate?: string;
  clientKey?: string;
}

/** An error as the key configuration reports it (`lastError`, a Test step's `error`). */
export interface KeyError {
  message?: string;
  code?: string;
  errorType?: string;
  awsError?: string;
  [more: string]: unknown;
}

export interface KeyConfiguration extends ProviderFieldValues {
  id: string;
  /** The KMS key alias ARN; empty for None. */
  url: string;
  keyConfigurationType: KeyConfigurationType;
  lastError?: KeyError;
  selfUri: string;
  version: number;
  /** The key the alias resolved to when the configuration was tested. */
  keyArn?: string;
  updatedAt: string;
  updatedBy: { id: string; name: string };
}

export interface KeyConfigurationList {
  total: number;
  entities: KeyConfiguration[];
  selfUri: string;
}

export interface KeyConfigurationInput extends ProviderFieldValues {
  /** Test of a saved configuration: secrets left empty are taken from it. */
  id?: string;
  keyConfigurationType: KeyConfigurationType;
  url?: string;
  /** Required by PUT: the version the change is based on. */
  version?: number;
}

export interface TestStep {
  step: string;
  ok: boolean;
  ms: number;
  /** A failed advisory step does not fail the Test (e.g. DescribeKey denied by the policy). */
  advisory?: boolean;
  detail?: string;
  error?: KeyError;
}

/** The answer of Test (`POST …/validate`), also `details.report` of a refused Save (422). */
export interface TestReport {
  ok: boolean;
  steps: TestStep[];
  keyArn?: string;
  lastError?: KeyError;
  keyConfigurationType?: KeyConfigurationType;
  url?: string;
}

/** One saved version of the configuration (`GET …/{id}/history`, newest first). */
export interface KeyConfigurationVersion {
  version: number;
  keyConfigurationType: KeyConfigurationType;
  url: string;
  keyArn?: string;
  savedAt: string;
  savedBy: { id: string; name: string };
}

export interface KeyPolicy {
  organizationId: string;
  platformAccountId: string;
  encryptionContextKey: string;
  statement: unknown[];
}

export interface KeyUsageRow {
  keyArn: string;
  current: boolean;
  dataKeys: number;
  conversations: number;
  values: number;
  oldest?: string | null;
  newest?: string | null;
  safeToRetire: boolean;
  /** Absent from servers before key usage statuses: derive it from current/safeToRetire. */
  status?: 'Current' | 'InUse' | 'SafeToRetire' | 'Unusable';
  /** Why an Unusable key's data cannot be read, and what to do. */
  problem?: string;
}

export interface KeyUsage {
  entities: KeyUsageRow[];
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface Job {
  id: string;
  type: string;
  state: JobState;
  done: number;
  total: number;
  failed: number;
  errors: Array<Record<string, unknown> | string>;
  /** The failures grouped by reason (absent from servers before grouping). */
  errorGroups?: JobErrorGroup[];
  startedAt?: string | null;
  finishedAt?: string | null;
}

export interface JobErrorGroup {
  keyArn: string;
  awsError?: string;
  reason: string;
  count: number;
  /** The first data key ids of the group; GET /api/v2/jobs/{id}/errors has them all. */
  dataKeyIds: string[];
}

export type HealthStatus = 'ok' | 'degraded' | 'failed' | 'unknown';

export interface KeyHealth {
  status: HealthStatus;
  checkedAt?: string | null;
  lastError?: KeyError | null;
  deletionDate?: string | null;
}

export interface AuditEvent {
  id: string;
  seq?: number;
  at: string;
  principal: string;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  details: Record<string, unknown>;
}

export interface AuditPage {
  entities: AuditEvent[];
  nextCursor?: string;
}

export const PERMISSION = {
  viewKeys: 'conversation:encryptionKey:view',
  editKeys: 'conversation:encryptionKey:edit',
  viewAudit: 'audit:log:view',
  manageTokens: 'admin:token:manage',
} as const;

/** An API token as listed: never its secret. */
export interface ApiToken {
  id: string;
  orgId: string;
  principalId: string;
  name: string;
  prefix: string;
  permissions: string[];
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  state: 'active' | 'revoked' | 'expired';
}

/** A token just created or rotated: the secret is in this answer only. */
export interface CreatedApiToken {
  token: string;
  id: string;
  prefix: string;
  principalId: string;
  orgId: string;
  permissions: string[];
  expiresAt?: string;
}
