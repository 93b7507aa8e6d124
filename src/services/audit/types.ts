import type { JsonValue } from './canonical-json.js';

export type AuditOutcome = 'success' | 'failure';

/**
 * What a caller hands to `record`. `details` holds counts, ids, names and reasons — never secret
 * values, plaintext, ciphertext, keys or tokens (see docs/AUDIT.md).
 */
export interface AuditEventInput {
  orgId: string;
  /** Who acted: the caller's principal id, or `system:<component>` for background work. */
  principal: string;
  /** Dotted, lower-case: `keyconfig.save`, `secureddata.read`, `rewrap.job.finish`. */
  action: string;
  /** What it acted on, e.g. a key configuration or conversation id. */
  target?: string;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

/** An event before it is sealed: exactly the fields the hash covers. */
export interface UnsealedAuditEvent {
  id: string;
  orgId: string;
  /** 1, 2, 3 … per organization, without gaps. */
  seq: number;
  /** ISO 8601 instant, millisecond precision, UTC. */
  at: string;
  principal: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  details: { [key: string]: JsonValue };
  /** `hash` of the organization's previous event; 64 zeros for the first. */
  prevHash: string;
}

/** The stored, exported and served shape of an event. */
export interface AuditEvent extends UnsealedAuditEvent {
  /** Hex SHA-256 of `prevHash` followed by the canonical JSON of the event without `hash`. */
  hash: string;
}

/**
 * An event as listed: sealed (seq, prevHash and hash set) or still waiting for the sealer (all
 * three null; it is durable already, it is just not chained yet).
 */
export type AuditEntry = Omit<AuditEvent, 'seq' | 'prevHash' | 'hash'> & { seq: number | null; prevHash: string | null; hash: string | null };

/** Events appended but not sealed yet. */
export interface UnsealedSummary {
  count: number;
  /** When the oldest of them was appended (ISO 8601), or null when there are none. */
  oldestAt: string | null;
  /** Its age in milliseconds when asked, or null. */
  oldestAgeMs: number | null;
}

export interface AuditListOptions {
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  /** An exact action name, or a prefix ending in `.*` (`keyconfig.*`). */
  action?: string;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** 1–200, default 50. */
  limit?: number;
}

export interface AuditPage {
  /** Newest first (in the order they were appended), sealed or not. */
  entities: AuditEntry[];
  /** Present when older events match; pass it as `cursor` for the next page. */
  nextCursor?: string;
}

export type AuditVerification = (
  | { ok: true; count: number }
  | {
      ok: false;
      /** Events that verified before the first broken one. */
      count: number;
      /** The first event that does not verify; `id` is null when the event is missing altogether (the chain was cut short). */
      brokenAt: { id: string | null; seq: number };
      reason: string;
    }
) & {
  /** Events appended but not sealed yet: not verified, only counted (present when the service checked). */
  unsealed?: UnsealedSummary;
};
