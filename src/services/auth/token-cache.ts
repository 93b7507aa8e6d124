// Verified bearer tokens, remembered briefly so a request does not cost a database lookup for its
// token. The bound is the guarantee: an entry is used for at most `maxAgeMs` after the lookup that
// produced it, so a token revoked (or its principal changed) in the database stops working on every
// node within that time. Only successful verifications are kept: a token that did not verify is
// looked up again on its next use, so a token created a moment ago works at once.

/** The largest lifetime the configuration accepts (docs/OPERATIONS.md). */
export const MAX_TOKEN_CACHE_AGE_MS = 5_000;

export interface TokenCache<T> {
  get(tokenHash: string): T | undefined;
  set(tokenHash: string, value: T): void;
  clear(): void;
  readonly size: number;
}

export function createTokenCache<T>(opts: { maxAgeMs: number; maxEntries?: number; clock?: () => number }): TokenCache<T> {
  const { maxAgeMs, maxEntries = 10_000, clock = Date.now } = opts;
  if (!(maxAgeMs >= 0 && maxAgeMs <= MAX_TOKEN_CACHE_AGE_MS)) throw new RangeError(`token cache max age must be 0-${MAX_TOKEN_CACHE_AGE_MS} ms, got ${maxAgeMs}`);
  // Keyed by the token's SHA-256, never the token. Insertion order = age order, since an entry is never refreshed in place.
  const entries = new Map<string, { value: T; expiresAt: number }>();
  return {
    get(tokenHash) {
      const entry = entries.get(tokenHash);
      if (!entry) return undefined;
      if (clock() >= entry.expiresAt) {
        entries.delete(tokenHash);
        return undefined;
      }
      return entry.value;
    },
    set(tokenHash, value) {
      if (maxAgeMs === 0) return;
      entries.delete(tokenHash);
      entries.set(tokenHash, { value, expiresAt: clock() + maxAgeMs });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
    clear: () => entries.clear(),
    get size() {
      return entries.size;
    },
  };
}
