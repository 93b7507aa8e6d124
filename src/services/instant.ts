import { badRequest } from './errors.js';

/**
 * Strict instants for every date input: RFC 3339 date-time with an explicit zone (`Z` or `±hh:mm`),
 * a real calendar date (no 30 February) and real clock values. `Date.parse` accepts far more —
 * `"0"` (year 2000), `2026-02-30` (2 March), zone-less times read in the server's own zone — which
 * must never decide what an irreversible operation destroys. Leap seconds (`:60`) are refused.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Epoch milliseconds of an RFC 3339 instant, or undefined when `value` is not one. */
export function parseRfc3339(value: string): number | undefined {
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millis);
  return utc.getTime() - offsetMinutes * 60_000;
}

/** parseRfc3339, or 400 naming the field and the expected form. */
export function parseInstant(value: unknown, field: string): number {
  const parsed = typeof value === 'string' ? parseRfc3339(value) : undefined;
  if (parsed === undefined) {
    throw badRequest(`${field} must be an RFC 3339 date-time with a zone and a real calendar date, e.g. 2026-03-01T00:00:00Z.`, { field });
  }
  return parsed;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
