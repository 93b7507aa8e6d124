// A bounded LRU for plaintext keys (org data keys, conversation keys).
//
// Bounds: an entry leaves at min(insertedAt + maxAgeMs, opts.expiresAt), after maxUses get() hits,
// or when maxEntries is exceeded (least recently used first). expiresAt lets a conversation key
// never outlive the org data key that unwrapped it.
//
// Ownership. set() takes the Buffer it is given: the cache keeps that very Buffer and zeroes it
// (.fill(0)) the moment it leaves, whatever the reason (expiry, LRU overflow, max uses, overwrite,
// delete, deleteWhere, clear). A Buffer that is already expired when set is zeroed at once. So:
// use the key before you set it, or set a copy. Never set one Buffer under two keys.
//
// get() returns a fresh copy, not the stored Buffer. Handing out the stored Buffer would save a
// 32-byte copy, but async callers hold keys across awaits; an eviction in between would zero the
// key under their feet, and the last permitted use (maxUses) would zero what get() just returned.
// The copy is its own allocation (not the shared Buffer pool), so a careful caller can zero it.
// aes-gcm.ts additionally refuses all-zero keys, so a use-after-eviction fails closed.
//
// No timers: the clock is injected and expiry is checked on access. Expired entries that are
// never touched again stay (zeroable, unreadable) until prune(), overflow, or clear().

import { Buffer } from 'node:buffer';

export interface KeyCacheOptions {
  maxAgeMs: number;
  maxEntries: number;
  /** get() hits allowed per entry; the entry is evicted on the last one. Unset: unlimited. */
  maxUses?: number | undefined;
  now: () => number;
  /** Told of every lookup's outcome and every entry that leaves (for metrics); never sees keys or values. */
  observer?: CacheObserver | undefined;
}

export interface CacheObserver {
  hit(): void;
  miss(): void;
  evicted(count: number): void;
}

export interface KeyCache<K extends string> {
  /** A copy of the key, or undefined if absent, expired or used up. */
  get(key: K): Buffer | undefined;
  /** Takes ownership of value (see above). */
  set(key: K, value: Buffer, opts?: { expiresAt?: number | undefined }): void;
  delete(key: K): void;
  /** Evicts every entry whose key matches, e.g. all keys of one org. Returns how many. */
  deleteWhere(predicate: (key: K) => boolean): number;
  /** Evicts every expired entry. Returns how many. */
  prune(): number;
  clear(): void;
  /** Entries held, including expired ones not yet pruned. */
  readonly size: number;
}

interface Entry {
  value: Buffer;
  expiresAt: number;
  uses: number;
}

export function createKeyCache<K extends string>(options: KeyCacheOptions): KeyCache<K> {
  const { maxAgeMs, maxEntries, maxUses, now, observer } = options;
  if (!(maxAgeMs > 0) || !Number.isFinite(maxAgeMs)) throw new RangeError('maxAgeMs must be a positive finite number');
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be an integer >= 1');
  if (maxUses !== undefined && (!Number.isInteger(maxUses) || maxUses < 1)) {
    throw new RangeError('maxUses must be an integer >= 1');
  }

  // A Map iterates in insertion order; re-inserting on every hit makes that the LRU order.
  const entries = new Map<K, Entry>();

  function evict(key: K, entry: Entry): void {
    entries.delete(key);
    entry.value.fill(0);
    observer?.evicted(1);
  }

  function pruneAt(t: number): number {
    let n = 0;
    for (const [key, entry] of entries) {
      if (t >= entry.expiresAt) {
        evict(key, entry);
        n++;
      }
    }
    return n;
  }

  return {
    get(key) {
      const entry = entries.get(key);
      if (entry === undefined) {
        observer?.miss();
        return undefined;
      }
      if (now() >= entry.expiresAt) {
        evict(key, entry);
        observer?.miss();
        return undefined;
      }
      observer?.hit();
      entry.uses++;
      const copy = Buffer.allocUnsafeSlow(entry.value.length); // its own memory (never the shared pool), filled by the copy below
      entry.value.copy(copy);
      if (maxUses !== undefined && entry.uses >= maxUses) {
        evict(key, entry);
      } else {
        entries.delete(key);
        entries.set(key, entry);
      }
      return copy;
    },

    set(key, value, opts) {
      if (!Buffer.isBuffer(value)) throw new TypeError('key cache values must be Buffers');
      const cap = opts?.expiresAt;
      if (cap !== undefined && Number.isNaN(cap)) throw new RangeError('expiresAt must be a number');
      const t = now();
      const expiresAt = Math.min(t + maxAgeMs, cap ?? Infinity);

      const old = entries.get(key);
      if (old !== undefined) {
        entries.delete(key);
        if (old.value !== value) old.value.fill(0); // re-setting the same Buffer must not wipe it
      }
      if (t >= expiresAt) {
        value.fill(0);
        return;
      }
      entries.set(key, { value, expiresAt, uses: 0 });

      if (entries.size > maxEntries) pruneAt(t); // drop the dead before evicting the living
      for (const [oldest, entry] of entries) {
        if (entries.size <= maxEntries) break;
        evict(oldest, entry);
      }
    },

    delete(key) {
      const entry = entries.get(key);
      if (entry !== undefined) evict(key, entry);
    },

    deleteWhere(predicate) {
      let n = 0;
      for (const [key, entry] of entries) {
        if (predicate(key)) {
          evict(key, entry);
          n++;
        }
      }
      return n;
    },

    prune() {
      return pruneAt(now());
    },

    clear() {
      for (const entry of entries.values()) entry.value.fill(0);
      if (entries.size > 0) observer?.evicted(entries.size);
      entries.clear();
    },

    get size() {
      return entries.size;
    },
  };
}
