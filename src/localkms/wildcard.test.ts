import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wildcardMatch } from './wildcard.js';

/** Reference semantics: the pattern as an anchored regular expression. */
function reference(pattern: string, value: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(value);
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

  it('stays fast on patterns built to make backtracking matchers explode', () => {
    const started = performance.now();
    expect(wildcardMatch(`${'*a'.repeat(200)}b`, 'a'.repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
