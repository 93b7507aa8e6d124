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

/** The chain head as stored when verification started (seq and hash of the organization's last event). */
export interface ChainHead {
  seq: number;
  lastHash: string;
}

/**
 * Walks an organization's events oldest first and names the first one that does not verify.
 * The checks run in the order that names the right event: a gap in seq means rows before this
 * one were deleted; a prevHash that is not the previous hash means the chain was spliced; a hash
 * that does not match the content means this row was edited (or moved: seq is part of the content).
 *
 * `head`, read before the walk, catches what the events alone cannot: events cut off the end, and
 * a last event replaced by a re-hashed forgery. Events appended while the walk runs lie beyond
 * the head and are simply verified as part of the chain.
 */
export async function verifyChain(
  orgId: string,
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
  head?: ChainHead,
): Promise<AuditVerification> {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
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
    if (event.prevHash !== prevHash) {
      return broken(event, 'prevHash does not match the hash of the previous event (a row before it was deleted, replaced or reordered)');
    }
    if (computeEventHash(event) !== event.hash) {
      return broken(event, "hash does not match the event's content (the row was modified)");
    }
    if (head && event.seq === head.seq && event.hash !== head.lastHash) {
      return broken(event, 'the hash differs from the one the chain head recorded for this event (the event was replaced and the chain re-hashed)');
    }
    prevHash = event.hash;
    expectedSeq += 1;
    count += 1;
  }
  if (head && head.seq > count) {
    return broken({ id: null, seq: count + 1 }, `events ${count + 1}..${head.seq} are missing: the chain head records ${head.seq} events`);
  }
  return { ok: true, count };
}
