import type { Kysely } from 'kysely';
import type { GroupCommitter } from '../../store/group-commit.js';
import type { Database } from '../../store/schema.js';
import { badRequest } from '../errors.js';
import { sealCheckpoints, verifyChain, type AuditSeal } from './audit-chain.js';
import { createAuditDal } from './audit-dal.js';
import { eventId } from './event-id.js';
import { decodeCursor, encodeCursor, isActionName, MAX_ACTION_LENGTH, parseActionFilter, parseLimit } from './audit-query.js';
import { fromRow, sealedFromRow, unsealedRow } from './audit-rows.js';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import type { AuditEntry, AuditEvent, AuditEventInput, AuditListOptions, AuditPage, AuditVerification, UnsealedAuditEvent, UnsealedSummary } from './types.js';

export interface AuditServiceDeps {
  db: Kysely<Database>;
  /** SQLite: an event recorded without the caller's transaction joins the next group commit. */
  groupCommit?: Pick<GroupCommitter<Database>, 'run'>;
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
export function createAuditService({ db, groupCommit, clock = Date.now }: AuditServiceDeps) {
  async function append(executor: Kysely<Database>, input: PreparedInput): Promise<AuditEntry> {
    const atMs = Math.floor(clock());
    const entry: AuditEntry = {
      id: eventId(atMs),
      orgId: input.orgId,
      seq: null,
      at: new Date(atMs).toISOString(),
      principal: input.principal,
      action: input.action,
      target: input.target,
      outcome: input.outcome,
      details: input.details,
      prevHash: null,
      hash: null,
    };
    await createAuditDal(executor).insertEvent(unsealedRow(entry, atMs, input.detailsJson));
    return entry;
  }

  async function* exportEvents(orgId: string): AsyncGenerator<AuditEvent> {
    const dal = createAuditDal(db);
    let after = 0;
    for (;;) {
      const rows = await dal.eventsAfter(orgId, after, EXPORT_BATCH);
      for (const row of rows) yield sealedFromRow(row);
      if (rows.length < EXPORT_BATCH) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  async function* seals(orgId: string): AsyncGenerator<AuditSeal> {
    const dal = createAuditDal(db);
    let after = 0;
    for (;;) {
      const rows = await dal.sealsAfter(orgId, after, EXPORT_BATCH);
      for (const r of rows) {
        yield {
          orgId: r.org_id,
          batch: Number(r.batch),
          firstSeq: Number(r.first_seq),
          lastSeq: Number(r.last_seq),
          lastHash: r.last_hash,
          sealedAt: Number(r.sealed_at),
          prevSealHash: r.prev_seal_hash,
          sealHash: r.seal_hash,
        };
      }
      if (rows.length < EXPORT_BATCH) return;
      after = Number(rows[rows.length - 1]!.batch);
    }
  }

  async function unsealed(orgId: string): Promise<UnsealedSummary> {
    const { count, oldestAt } = await createAuditDal(db).unsealedSummary(orgId);
    return {
      count,
      oldestAt: oldestAt === null ? null : new Date(oldestAt).toISOString(),
      oldestAgeMs: oldestAt === null ? null : Math.max(0, Math.floor(clock()) - oldestAt),
    };
  }

  return {
    /**
     * Appends one event to the organization's trail: one insert, durable when it returns (or when
     * the caller's transaction commits). Pass the caller's transaction as `executor` to make the
     * event part of the change it describes (both commit or neither). The event takes no lock
     * beyond its own new row; the sealer chains it within about a second (docs/AUDIT.md), so the
     * returned entry has no seq or hash yet.
     */
    async record(event: AuditEventInput, executor?: Kysely<Database>): Promise<AuditEntry> {
      const input = prepareInput(event);
      if (executor === undefined && groupCommit) return groupCommit.run((trx) => append(trx, input));
      return append(executor ?? db, input);
    },

    /** Newest first (in the order appended, sealed or not), one page; `nextCursor` is present when older events match. */
    async list(orgId: string, options: AuditListOptions = {}): Promise<AuditPage> {
      const limit = parseLimit(options.limit);
      const fromMs = instantMs(options.from, 'from');
      const toMs = instantMs(options.to, 'to');
      if (fromMs !== undefined && toMs !== undefined && toMs < fromMs) {
        throw badRequest('Invalid to: it is before from; swap them or leave one out.', { field: 'to' });
      }
      const rows = await createAuditDal(db).listPage(orgId, {
        beforePos: options.cursor === undefined ? undefined : decodeCursor(options.cursor),
        fromMs,
        toMs,
        action: options.action === undefined ? undefined : parseActionFilter(options.action),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const entities = page.map(fromRow);
      return rows.length > limit ? { entities, nextCursor: encodeCursor(Number(page[page.length - 1]!.pos)) } : { entities };
    },

    /** Every sealed event of the organization, oldest first, read in batches (memory stays flat for any length). */
    exportEvents,

    /** Events appended but not sealed yet: how many, and how old the oldest is. */
    unsealed,

    /**
     * Recomputes the chain of sealed events against the seals; names the first event that does not
     * verify. Events not sealed yet are counted in `unsealed`, not verified.
     */
    async verify(orgId: string): Promise<AuditVerification> {
      // The head is read first: events and seals added during the walk lie beyond it and are walked too.
      const head = await createAuditDal(db).findHead(orgId);
      const result = await verifyChain(
        orgId,
        exportEvents(orgId),
        sealCheckpoints(orgId, seals(orgId), head ? { batch: Number(head.batch), sealHash: head.seal_hash } : undefined),
      );
      return { ...result, unsealed: await unsealed(orgId) };
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
