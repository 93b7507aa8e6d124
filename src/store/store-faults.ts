/**
 * Which database errors mean "the store cannot serve right now" (as opposed to a bad query or a
 * constraint the caller broke), decided in one place for both dialects. The HTTP layer answers
 * these with 503 + Retry-After; background loops log them, wait and try again.
 */

export type StoreFaultReason =
  /** The server cannot be reached (refused, timed out, starting up, shutting down, too many connections). */
  | 'unreachable'
  /** An established connection died under a query (server restart, pg_terminate_backend, network). */
  | 'connection-lost'
  /** Another writer holds the lock longer than the busy timeout (SQLite), or the statement waited too long. */
  | 'busy'
  /** Serialization failure or deadlock that stayed after the bounded retries. */
  | 'conflict'
  | 'disk-full'
  | 'io-error';

const RETRY_AFTER_SECONDS: Record<StoreFaultReason, number> = {
  unreachable: 2,
  'connection-lost': 1,
  busy: 1,
  conflict: 1,
  'disk-full': 30,
  'io-error': 5,
};

const DESCRIPTIONS: Record<StoreFaultReason, string> = {
  unreachable: 'The database cannot be reached',
  'connection-lost': 'The connection to the database was lost',
  busy: 'The database is busy (locked by another writer)',
  conflict: 'The change conflicted with concurrent changes',
  'disk-full': 'The database is out of disk space',
  'io-error': 'The database reported an I/O error',
};

/** The store could not serve a query; nothing of the failed transaction was kept. */
export class StoreUnavailableError extends Error {
  readonly retryAfterSeconds: number;

  constructor(
    readonly reason: StoreFaultReason,
    /** The driver's code (SQLSTATE, errno name or SQLITE_* code), never the message of a query. */
    readonly driverCode: string | undefined,
  ) {
    super(`${DESCRIPTIONS[reason]}; retry shortly.`);
    this.name = 'StoreUnavailableError';
    this.retryAfterSeconds = RETRY_AFTER_SECONDS[reason];
  }
}

export function isStoreUnavailable(err: unknown): err is StoreUnavailableError {
  return err instanceof StoreUnavailableError;
}

const SOCKET_ERRNOS = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
const SOCKET_LOST_ERRNOS = new Set(['ECONNRESET', 'EPIPE']);

// node-postgres and pg-pool report a dead or closed client only in the message, without a code.
const PG_LOST_MESSAGES = [/connection terminated/i, /not queryable/i, /connection has been discarded/i, /connection ended/i];
const PG_UNREACHABLE_MESSAGES = [/timeout exceeded when trying to connect/i, /connection timeout/i];

/**
 * The fault an error stands for, or undefined when it is not one (a constraint violation, a
 * syntax error, an application error): those keep their own meaning.
 */
export function classifyStoreError(err: unknown): StoreFaultReason | undefined {
  if (err instanceof StoreUnavailableError) return err.reason;
  if (!err || typeof err !== 'object') return undefined;
  const code = typeof (err as { code?: unknown }).code === 'string' ? ((err as { code: string }).code) : undefined;
  const message = typeof (err as { message?: unknown }).message === 'string' ? (err as { message: string }).message : '';
  if (code) {
    const sqlite = classifySqliteCode(code);
    if (sqlite) return sqlite;
    if (SOCKET_ERRNOS.has(code)) return 'unreachable';
    if (SOCKET_LOST_ERRNOS.has(code)) return 'connection-lost';
    const pgFault = classifySqlState(code);
    if (pgFault) return pgFault;
  }
  if (PG_LOST_MESSAGES.some((re) => re.test(message))) return 'connection-lost';
  if (PG_UNREACHABLE_MESSAGES.some((re) => re.test(message))) return 'unreachable';
  return undefined;
}

/** Serialization failures and deadlocks: the server rolled the transaction back, running it again may succeed. */
export function isRetryableConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '40001' || code === '40P01';
}

function classifySqliteCode(code: string): StoreFaultReason | undefined {
  if (!code.startsWith('SQLITE_')) return undefined;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
  if (code === 'SQLITE_FULL') return 'disk-full';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) return 'io-error';
  return undefined;
}

function classifySqlState(code: string): StoreFaultReason | undefined {
  if (!/^[0-9A-Z]{5}$/.test(code)) return undefined;
  switch (code) {
    case '57P01': // admin_shutdown: pg_terminate_backend, or a fast shutdown / restart
    case '57P02': // crash_shutdown
      return 'connection-lost';
    case '57P03': // cannot_connect_now: starting up or shutting down
    case '53300': // too_many_connections
      return 'unreachable';
    case '53100': // disk_full
      return 'disk-full';
    case '58030': // io_error
      return 'io-error';
    case '55P03': // lock_not_available
    case '57014': // query_canceled (statement_timeout)
      return 'busy';
    case '40001':
    case '40P01':
      return 'conflict';
  }
  // Class 08: connection exception (08000, 08003, 08006, 08001, 08004, …).
  if (code.startsWith('08')) return code === '08001' || code === '08004' ? 'unreachable' : 'connection-lost';
  return undefined;
}

/** A store fault as an error to throw; any other error unchanged. */
export function toStoreError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const reason = classifyStoreError(err);
  if (!reason) return err;
  const code = (err as { code?: unknown }).code;
  return new StoreUnavailableError(reason, typeof code === 'string' ? code : undefined);
}

/** A driver error for a log line: its code and message, with any credentials in a URL removed. Never the error object (pg attaches its client, with the password). */
export function describeDriverError(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message.replace(/(\w+:\/\/[^:/@\s]*):[^@\s]*@/g, '$1:***@') : String(err);
  return { ...(typeof e?.code === 'string' ? { code: e.code } : {}), message };
}
