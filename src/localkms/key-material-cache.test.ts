import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyMaterialCache } from './key-material-cache.js';

describe('KeyMaterialCache', () => {
  it('opens the material once per key and hands out the same buffer afterwards', () => {
    const cache = new KeyMaterialCache();
    const sealed = randomBytes(60);
    let opened = 0;
    const open = () => {
      opened++;
      return Buffer.alloc(32, 7);
    };
    const first = cache.get('k1', sealed, open);
    const second = cache.get('k1', Buffer.from(sealed), open);
    expect(opened).toBe(1);
    expect(second).toBe(first);
  });

  it('serves an entry only for a row carrying the very sealed bytes it was opened from', () => {
    const cache = new KeyMaterialCache();
    const first = cache.get('k1', Buffer.alloc(60, 1), () => Buffer.alloc(32, 1));
    const other = cache.get('k1', Buffer.alloc(60, 2), () => Buffer.alloc(32, 2));
    expect(other.equals(Buffer.alloc(32, 2))).toBe(true);
    // The replaced material is zeroed, not left lying around.
    expect(first.equals(Buffer.alloc(32, 0))).toBe(true);
  });

  it('does not keep anything when opening fails', () => {
    const cache = new KeyMaterialCache();
    expect(() =>
      cache.get('k1', Buffer.alloc(60), () => {
        throw new Error('wrong root key');
      }),
    ).toThrow('wrong root key');
    expect(cache.size).toBe(0);
  });

  it('zeroes material it forgets, evicts (oldest first, when full) or clears', () => {
    const cache = new KeyMaterialCache(2);
    const a = cache.get('a', Buffer.alloc(60, 1), () => Buffer.alloc(32, 1));
    const b = cache.get('b', Buffer.alloc(60, 2), () => Buffer.alloc(32, 2));
    const c = cache.get('c', Buffer.alloc(60, 3), () => Buffer.alloc(32, 3));
    expect(cache.size).toBe(2);
    expect(a.every((byte) => byte === 0)).toBe(true);
    cache.forget('b');
    expect(b.every((byte) => byte === 0)).toBe(true);
    cache.clear();
    expect(c.every((byte) => byte === 0)).toBe(true);
    expect(cache.size).toBe(0);
  });
});
