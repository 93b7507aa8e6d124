import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyCache } from './key-cache.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const isZero = (b: Buffer) => b.every((x) => x === 0);

/** An observer that records the counts it is told of evictions (what a metrics adapter sums). */
function evictionLog() {
  const counts: number[] = [];
  return { counts, observer: { hit() {}, miss() {}, evicted: (n: number) => void counts.push(n) } };
}

const key = () => randomBytes(32);

describe('key cache', () => {
  it('returns a copy of what was set, not the stored buffer', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const k = key();
    const expected = Buffer.from(k);
    cache.set('a', k);
    const got = cache.get('a')!;
    expect(got.equals(expected)).toBe(true);
    expect(got).not.toBe(k);
    got.fill(0); // the caller wiping its copy must not wipe the cache
    expect(cache.get('a')!.equals(expected)).toBe(true);
    expect(cache.get('missing')).toBeUndefined();
  });

  it('expires entries at insertedAt + maxAgeMs and zeroes them', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const k = key();
    cache.set('a', k);
    c.advance(999);
    expect(cache.get('a')).toBeDefined();
    expect(isZero(k)).toBe(false);
    c.advance(1);
    expect(cache.get('a')).toBeUndefined();
    expect(isZero(k)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('does not extend the age on access', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    cache.set('a', key());
    for (let i = 0; i < 9; i++) {
      c.advance(100);
      expect(cache.get('a')).toBeDefined();
    }
    c.advance(100);
    expect(cache.get('a')).toBeUndefined();
  });

  it('caps the lifetime at expiresAt (a conversation key never outlives its data key)', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 60_000, maxEntries: 10, now: c.now });
    const k = key();
    cache.set('conv', k, { expiresAt: c.now() + 500 });
    c.advance(499);
    expect(cache.get('conv')).toBeDefined();
    c.advance(1);
    expect(cache.get('conv')).toBeUndefined();
    expect(isZero(k)).toBe(true);

    // expiresAt later than the max age does not extend it
    const k2 = key();
    cache.set('late', k2, { expiresAt: c.now() + 10 * 60_000 });
    c.advance(60_000);
    expect(cache.get('late')).toBeUndefined();
    expect(isZero(k2)).toBe(true);
  });

  it('zeroes and drops a key that is already expired when set', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const k = key();
    cache.set('a', k, { expiresAt: c.now() });
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
    expect(isZero(k)).toBe(true);
    expect(() => cache.set('b', key(), { expiresAt: Number.NaN })).toThrow(RangeError);
  });

  it('evicts the least recently used entry on overflow, and zeroes it', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 3, now: c.now });
    const a = key();
    const b = key();
    cache.set('a', a);
    cache.set('b', b);
    cache.set('c', key());
    expect(cache.get('a')).toBeDefined(); // a is now most recent; b is least recent
    cache.set('d', key());
    expect(cache.size).toBe(3);
    expect(isZero(b)).toBe(true);
    expect(cache.get('b')).toBeUndefined();
    expect(isZero(a)).toBe(false);
    cache.set('e', key()); // order is now c, a, d → c goes
    expect(cache.get('c')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('d')).toBeDefined();
    expect(cache.get('e')).toBeDefined();
  });

  it('on overflow drops expired entries before evicting a live one', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 2, now: c.now });
    const oldest = key();
    const shortLived = key();
    cache.set('oldest', oldest);
    cache.set('short', shortLived, { expiresAt: c.now() + 10 });
    c.advance(10);
    cache.set('new', key());
    expect(isZero(shortLived)).toBe(true);
    expect(isZero(oldest)).toBe(false);
    expect(cache.get('oldest')).toBeDefined();
  });

  it('set() below the bound does not scan the cache: an expired entry stays counted until prune()', () => {
    const c = clock();
    const log = evictionLog();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 2, now: c.now, observer: log.observer });
    cache.set('a', key());
    c.advance(1000);
    cache.set('b', key()); // two entries: at the bound, not over it
    expect(cache.size).toBe(2);
    expect(log.counts).toEqual([]);
    expect(cache.prune()).toBe(1);
    expect(log.counts).toEqual([1]);
  });

  it('allows exactly maxUses get() hits, then evicts and zeroes', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, maxUses: 3, now: c.now });
    const k = key();
    const expected = Buffer.from(k);
    cache.set('a', k);
    expect(cache.get('a')!.equals(expected)).toBe(true);
    expect(cache.get('a')!.equals(expected)).toBe(true);
    const last = cache.get('a')!;
    expect(last.equals(expected)).toBe(true); // the last use still gets the real key
    expect(isZero(k)).toBe(true);
    expect(cache.get('a')).toBeUndefined();
    cache.get('missing'); // misses do not count
  });

  it('zeroes the old buffer on overwrite, but not when the same buffer is set again', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const first = key();
    const second = key();
    cache.set('a', first);
    cache.set('a', second);
    expect(isZero(first)).toBe(true);
    expect(cache.get('a')!.equals(second)).toBe(true);
    cache.set('a', second);
    expect(isZero(second)).toBe(false);
    expect(cache.size).toBe(1);
  });

  it('overwriting restarts the age and the use count', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, maxUses: 2, now: c.now });
    cache.set('a', key());
    cache.get('a');
    c.advance(900);
    cache.set('a', key());
    c.advance(900);
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('a')).toBeUndefined();
  });

  it('zeroes on delete and clear', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const a = key();
    const b = key();
    const d = key();
    cache.set('a', a);
    cache.set('b', b);
    cache.set('d', d);
    cache.delete('a');
    cache.delete('never-set');
    expect(isZero(a)).toBe(true);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(2);
    cache.clear();
    expect(isZero(b)).toBe(true);
    expect(isZero(d)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('clear() reports what it dropped to the observer in one count, and nothing when empty', () => {
    const c = clock();
    const log = evictionLog();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now, observer: log.observer });
    cache.clear();
    expect(log.counts).toEqual([]);
    for (const k of ['a', 'b', 'c']) cache.set(k, key());
    cache.clear();
    expect(log.counts).toEqual([3]);
    cache.clear();
    expect(log.counts).toEqual([3]);
  });

  it('deleteWhere evicts and zeroes exactly the matching entries', () => {
    const c = clock();
    const cache = createKeyCache<`${string}:${string}`>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const bufs = {
      'org1:c1': key(),
      'org1:c2': key(),
      'org2:c1': key(),
      'org10:c1': key(),
    } as const;
    for (const [k, v] of Object.entries(bufs)) cache.set(k as `${string}:${string}`, v);
    expect(cache.deleteWhere((k) => k.startsWith('org1:'))).toBe(2);
    expect(isZero(bufs['org1:c1'])).toBe(true);
    expect(isZero(bufs['org1:c2'])).toBe(true);
    expect(isZero(bufs['org2:c1'])).toBe(false);
    expect(isZero(bufs['org10:c1'])).toBe(false);
    expect(cache.size).toBe(2);
    expect(cache.get('org10:c1')).toBeDefined();
  });

  it('prune() evicts and zeroes every expired entry', () => {
    const c = clock();
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 10, now: c.now });
    const a = key();
    const b = key();
    cache.set('a', a);
    c.advance(500);
    cache.set('b', b);
    c.advance(500);
    expect(cache.size).toBe(2); // expired but untouched entries are still held...
    expect(cache.prune()).toBe(1); // ...until pruned
    expect(isZero(a)).toBe(true);
    expect(isZero(b)).toBe(false);
    expect(cache.size).toBe(1);
  });

  it('validates its options', () => {
    const now = () => 0;
    expect(() => createKeyCache({ maxAgeMs: 0, maxEntries: 1, now })).toThrow(RangeError);
    expect(() => createKeyCache({ maxAgeMs: Infinity, maxEntries: 1, now })).toThrow(RangeError);
    expect(() => createKeyCache({ maxAgeMs: 1, maxEntries: 0, now })).toThrow(RangeError);
    expect(() => createKeyCache({ maxAgeMs: 1, maxEntries: 1.5, now })).toThrow(RangeError);
    expect(() => createKeyCache({ maxAgeMs: 1, maxEntries: 1, maxUses: 0, now })).toThrow(RangeError);
  });
});
