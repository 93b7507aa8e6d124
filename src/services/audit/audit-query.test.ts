import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { decodeCursor, encodeCursor, parseActionFilter, parseAuditListQuery, parseIsoInstant, parseLimit } from './audit-query.js';

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected a refusal');
}

describe('audit query parsing', () => {
  it('accepts dates and RFC 3339 date-times with a zone', () => {
    expect(parseIsoInstant('2026-01-31', 'from').toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(parseIsoInstant('2026-01-31T12:34:56Z', 'from').toISOString()).toBe('2026-01-31T12:34:56.000Z');
    expect(parseIsoInstant('2026-01-31T12:34:56.789123Z', 'from').toISOString()).toBe('2026-01-31T12:34:56.789Z');
    expect(parseIsoInstant('2026-01-31T12:34:00+02:00', 'from').toISOString()).toBe('2026-01-31T10:34:00.000Z');
    expect(parseIsoInstant('2026-01-31T12:34:00-01:30', 'from').toISOString()).toBe('2026-01-31T14:04:00.000Z');
    expect(parseIsoInstant('2024-02-29', 'from').toISOString()).toBe('2024-02-29T00:00:00.000Z');
  });

  it('refuses anything else with a 400 naming the field', () => {
    for (const bad of ['yesterday', '2026-02-30', '2025-02-29', '2026-13-01', '2026-01-31T12:00:00', '2026-01-31T24:00Z', '1700000000000', '', '0099-01-01', '2026-01-31T12:34+02:00', '2026-01-31T12:34:00-0130']) {
      const err = refusal(() => parseIsoInstant(bad, 'to'));
      expect(err.status).toBe(400);
      expect(err.details).toEqual({ field: 'to' });
      expect(err.message).toMatch(/^Invalid to: expected an ISO 8601 instant such as/);
    }
  });

  it('parses limits from 1 to 200, default 50', () => {
    expect(parseLimit(undefined)).toBe(50);
    expect(parseLimit('1')).toBe(1);
    expect(parseLimit(200)).toBe(200);
    for (const bad of ['0', '201', '-1', '1.5', 'ten', '']) expect(refusal(() => parseLimit(bad)).details).toEqual({ field: 'limit' });
  });

  it('round-trips cursors and refuses forged ones', () => {
    expect(decodeCursor(encodeCursor(1))).toBe(1);
    expect(decodeCursor(encodeCursor(123456789))).toBe(123456789);
    expect(encodeCursor(42)).toMatch(/^[A-Za-z0-9_-]+$/);
    for (const bad of ['', '!!', Buffer.from('0').toString('base64url'), Buffer.from('-3').toString('base64url'), Buffer.from('x').toString('base64url')]) {
      expect(refusal(() => decodeCursor(bad)).details).toEqual({ field: 'cursor' });
    }
  });

  it('takes exact action names and dotted prefixes', () => {
    expect(parseActionFilter('keyconfig.save')).toEqual({ exact: 'keyconfig.save' });
    expect(parseActionFilter('keyconfig.*')).toEqual({ prefix: 'keyconfig.' });
    expect(parseActionFilter('rewrap.job.*')).toEqual({ prefix: 'rewrap.job.' });
    for (const bad of ['keyconfig', '*', 'KeyConfig.save', 'a..b', "x.y'; drop", '.*']) expect(refusal(() => parseActionFilter(bad)).details).toEqual({ field: 'action' });
  });

  it('turns a query string into list options', () => {
    expect(parseAuditListQuery({})).toEqual({ limit: 50 });
    expect(parseAuditListQuery({ from: '2026-01-01', to: '2026-02-01', action: 'a.b', cursor: 'MQ', limit: '10' })).toEqual({
      from: new Date('2026-01-01T00:00:00Z'),
      to: new Date('2026-02-01T00:00:00Z'),
      action: 'a.b',
      cursor: 'MQ',
      limit: 10,
    });
    expect(refusal(() => parseAuditListQuery({ from: 'soon' })).details).toEqual({ field: 'from' });
  });
});
