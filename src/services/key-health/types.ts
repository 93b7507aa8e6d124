/** Key health: what a probe found, and the API model (docs/KEY_HEALTH.md). */

import type { HealthError, HealthStatus, KeyHealth } from '../../providers/key-health.js';

export type { HealthError, HealthStatus, KeyHealth, ProbeResult } from '../../providers/key-health.js';
/** `unknown` until the first probe of the organization's key has finished. */
export type StoredHealthStatus = HealthStatus | 'unknown';

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
