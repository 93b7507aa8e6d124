import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../store/database.js';
import type { Database } from '../store/schema.js';
import { createRateLimiter, rateLimited, secondsUntilToken, type RateLimit, type RateLimiter } from './rate-limiter.js';

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

  return {
    async take(key: string, what: string): Promise<void> {
      const bucket = `${name}:${key}`;
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
