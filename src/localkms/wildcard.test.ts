import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wildcardMatch } from './wildcard.js';

/** Reference semantics: the pattern as an anchored regular expression. */
function reference(pattern: string, value: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(value);
}

/** Reference semantics without a regular expression engine (which backtracks on long patterns). */
function byTable(pattern: string, value: string): boolean {
  // row[j]: the pattern so far matches value[0, j).
  let row = Array.from({ length: value.length + 1 }, (_, j) => j === 0);
  for (const t of pattern) {
    const next = new Array<boolean>(value.length + 1).fill(false);
    if (t === '*') next[0] = row[0]!;
    for (let j = 1; j <= value.length; j++) {
      next[j] = t === '*' ? row[j]! || next[j - 1]! : row[j - 1]! && (t === '?' || t === value[j - 1]);
    }
    row = next;
  }
  return row[value.length]!;
}

const alphabet = fc.constantFrom('a', 'b', 'k', 'm', 's', ':', '*', '?', '.', '/');
const text = fc.array(fc.constantFrom('a', 'b', 'k', 'm', 's', ':', '.', '/', '*', '?'), { maxLength: 12 }).map((a) => a.join(''));
const pattern = fc.array(alphabet, { maxLength: 10 }).map((a) => a.join(''));

describe('wildcardMatch', () => {
  it.each([
    ['kms:GenerateDataKey*', 'kms:GenerateDataKey', true],
    ['kms:GenerateDataKey*', 'kms:GenerateDataKeyWithoutPlaintext', true],
    ['kms:GenerateDataKey*', 'kms:Generate', false],
    ['kms:*', 'kms:Decrypt', true],
    ['*', '', true],
    ['', '', true],
    ['', 'x', false],
    ['kms:?ncrypt', 'kms:Encrypt', true],
    ['kms:?ncrypt', 'kms:ncrypt', false],
    ['org-*-eu', 'org-42-eu', true],
    ['org-*-eu', 'org-42-us', false],
    ['a*b*c', 'aXbYbZc', true],
    ['a*b*c', 'aXbYbZ', false],
  ])('%s vs %s → %s', (p, v, expected) => {
    expect(wildcardMatch(p, v)).toBe(expected);
  });

  it('folds case only when asked (IAM action names are case-insensitive, condition values are not)', () => {
    expect(wildcardMatch('KMS:decrypt', 'kms:Decrypt')).toBe(false);
    expect(wildcardMatch('KMS:decrypt', 'kms:Decrypt', true)).toBe(true);
  });

  it('agrees with an anchored regular expression on arbitrary patterns and values', () => {
    fc.assert(fc.property(pattern, text, (p, v) => wildcardMatch(p, v) === reference(p, v)), { numRuns: 2000 });
  });

  it('a value always matches itself (its own * and ? match themselves)', () => {
    fc.assert(fc.property(text, (v) => wildcardMatch(v, v)));
  });

  it('replacing any substring of a value by * still matches it', () => {
    fc.assert(
      fc.property(text, fc.nat(), fc.nat(), (v, a, b) => {
        const i = a % (v.length + 1);
        const j = i + (b % (v.length - i + 1));
        return wildcardMatch(`${v.slice(0, i)}*${v.slice(j)}`, v);
      }),
    );
  });

  it('agrees with a dynamic-programming reference on long patterns (many words of positions) with and without ?', () => {
    const long = (chars: string[], max: number) => fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''));
    const values = long(['a', 'b'], 150);
    fc.assert(fc.property(long(['a', 'b', '*', '?'], 150), values, (p, v) => wildcardMatch(p, v) === byTable(p, v)), { numRuns: 1500 });
    fc.assert(fc.property(long(['a', 'b', '*'], 150), values, (p, v) => wildcardMatch(p, v) === byTable(p, v)), { numRuns: 1500 });
    // A value made from the pattern itself, so long patterns match too, not only fail.
    fc.assert(
      fc.property(long(['a', 'b', '*', '?'], 150), fc.nat(), (p, seed) => {
        const v = p.replace(/[*?]/g, () => 'ab'.slice(0, (seed = (seed * 31 + 7) % 97) % 3));
        return wildcardMatch(p, v) === byTable(p, v);
      }),
      { numRuns: 1500 },
    );
  });

  it('stays fast on the patterns a 32 KB policy holds against an 8 KB context value, with and without ?', () => {
    const value = 'a'.repeat(8192);
    // The worst for a backtracking matcher: a part after a star about half as long as the value.
    const patterns = [
      `${'a*'.repeat(4000)}b`,
      `*${'a'.repeat(4096)}b*`,
      `*${'a'.repeat(4096)}b`,
      `*${'a'.repeat(4000)}b${'a'.repeat(96)}*`,
      `*${'?a'.repeat(2048)}b*`,
      `*${'a?'.repeat(2048)}b`,
      `${'?'.repeat(10)}*${'a'.repeat(4090)}b*`,
    ];
    const started = performance.now();
    for (const pattern of patterns) expect(wildcardMatch(pattern, value)).toBe(false);
    expect(wildcardMatch(`*${'a'.repeat(4096)}*`, value)).toBe(true);
    expect(wildcardMatch(`*${'?a'.repeat(2048)}*`, value)).toBe(true);
    // A backtracking matcher needs seconds here; this one a few milliseconds.
    expect(performance.now() - started).toBeLessThan(300);
  });

  it('stays fast on patterns built to make backtracking matchers explode', () => {
    const started = performance.now();
    expect(wildcardMatch(`${'*a'.repeat(200)}b`, 'a'.repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
