import { AppError } from './errors.js';

/**
 * Rate limits: a token bucket per key (e.g. per organization), `limit` calls per `windowMs`,
 * refilled continuously so a burst cannot reset at a window edge. This one lives in the memory of
 * one node; store-rate-limiter.ts keeps the buckets in PostgreSQL so every node shares them.
 */
export interface RateLimiter {
  /** Takes one token or throws 429 with the seconds until the next one (Retry-After). */
  take(key: string, what: string): Promise<void> | void;
}

/**
 * The failed-authentication limiter: `check` runs on every API request and must stay in memory;
 * `take` runs on a failed authentication only.
 */
export interface FailureLimiter {
  /** Throws 429 when the key may not try again yet, without taking a token. */
  check(key: string, what: string): void;
  /** Counts one failure; throws 429 when the key had none left. */
  take(key: string, what: string): Promise<void> | void;
}

export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** The 429 every limiter throws: the message names the limit, `retryAfterSeconds` becomes Retry-After. */
export function rateLimited(what: string, { limit, windowMs }: RateLimit, retryAfterSeconds: number): AppError {
  return new AppError(429, 'too.many.requests', `Too many ${what}: at most ${limit} per ${Math.round(windowMs / 1000)} s. Retry in ${retryAfterSeconds} s.`, 'RateLimited', {
    retryAfterSeconds,
  });
}

/** Seconds until a bucket holding `tokens` has one again. */
export function secondsUntilToken(tokens: number, { limit, windowMs }: RateLimit): number {
  return Math.max(1, Math.ceil((1 - tokens) / (limit / windowMs) / 1000));
}

export function createRateLimiter({ limit, windowMs, now = Date.now }: RateLimit & { now?: () => number }): RateLimiter & { take(key: string, what: string): void; check(key: string, what: string): void } {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const ratePerMs = limit / windowMs;
  const refill = (key: string, t: number) => {
    const b = buckets.get(key) ?? { tokens: limit, at: t };
    b.tokens = Math.min(limit, b.tokens + (t - b.at) * ratePerMs);
    b.at = t;
    return b;
  };
  const refuse = (b: { tokens: number }, what: string) => rateLimited(what, { limit, windowMs }, secondsUntilToken(b.tokens, { limit, windowMs }));
  return {
    /** Throws the same 429 as `take` when no token is left, without taking one. */
    check(key: string, what: string): void {
      const b = refill(key, now());
      if (b.tokens < 1) {
        buckets.set(key, b);
        throw refuse(b, what);
      }
      if (b.tokens >= limit) buckets.delete(key); // a full bucket is the default: keep memory to the addresses that failed
    },
    /** Takes one token or throws 429 with the seconds until the next one (Retry-After). */
    take(key: string, what: string): void {
      const b = refill(key, now());
      if (b.tokens < 1) {
        buckets.set(key, b);
        throw refuse(b, what);
      }
      b.tokens -= 1;
      buckets.set(key, b);
    },
  };
}
