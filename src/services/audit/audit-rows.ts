// Audit rows ↔ events: the one place that decides how a stored row becomes the event its hash covers.
import type { Insertable } from 'kysely';
import type { AuditEventsTable } from '../../store/schema.js';
import type { AuditEventRow } from './audit-dal.js';
import type { JsonValue } from './canonical-json.js';
import type { AuditEntry, AuditEvent } from './types.js';

/** An event as the request path appends it: no chain fields (the sealer adds them). */
export function unsealedRow(entry: Omit<AuditEntry, 'seq' | 'prevHash' | 'hash'>, atMs: number, detailsJson: string): Insertable<AuditEventsTable> {
  return {
    id: entry.id,
    org_id: entry.orgId,
    seq: null,
    at: atMs,
    principal: entry.principal,
    action: entry.action,
    target: entry.target,
    outcome: entry.outcome,
    details: detailsJson,
    prev_hash: null,
    hash: null,
  };
}

/**
 * Row → event. Tolerant on purpose: a row someone edited by hand (details that no longer parse,
 * a timestamp out of range) still becomes an event, whose hash then fails to verify, rather
 * than an exception that would hide which row is broken.
 */
export function fromRow(row: AuditEventRow): AuditEntry {
  let details: { [key: string]: JsonValue };
  try {
    const parsed = JSON.parse(row.details) as unknown;
    details = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { [key: string]: JsonValue }) : { $unparseable: row.details };
  } catch {
    details = { $unparseable: row.details };
  }
  const at = new Date(Number(row.at));
  return {
    id: row.id,
    orgId: row.org_id,
    seq: row.seq === null ? null : Number(row.seq),
    at: Number.isFinite(at.getTime()) ? at.toISOString() : String(row.at),
    principal: row.principal,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** A sealed row as the chain sees it (only rows with seq set are walked; a null prevHash or hash fails verification). */
export function sealedFromRow(row: AuditEventRow): AuditEvent {
  const entry = fromRow(row);
  return { ...entry, seq: entry.seq ?? 0, prevHash: entry.prevHash ?? '', hash: entry.hash ?? '' };
}
