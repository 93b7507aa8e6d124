import { AppError } from './errors.js';

/**
 * A token bucket per key (e.g. per organization), in memory on each node: `limit` calls per
 * `windowMs`, refilled continuously so a burst cannot reset at a window edge.
 */
export function createRateLimiter({ limit, windowMs, now = Date.now }: { limit: number; windowMs: number; now?: () => number }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const ratePerMs = limit / windowMs;
  return {
    /** Takes one token or throws 429 with the seconds until the next one (Retry-After). */
    take(key: string, what: string): void {
      const t = now();
      const b = buckets.get(key) ?? { tokens: limit, at: t };
      b.tokens = Math.min(limit, b.tokens + (t - b.at) * ratePerMs);
      b.at = t;
      if (b.tokens < 1) {
        buckets.set(key, b);
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000));
        throw new AppError(429, 'too.many.requests', `Too many ${what}: at most ${limit} per ${Math.round(windowMs / 1000)} s. Retry in ${retryAfterSeconds} s.`, 'RateLimited', {
          retryAfterSeconds,
        });
      }
      b.tokens -= 1;
      buckets.set(key, b);
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
