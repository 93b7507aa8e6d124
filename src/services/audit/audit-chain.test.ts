import { describe, expect, it } from 'vitest';
import { computeEventHash, GENESIS_HASH, sealEvent, verifyChain } from './audit-chain.js';
import type { AuditEvent, UnsealedAuditEvent } from './types.js';

// Computed independently: printf '%s' "$(printf '0%.0s' {1..64})<canonical JSON>" | sha256sum
const VECTOR: UnsealedAuditEvent = {
  id: '00000000-0000-4000-8000-000000000001',
  orgId: 'org-1',
  seq: 1,
  at: '2026-01-31T12:00:00.000Z',
  principal: 'p-1',
  action: 'keyconfig.save',
  target: 'kc-1',
  outcome: 'success',
  details: { version: 2 },
  prevHash: GENESIS_HASH,
};
const VECTOR_HASH = 'dae0876f6d75a75d25b13e7bb2ec9be576c497fc06a2d7ff47950a5a24271da5';

function chain(n: number, orgId = 'org-1'): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (let seq = 1; seq <= n; seq++) {
    events.push(
      sealEvent({
        ...VECTOR,
        id: `id-${seq}`,
        orgId,
        seq,
        details: { n: seq },
        prevHash: events[seq - 2]?.hash ?? GENESIS_HASH,
      }),
    );
  }
  return events;
}

describe('audit hash chain', () => {
  it('hashes prevHash followed by the canonical JSON of the event (test vector)', () => {
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    expect(computeEventHash(VECTOR)).toBe(VECTOR_HASH);
    const sealed = sealEvent(VECTOR);
    expect(sealed.hash).toBe(VECTOR_HASH);
    // The hash field itself is not covered, and key order does not matter.
    expect(computeEventHash({ ...sealed, hash: 'x' })).toBe(VECTOR_HASH);
    expect(computeEventHash(Object.fromEntries(Object.entries(VECTOR).reverse()) as unknown as UnsealedAuditEvent)).toBe(VECTOR_HASH);
  });

  it('verifies an intact chain, and an empty one', async () => {
    const events = chain(5);
    expect(await verifyChain('org-1', events, { seq: 5, lastHash: events[4]!.hash })).toEqual({ ok: true, count: 5 });
    expect(await verifyChain('org-1', [])).toEqual({ ok: true, count: 0 });
  });

  it('names a modified event', async () => {
    const events = chain(5);
    events[2] = { ...events[2]!, details: { n: 999 } };
    expect(await verifyChain('org-1', events)).toMatchObject({ ok: false, count: 2, brokenAt: { id: 'id-3', seq: 3 }, reason: expect.stringMatching(/modified/) });
  });

  it('names the event after a deleted one', async () => {
    const events = chain(5);
    events.splice(1, 1);
    expect(await verifyChain('org-1', events)).toMatchObject({ ok: false, count: 1, brokenAt: { id: 'id-3', seq: 3 }, reason: expect.stringMatching(/missing/) });
  });

  it('names the event after a deleted one even when the rest were renumbered', async () => {
    const events = chain(5);
    events.splice(1, 1);
    const renumbered = events.map((e, i) => ({ ...e, seq: i + 1 }));
    expect(await verifyChain('org-1', renumbered)).toMatchObject({ ok: false, brokenAt: { id: 'id-3', seq: 2 }, reason: expect.stringMatching(/prevHash/) });
  });

  it('names the first of two swapped events', async () => {
    const events = chain(5);
    // Rows keep their content but trade places (seq values swapped).
    const swapped = [events[0]!, { ...events[2]!, seq: 2 }, { ...events[1]!, seq: 3 }, events[3]!, events[4]!];
    expect(await verifyChain('org-1', swapped)).toMatchObject({ ok: false, count: 1, brokenAt: { id: 'id-3', seq: 2 } });
  });

  it('detects events cut off the end and a re-hashed last event, using the head', async () => {
    const events = chain(5);
    expect(await verifyChain('org-1', events.slice(0, 3), { seq: 5, lastHash: events[4]!.hash })).toMatchObject({
      ok: false,
      count: 3,
      brokenAt: { id: null, seq: 4 },
    });
    const forged = sealEvent({ ...events[4]!, details: { n: -1 } });
    expect(await verifyChain('org-1', [...events.slice(0, 4), forged], { seq: 5, lastHash: events[4]!.hash })).toMatchObject({
      ok: false,
      count: 4,
      brokenAt: { id: 'id-5', seq: 5 },
      reason: expect.stringMatching(/chain head/),
    });
    // Events appended after the head was read are fine.
    expect(await verifyChain('org-1', events, { seq: 3, lastHash: events[2]!.hash })).toEqual({ ok: true, count: 5 });
  });

  it("refuses another organization's event in the chain", async () => {
    const mixed = [...chain(2), chain(3, 'org-2')[2]!];
    expect(await verifyChain('org-1', mixed)).toMatchObject({ ok: false, brokenAt: { seq: 3 }, reason: expect.stringMatching(/org-2/) });
  });
});
