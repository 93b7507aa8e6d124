import { AppError } from './errors.js';

/**
 * A token bucket per key (e.g. per organization), in memory on each node: `limit` calls per
 * `windowMs`, refilled continuously so a burst cannot reset at a window edge.
 */
export function createRateLimiter({ limit, windowMs, now = Date.now }: { limit: number; windowMs: number; now?: () => number }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const ratePerMs = limit / windowMs;
  const refill = (key: string, t: number) => {
    const b = buckets.get(key) ?? { tokens: limit, at: t };
    b.tokens = Math.min(limit, b.tokens + (t - b.at) * ratePerMs);
    b.at = t;
    return b;
  };
  const refuse = (b: { tokens: number }, what: string) => {
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000));
    return new AppError(429, 'too.many.requests', `Too many ${what}: at most ${limit} per ${Math.round(windowMs / 1000)} s. Retry in ${retryAfterSeconds} s.`, 'RateLimited', {
      retryAfterSeconds,
    });
  };
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

export type RateLimiter = ReturnType<typeof createRateLimiter>;
