import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventId } from './event-id.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('audit event ids', () => {
  it('are UUID version 7 with the millisecond of the event in the first 48 bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (ms) => {
        const id = eventId(ms);
        expect(id).toMatch(V7);
        expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
      }),
    );
  });

  it('sort by time as strings, so each insert lands at the end of the index', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 2 }), fc.integer({ min: 1, max: 2 ** 20 }), (ms, later) => {
        expect(eventId(ms) < eventId(Math.min(ms + later, 2 ** 48 - 1))).toBe(true);
      }),
    );
    expect(eventId(0)).toMatch(/^00000000-0000-7/);
    expect(eventId(2 ** 48 - 1)).toMatch(/^ffffffff-ffff-7/);
  });

  it('differ within one millisecond', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => eventId(1_796_000_000_000)));
    expect(ids.size).toBe(10_000);
  });
});
