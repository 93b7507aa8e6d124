import { randomBytes } from 'node:crypto';

/**
 * Audit event ids in UUID version 7 form (RFC 9562): the millisecond of the event first, then 74
 * random bits. Every event is inserted into the index of ids; random ids (version 4) land on a
 * different index page each, and on SQLite each dirtied page is another page written to the WAL and
 * checkpointed. Time-ordered ids land at the end of the index, a few pages per commit. The id says
 * when the event was appended, which its `at` field says anyway.
 */
export function eventId(nowMs: number = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(Math.max(0, Math.floor(nowMs)) % 2 ** 48, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
