/** Key health: what a probe found, and the API model (docs/KEY_HEALTH.md). */

export type HealthStatus = 'ok' | 'degraded' | 'failed';
/** `unknown` until the first probe of the organization's key has finished. */
export type StoredHealthStatus = HealthStatus | 'unknown';

/** The error body of a probe that was not ok: the shape of the key configuration's lastError. */
export interface HealthError {
  message: string;
  code: string;
  errorType?: string;
  /** The AWS exception name (or network error code) KMS answered with, when a call failed. */
  awsError?: string;
  /** The provider's own error name (an XKS errorName, a network code), for keys outside AWS KMS. */
  providerError?: string;
  /** The key the error is about, when it is not the configuration's current key. */
  keyArn?: string;
}

/** One KMS key the probe looked at. */
export interface KeyHealth {
  keyArn: string;
  /** The key the configuration's alias resolves to (new data is protected with it). */
  current: boolean;
  /**
   * The KMS KeyState (Enabled, Disabled, PendingDeletion, …) as DescribeKey told it, or `Unknown`
   * when DescribeKey could not say (denied by the key policy, throttled, unreachable).
   */
  state: string;
  status: HealthStatus;
  /** ISO 8601, when the key is pending deletion. */
  deletionDate?: string;
  /** Live org data keys it wraps (0 for a current key that protects nothing yet). */
  dataKeys: number;
  error?: HealthError;
}

export interface ProbeResult {
  status: HealthStatus;
  lastError?: HealthError;
  /** Earliest deletion date (ms) among the keys that matter, when one is pending deletion. */
  deletionDate?: number;
  keys: KeyHealth[];
  /** The key ARN the alias resolved to, when the probe could tell. */
  currentKeyArn?: string;
}

/** GET …/keyconfigurations/{id}/health */
export interface KeyHealthModel {
  status: StoredHealthStatus;
  /** ISO 8601: when the last probe finished. */
  checkedAt?: string;
  lastError?: HealthError;
  /** ISO 8601: the earliest deletion date of a key that still matters. */
  deletionDate?: string;
  keys?: KeyHealth[];
}

/** What established a status: a probe (`schedule`, `manual`), a passing Save, or real use of the key (`traffic`). */
export type ProbeTrigger = 'schedule' | 'manual' | 'save' | 'traffic';

/** The body of the webhook POST for a status change. */
export interface TransitionPayload {
  event: 'keyhealth.transition';
  orgId: string;
  configurationId: string;
  from: StoredHealthStatus;
  to: HealthStatus;
  checkedAt: string;
  lastError?: HealthError;
  deletionDate?: string;
}

/** The logger the service writes background failures to (pino's and Fastify's fit). */
export interface HealthLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLog: HealthLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
