import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { parseInstant, parseRfc3339 } from './instant.js';

const instant = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true });

describe('strict RFC 3339 instants', () => {
  it('round-trips every UTC instant as toISOString writes it', () => {
    fc.assert(
      fc.property(instant, (d) => {
        expect(parseRfc3339(d.toISOString())).toBe(d.getTime());
      }),
    );
  });

  it('reads an explicit offset as that offset, whatever the server zone', () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }), (d, offset) => {
        const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 23);
        const sign = offset < 0 ? '-' : '+';
        const abs = Math.abs(offset);
        const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        const parsed = parseRfc3339(`${local}${zone}`);
        if (new Date(d.getTime() + offset * 60_000).getUTCFullYear() > 9999) return;
        expect(parsed).toBe(d.getTime());
      }),
    );
  });

  it('refuses days a month does not have, and anything Date.parse would bend', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1970, max: 2400 }), fc.integer({ min: 1, max: 12 }), (year, month) => {
        const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
        const mm = String(month).padStart(2, '0');
        expect(parseRfc3339(`${year}-${mm}-${days}T00:00:00Z`)).toBeDefined();
        expect(parseRfc3339(`${year}-${mm}-${days + 1}T00:00:00Z`)).toBeUndefined();
      }),
    );
    for (const loose of ['0', '1', '2026', '2026-03-01', '2026-03-01T00:00:00', '2026-03-01 00:00:00Z', '2026-03-01T24:00:00Z', '2026-03-01T00:00:60Z', '2026-03-01T00:00Z', '2026-03-01T00:00:00+0100', '2026-03-01T00:00:00+24:00', 'March 1, 2026']) {
      expect(parseRfc3339(loose), loose).toBeUndefined();
    }
  });

  it('answers 400 naming the field', () => {
    let err: unknown;
    try {
      parseInstant('2026-02-30T00:00:00Z', 'from');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 400, details: { field: 'from' } });
    expect(() => parseInstant(17, 'to')).toThrow(/RFC 3339/);
  });
});
