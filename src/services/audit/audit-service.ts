import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditEventsTable, Database } from '../../store/schema.js';
import { badRequest } from '../errors.js';
import { sealEvent, verifyChain } from './audit-chain.js';
import { createAuditDal } from './audit-dal.js';
import { decodeCursor, encodeCursor, isActionName, MAX_ACTION_LENGTH, parseActionFilter, parseLimit } from './audit-query.js';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import type { AuditEvent, AuditEventInput, AuditListOptions, AuditPage, AuditVerification, UnsealedAuditEvent } from './types.js';
import { inTransaction } from '../../store/transactions.js';

export interface AuditServiceDeps {
  db: Kysely<Database>;
  clock?: () => number;
}

export type AuditService = ReturnType<typeof createAuditService>;

/** Details are a record of what happened, not a data store; this also bounds what a bug could leak. */
export const MAX_DETAILS_BYTES = 8 * 1024;
const EXPORT_BATCH = 500;

/**
 * The audit trail: an append-only, per-organization hash chain of events. There is no update
 * or delete on purpose; verify() detects rows changed or removed behind the service's back.
 */
export function createAuditService({ db, clock = Date.now }: AuditServiceDeps) {
  async function append(trx: Kysely<Database>, input: PreparedInput): Promise<AuditEvent> {
    const dal = createAuditDal(trx);
    const { seq, prevHash } = await dal.advanceHead(input.orgId);
    const atMs = Math.floor(clock());
    const event = sealEvent({
      id: randomUUID(),
      orgId: input.orgId,
      seq,
      at: new Date(atMs).toISOString(),
      principal: input.principal,
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      details: input.details,
      prevHash,
    });
    await dal.insertEvent(toRow(event, atMs, input.detailsJson));
    await dal.setHeadHash(input.orgId, seq, event.hash);
    return event;
  }

  async function* exportEvents(orgId: string): AsyncGenerator<AuditEvent> {
    const dal = createAuditDal(db);
    let after = 0;
    for (;;) {
      const rows = await dal.eventsAfter(orgId, after, EXPORT_BATCH);
      for (const row of rows) yield fromRow(row);
      if (rows.length < EXPORT_BATCH) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  return {
    /**
     * Appends one event to the organization's chain. Pass the caller's transaction as `executor`
     * to make the event part of the change it describes (both commit or neither); the chain head
     * of the organization then stays locked until that transaction ends, so record last, just
     * before commit. Without an executor the event gets a transaction of its own. Never call it
     * without `executor` from inside a transaction on SQLite: the second transaction would wait
     * for the first forever.
     */
    async record(event: AuditEventInput, executor?: Kysely<Database>): Promise<AuditEvent> {
      // Validate before taking the head lock, so a bad event costs no one any waiting.
      const input = prepareInput(event);
      if (executor?.isTransaction) return append(executor, input);
      return inTransaction(executor ?? db, (trx) => append(trx, input));
    },

    /** Newest first, one page; `nextCursor` is present when older events match. */
    async list(orgId: string, options: AuditListOptions = {}): Promise<AuditPage> {
      const limit = parseLimit(options.limit);
      const fromMs = instantMs(options.from, 'from');
      const toMs = instantMs(options.to, 'to');
      if (fromMs !== undefined && toMs !== undefined && toMs < fromMs) {
        throw badRequest('Invalid to: it is before from; swap them or leave one out.', { field: 'to' });
      }
      const rows = await createAuditDal(db).listPage(orgId, {
        beforeSeq: options.cursor === undefined ? undefined : decodeCursor(options.cursor),
        fromMs,
        toMs,
        action: options.action === undefined ? undefined : parseActionFilter(options.action),
        limit: limit + 1,
      });
      const entities = rows.slice(0, limit).map(fromRow);
      return rows.length > limit ? { entities, nextCursor: encodeCursor(entities[entities.length - 1]!.seq) } : { entities };
    },

    /** Every event of the organization, oldest first, read in batches (memory stays flat for any length). */
    exportEvents,

    /** Recomputes the chain; names the first event that does not verify. */
    async verify(orgId: string): Promise<AuditVerification> {
      // The head is read first: events appended during the walk lie beyond it and are walked too.
      const head = await createAuditDal(db).findHead(orgId);
      return verifyChain(orgId, exportEvents(orgId), head ? { seq: Number(head.seq), lastHash: head.last_hash } : undefined);
    },
  };
}

interface PreparedInput {
  orgId: string;
  principal: string;
  action: string;
  target: string | null;
  outcome: AuditEvent['outcome'];
  details: UnsealedAuditEvent['details'];
  detailsJson: string;
}

// An invalid event is a bug in the recording service, not bad client input: a plain Error (500), loud in the log.
function prepareInput(event: AuditEventInput): PreparedInput {
  const fail = (what: string) => new TypeError(`audit event for ${String(event?.action)}: ${what}`);
  if (typeof event.orgId !== 'string' || event.orgId.length === 0 || event.orgId.length > 200) throw fail('orgId must be a non-empty string');
  if (typeof event.principal !== 'string' || event.principal.length === 0 || event.principal.length > 200) {
    throw fail('principal must be 1-200 characters: the caller principal id, or system:<component>');
  }
  if (typeof event.action !== 'string' || !isActionName(event.action)) {
    throw fail(`action must be dotted lower-case words such as keyconfig.save (at most ${MAX_ACTION_LENGTH} characters)`);
  }
  if (event.target !== undefined && (typeof event.target !== 'string' || event.target.length > 500)) throw fail('target must be a string of at most 500 characters');
  if (event.outcome !== 'success' && event.outcome !== 'failure') throw fail("outcome must be 'success' or 'failure'");
  const details = event.details ?? {};
  if (details === null || typeof details !== 'object' || Array.isArray(details)) throw fail('details must be a plain object');
  // The canonical text is what is stored; parsing it back gives exactly the value that is hashed,
  // so what verify() later reads from the row hashes the same.
  const detailsJson = canonicalJson(details);
  if (Buffer.byteLength(detailsJson, 'utf8') > MAX_DETAILS_BYTES) {
    throw fail(`details exceed ${MAX_DETAILS_BYTES} bytes; record counts, ids and names, never contents`);
  }
  return {
    orgId: event.orgId,
    principal: event.principal,
    action: event.action,
    target: event.target ?? null,
    outcome: event.outcome,
    details: JSON.parse(detailsJson) as { [key: string]: JsonValue },
    detailsJson,
  };
}

function instantMs(value: Date | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : NaN;
  if (!Number.isFinite(ms)) throw badRequest(`Invalid ${field}: expected an ISO 8601 instant such as 2026-01-31T12:00:00Z.`, { field });
  return ms;
}

function toRow(event: AuditEvent, atMs: number, detailsJson: string): AuditEventsTable {
  return {
    id: event.id,
    org_id: event.orgId,
    seq: event.seq,
    at: atMs,
    principal: event.principal,
    action: event.action,
    target: event.target,
    outcome: event.outcome,
    details: detailsJson,
    prev_hash: event.prevHash,
    hash: event.hash,
  };
}

/**
 * Row → event. Tolerant on purpose: a row someone edited by hand (details that no longer parse,
 * a timestamp out of range) still becomes an event, whose hash then fails to verify, rather
 * than an exception that would hide which row is broken.
 */
function fromRow(row: AuditEventsTable): AuditEvent {
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
    seq: Number(row.seq),
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
