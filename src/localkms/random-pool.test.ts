import { describe, expect, it } from 'vitest';
import { randomBytesFromPool } from './random-pool.js';

describe('randomBytesFromPool', () => {
  it('gives buffers of the asked length, across refills and beyond the pool', () => {
    for (const n of [1, 12, 16, 32, 1024, 1025, 5000]) expect(randomBytesFromPool(n)).toHaveLength(n);
    // Enough draws to refill the 4 KiB pool several times.
    for (let i = 0; i < 1000; i++) expect(randomBytesFromPool(44)).toHaveLength(44);
  });

  it('never hands out the same bytes twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(randomBytesFromPool(16).toString('hex'));
    expect(seen.size).toBe(2000);
  });

  it('gives each caller a buffer of its own, which it may zero without touching the next', () => {
    const a = randomBytesFromPool(32);
    const b = randomBytesFromPool(32);
    const before = Buffer.from(b);
    a.fill(0);
    expect(b.equals(before)).toBe(true);
    expect(b.buffer === a.buffer && b.byteOffset === a.byteOffset).toBe(false);
  });
});
