// The per-organization hash chain: each event's hash covers its own content and, through
// prevHash, every event before it, so editing, deleting or reordering any stored event breaks
// every hash from that point on. Pure: no database, no clock.

import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { AuditEvent, AuditVerification, UnsealedAuditEvent } from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

/** SHA-256 over the UTF-8 bytes of `prevHash` (64 lower-case hex characters) followed by the canonical JSON of the event without `hash`. */
export function computeEventHash(event: UnsealedAuditEvent | AuditEvent): string {
  const { hash: _ignored, ...content } = event as AuditEvent;
  return createHash('sha256').update(content.prevHash + canonicalJson(content), 'utf8').digest('hex');
}

export function sealEvent(event: UnsealedAuditEvent): AuditEvent {
  return { ...event, hash: computeEventHash(event) };
}

/** A point the walk must pass through: the event at `seq` has hash `lastHash` (the chain head, or a seal's last event). */
export interface ChainHead {
  seq: number;
  lastHash: string;
  /** Who recorded it, for the message: "the chain head" when absent. */
  source?: string;
}

/** A seal that does not verify: the walk reports it at the first event it should cover (or there, if the walk ends before). */
export interface BrokenCheckpoint {
  seq: number;
  broken: string;
}

export type Checkpoint = ChainHead | BrokenCheckpoint;

/** One sealed batch of an organization's events (docs/AUDIT.md). */
export interface AuditSeal {
  orgId: string;
  batch: number;
  firstSeq: number;
  lastSeq: number;
  lastHash: string;
  /** Epoch milliseconds. */
  sealedAt: number;
  prevSealHash: string;
  sealHash: string;
}

/** SHA-256 over `prevSealHash` followed by the canonical JSON of { batch, firstSeq, lastHash, lastSeq, orgId, sealedAt }. */
export function computeSealHash(seal: Omit<AuditSeal, 'sealHash'>): string {
  const { orgId, batch, firstSeq, lastSeq, lastHash, sealedAt } = seal;
  return createHash('sha256')
    .update(seal.prevSealHash + canonicalJson({ orgId, batch, firstSeq, lastSeq, lastHash, sealedAt }), 'utf8')
    .digest('hex');
}

/**
 * Checks an organization's seals, oldest first, and turns each into a checkpoint for
 * `verifyChain`: each seal must follow the previous one (batch + 1, the next seq, its hash as
 * prevSealHash) and hash to its `sealHash`. `head` (read before the walk) names the last seal, so
 * seals cut off the end are caught too. The first seal that does not verify ends the list.
 */
export async function* sealCheckpoints(
  orgId: string,
  seals: AsyncIterable<AuditSeal> | Iterable<AuditSeal>,
  head?: { batch: number; sealHash: string },
): AsyncGenerator<Checkpoint> {
  let expectedBatch = 1;
  let expectedFirst = 1;
  let prevSealHash = GENESIS_HASH;
  for await (const seal of seals) {
    const problem =
      seal.orgId !== orgId
        ? `seal ${seal.batch} belongs to organization ${seal.orgId}, not ${orgId}`
        : seal.batch !== expectedBatch
          ? `seal ${expectedBatch} is missing (found seal ${seal.batch})`
          : seal.firstSeq !== expectedFirst || seal.lastSeq < seal.firstSeq
            ? `seal ${seal.batch} covers seq ${seal.firstSeq}..${seal.lastSeq}, but the previous seal ended at seq ${expectedFirst - 1}`
            : seal.prevSealHash !== prevSealHash
              ? `seal ${seal.batch} does not chain to the seal before it (prevSealHash differs)`
              : computeSealHash(seal) !== seal.sealHash
                ? `seal ${seal.batch} does not match its hash (the seal was modified)`
                : head && seal.batch === head.batch && seal.sealHash !== head.sealHash
                  ? `seal ${seal.batch} differs from the one the chain head recorded (seals were rewritten)`
                  : undefined;
    if (problem) {
      yield { seq: expectedFirst, broken: problem };
      return;
    }
    yield { seq: seal.lastSeq, lastHash: seal.lastHash, source: `seal ${seal.batch}` };
    prevSealHash = seal.sealHash;
    expectedFirst = seal.lastSeq + 1;
    expectedBatch += 1;
  }
  if (head && head.batch >= expectedBatch) {
    yield { seq: expectedFirst, broken: `seals ${expectedBatch}..${head.batch} are missing: the chain head records ${head.batch} seals` };
  }
}

/**
 * Walks an organization's events oldest first and names the first one that does not verify.
 * The checks run in the order that names the right event: a gap in seq means rows before this
 * one were deleted; a prevHash that is not the previous hash means the chain was spliced; a hash
 * that does not match the content means this row was edited (or moved: seq is part of the content).
 *
 * `checkpoints` (the chain head, or the seals), read before the walk and ascending by seq, catch
 * what the events alone cannot: events cut off the end, and an event replaced by a re-hashed
 * forgery together with everything after it. Events appended while the walk runs lie beyond the
 * last checkpoint and are simply verified as part of the chain.
 */
export async function verifyChain(
  orgId: string,
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
  checkpoints?: ChainHead | AsyncIterable<Checkpoint> | Iterable<Checkpoint>,
): Promise<AuditVerification> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  const points = checkpointIterator(checkpoints);
  let next = await points.next();
  const broken = (event: { id: string | null; seq: number }, reason: string): AuditVerification => ({
    ok: false,
    count,
    brokenAt: { id: event.id, seq: event.seq },
    reason,
  });
  for await (const event of events) {
    if (event.orgId !== orgId) return broken(event, `the event belongs to organization ${event.orgId}, not ${orgId}`);
    if (event.seq !== expectedSeq) {
      return broken(
        event,
        event.seq > expectedSeq
          ? `events ${expectedSeq}..${event.seq - 1} are missing (deleted rows): expected seq ${expectedSeq}, found ${event.seq}`
          : `seq ${event.seq} is out of order: expected seq ${expectedSeq}`,
      );
    }
    if (!next.done && 'broken' in next.value && next.value.seq <= event.seq) return broken(event, next.value.broken);
    if (event.prevHash !== prevHash) {
      return broken(event, 'prevHash does not match the hash of the previous event (a row before it was deleted, replaced or reordered)');
    }
    if (computeEventHash(event) !== event.hash) {
      return broken(event, "hash does not match the event's content (the row was modified)");
    }
    if (!next.done && !('broken' in next.value) && event.seq === next.value.seq) {
      if (event.hash !== next.value.lastHash) {
        return broken(event, `the hash differs from the one ${next.value.source ?? 'the chain head'} recorded for this event (the event was replaced and the chain re-hashed)`);
      }
      next = await points.next();
    }
    prevHash = event.hash;
    expectedSeq += 1;
    count += 1;
  }
  if (!next.done) {
    const point = next.value;
    if ('broken' in point) return broken({ id: null, seq: Math.max(point.seq, count + 1) }, point.broken);
    if (point.seq > count) {
      return broken({ id: null, seq: count + 1 }, `events ${count + 1}..${point.seq} are missing: ${point.source ?? 'the chain head'} records ${point.seq} events`);
    }
  }
  return { ok: true, count };
}

function checkpointIterator(checkpoints: ChainHead | AsyncIterable<Checkpoint> | Iterable<Checkpoint> | undefined): AsyncIterator<Checkpoint> {
  if (checkpoints === undefined) return (async function* () {})();
  if ('seq' in checkpoints) return (async function* () { yield checkpoints; })();
  return (async function* () { yield* checkpoints; })();
}
