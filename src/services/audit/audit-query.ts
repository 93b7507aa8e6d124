// Parsing of what people type into the list API and the CLI: instants, cursors, action filters,
// limits. Every refusal is a 400 naming the field and showing an accepted value.

import { parseRfc3339 } from '../instant.js';
import { badRequest } from '../errors.js';
import type { ActionFilter } from './audit-dal.js';
import type { AuditListOptions } from './types.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

const ACTION_NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;
export const MAX_ACTION_LENGTH = 100;

export function isActionName(value: string): boolean {
  return value.length <= MAX_ACTION_LENGTH && ACTION_NAME.test(value);
}

/** `keyconfig.save` matches exactly; `keyconfig.*` matches every action that starts with `keyconfig.`. */
export function parseActionFilter(value: string): ActionFilter {
  if (value.endsWith('.*')) {
    const stem = value.slice(0, -2);
    if (/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/.test(stem) && stem.length < MAX_ACTION_LENGTH) return { prefix: stem + '.' };
  } else if (isActionName(value)) {
    return { exact: value };
  }
  throw badRequest(`Invalid action: use an action name such as keyconfig.save, or a prefix such as keyconfig.* (got ${JSON.stringify(value.slice(0, 120))}).`, {
    field: 'action',
  });
}

/**
 * An instant filter: an RFC 3339 date-time with a zone (`2026-01-31T12:00:00Z`, `…+02:00`, the
 * strict parser every date input uses), or a bare date (`2026-01-31`, midnight UTC). A date-time
 * without a zone is refused: which instant it means depends on where the caller sits. Impossible
 * dates (`2026-02-30`) are refused too, where Date.parse would quietly roll them over.
 */
export function parseIsoInstant(value: string, field: string): Date {
  const refuse = () =>
    badRequest(`Invalid ${field}: expected an ISO 8601 instant such as 2026-01-31T12:00:00Z or 2026-01-31 (got ${JSON.stringify(value.slice(0, 60))}).`, { field });
  const ms = parseRfc3339(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  // Audit events are never older than 1970: refuse rather than guess what such a year meant.
  if (ms === undefined || ms < 0) throw refuse();
  return new Date(ms);
}

export function parseLimit(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const n = typeof value === 'number' ? value : /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw badRequest(`Invalid limit: expected a whole number from 1 to ${MAX_LIMIT} (got ${JSON.stringify(String(value).slice(0, 20))}).`, { field: 'limit' });
  }
  return n;
}

/** Opaque to clients: base64url of the seq of the last event on the page. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const text = /^[A-Za-z0-9_-]{1,24}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!/^[1-9]\d{0,15}$/.test(text)) {
    throw badRequest('Invalid cursor: pass the nextCursor of a previous page unchanged, or leave it out to start from the newest event.', { field: 'cursor' });
  }
  return Number(text);
}

/** The list API's query string → service options. */
export function parseAuditListQuery(query: { from?: string; to?: string; action?: string; cursor?: string; limit?: string }): AuditListOptions {
  const options: AuditListOptions = { limit: parseLimit(query.limit) };
  if (query.from !== undefined) options.from = parseIsoInstant(query.from, 'from');
  if (query.to !== undefined) options.to = parseIsoInstant(query.to, 'to');
  if (query.action !== undefined) options.action = query.action;
  if (query.cursor !== undefined) options.cursor = query.cursor;
  return options;
}
