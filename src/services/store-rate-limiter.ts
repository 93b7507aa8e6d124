import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../store/database.js';
import type { Database } from '../store/schema.js';
import { AppError } from './errors.js';
import { createRateLimiter, rateLimited, secondsUntilToken, type FailureLimiter, type RateLimit, type RateLimiter } from './rate-limiter.js';

/**
 * A rate limiter every node shares. On PostgreSQL each take is one atomic upsert of the bucket
 * row (`rate_limit_buckets`), timed by the database's clock: concurrent takes on any number of
 * nodes serialize on the row, so N nodes allow exactly `limit` per window, not N × limit, and
 * node clocks that disagree do not matter. On SQLite (one node by design) the buckets stay in
 * memory, as before.
 *
 * `name` separates limiters in the table (`keytest`, `probe`, `auth-failures` …); keys are
 * whatever the caller limits by, typically an organization id.
 */
export function createStoreRateLimiter(opts: RateLimit & { db: Kysely<Database>; dialect: DialectName; name: string }): RateLimiter {
  if (opts.dialect !== 'postgres') return createRateLimiter(opts);
  const { db, name, limit, windowMs } = opts;
  const ratePerMs = limit / windowMs;
  const dbNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;
  const refilled = sql<number>`least(${limit}::double precision, rate_limit_buckets.tokens + greatest(0, ${dbNow} - rate_limit_buckets.updated_at) * ${ratePerMs}::double precision)`;
  const prefix = `${name}:`;
  let sweptAt = Date.now();

  return {
    async take(key: string, what: string): Promise<void> {
      // A bucket untouched for a whole window has refilled: its row says nothing an absent row does
      // not. Such rows are deleted once a window, so keys an attacker chooses (client addresses)
      // leave at most one window's worth of rows.
      if (Date.now() - sweptAt >= windowMs) {
        sweptAt = Date.now();
        await sql`delete from rate_limit_buckets where left(key, ${prefix.length}) = ${prefix} and updated_at < ${dbNow} - ${windowMs}`.execute(db);
      }
      const bucket = `${prefix}${key}`;
      const taken = await sql<{ tokens: number }>`
        insert into rate_limit_buckets (key, tokens, updated_at)
        values (${bucket}, ${limit - 1}::double precision, ${dbNow})
        on conflict (key) do update
          set tokens = ${refilled} - 1, updated_at = ${dbNow}
          where ${refilled} >= 1
        returning tokens`.execute(db);
      if (taken.rows.length === 1) return;
      const left = await sql<{ tokens: number }>`select ${refilled} as tokens from rate_limit_buckets where key = ${bucket}`.execute(db);
      throw rateLimited(what, { limit, windowMs }, secondsUntilToken(Number(left.rows[0]?.tokens ?? 0), { limit, windowMs }));
    },
  };
}

/** Addresses this node remembers as refused, at most; the oldest is forgotten first. */
const MAX_REMEMBERED_REFUSALS = 10_000;

/**
 * The failed-authentication limiter per client address. On PostgreSQL the failures of every node
 * count in one bucket per address (`auth-failures` in `rate_limit_buckets`), so spreading guesses
 * over nodes gains nothing. Only a failure touches the database (one upsert); the check every API
 * request makes reads memory: the addresses this node was told are refused, until their
 * Retry-After. On SQLite (one node) the buckets stay in memory.
 */
export function createFailureLimiter(opts: RateLimit & { db: Kysely<Database>; dialect: DialectName; name: string; now?: () => number }): FailureLimiter {
  if (opts.dialect !== 'postgres') return createRateLimiter(opts);
  const shared = createStoreRateLimiter(opts);
  const now = opts.now ?? Date.now;
  const refusedUntil = new Map<string, number>();
  return {
    check(key: string, what: string): void {
      const until = refusedUntil.get(key);
      if (until === undefined) return;
      const left = until - now();
      if (left <= 0) {
        refusedUntil.delete(key);
        return;
      }
      throw rateLimited(what, opts, Math.max(1, Math.ceil(left / 1000)));
    },
    async take(key: string, what: string): Promise<void> {
      try {
        await shared.take(key, what);
      } catch (err) {
        if (err instanceof AppError && err.status === 429) {
          const seconds = Number((err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 1);
          refusedUntil.delete(key);
          if (refusedUntil.size >= MAX_REMEMBERED_REFUSALS) refusedUntil.delete(refusedUntil.keys().next().value!);
          refusedUntil.set(key, now() + seconds * 1000);
        }
        throw err;
      }
    },
  };
}
