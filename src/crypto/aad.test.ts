import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AAD_LABEL_CONVERSATION_KEY,
  AAD_LABEL_VALUE,
  conversationKeyAad,
  encodeAad,
  hasNoLoneSurrogate,
  valueAad,
} from './aad.js';

// An independent parser of the documented layout. encode followed by parse giving back the exact
// input proves the encoding injective: two tuples with equal bytes would parse to the same tuple.
function parseAad(bytes: Buffer): { label: string; version: number; fields: string[] } {
  let at = 0;
  const take = (n: number): Buffer => {
    if (at + n > bytes.length) throw new Error('truncated AAD');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const lp = (): string => take(take(4).readUInt32BE(0)).toString('utf8');
  const label = lp();
  const version = take(1).readUInt8(0);
  const fields: string[] = [];
  while (at < bytes.length) fields.push(lp());
  return { label, version, fields };
}

const anyString = fc.string({ unit: 'binary', maxLength: 64, size: 'max' });
const tuple = fc.array(anyString, { minLength: 0, maxLength: 5 });
const label = fc.constantFrom(AAD_LABEL_CONVERSATION_KEY, AAD_LABEL_VALUE, '', 'x');
const version = fc.integer({ min: 0, max: 255 });
// Raw UTF-16 code units with surrogates over-represented, so lone ones, pairs and reversed pairs all
// turn up (a 'binary' unit yields whole code points only, i.e. never a lone surrogate).
const codeUnit = fc
  .oneof(fc.integer({ min: 0xd800, max: 0xdbff }), fc.integer({ min: 0xdc00, max: 0xdfff }), fc.integer({ min: 0, max: 0xffff }))
  .map((u) => String.fromCharCode(u));
const nativeIsWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

describe('aad', () => {
  it('lays out label, version and fields exactly as documented', () => {
    expect(encodeAad('L', 1, ['ab', 'c']).toString('hex')).toBe(
      '00000001' + '4c' + '01' + '00000002' + '6162' + '00000001' + '63',
    );
    expect(encodeAad('L', 1, ['a', 'bc']).toString('hex')).toBe(
      '00000001' + '4c' + '01' + '00000001' + '61' + '00000002' + '6263',
    );
    expect(encodeAad('L', 2, ['', 'ü']).toString('hex')).toBe('00000001' + '4c' + '02' + '00000000' + '00000002' + 'c3bc');
  });

  it('parses back to exactly its input (so it is injective)', () => {
    fc.assert(
      fc.property(label, version, tuple, (l, v, fields) => {
        expect(parseAad(encodeAad(l, v, fields))).toEqual({ label: l, version: v, fields });
      }),
      { numRuns: 500 },
    );
  });

  it('gives distinct bytes to distinct tuples', () => {
    expect(encodeAad('L', 1, ['ab', 'c']).equals(encodeAad('L', 1, ['a', 'bc']))).toBe(false);
    expect(encodeAad('L', 1, ['a', '']).equals(encodeAad('L', 1, ['a']))).toBe(false);
    expect(encodeAad('L', 1, ['']).equals(encodeAad('L', 1, []))).toBe(false);
    fc.assert(
      fc.property(fc.tuple(label, version, tuple), fc.tuple(label, version, tuple), (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        expect(encodeAad(...a).equals(encodeAad(...b))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('never lets a wrapped-key AAD equal a value AAD', () => {
    fc.assert(
      fc.property(anyString, anyString, anyString, anyString, anyString, anyString, (o1, c1, k, o2, c2, n) => {
        const wrapped = conversationKeyAad(1, { orgId: o1, conversationId: c1, dataKeyId: k });
        const value = valueAad(1, { orgId: o2, conversationId: c2, name: n });
        expect(wrapped.equals(value)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses strings with lone surrogates (they have no UTF-8 form and would collide with U+FFFD)', () => {
    expect(() => encodeAad('L', 1, ['\uD800'])).toThrow(RangeError);
    expect(() => encodeAad('L', 1, ['a\uDC00b'])).toThrow(RangeError);
    expect(() => valueAad(1, { orgId: 'o', conversationId: 'c', name: 'x\uDBFF' })).toThrow(RangeError);
    expect(encodeAad('L', 1, ['\uFFFD']).toString('hex')).toBe('000000014c0100000003efbfbd');
    expect(encodeAad('L', 1, ['\uD83D\uDD11']).toString('hex')).toBe('000000014c0100000004f09f9491');
  });

  it('the fallback lone-surrogate check (runtimes without isWellFormed) agrees with String.prototype.isWellFormed', () => {
    const cases: [string, boolean][] = [
      ['', true],
      ['abc', true],
      ['\uD83D\uDD11', true], // a pair alone
      ['\uD83D\uDD11ab', true], // a pair at the start
      ['ab\uD83D\uDD11', true], // a pair at the end
      ['\uD800', false], // lone high
      ['a\uDBFFb', false],
      ['ab\uD800', false], // lone high at the end
      ['\uDC00', false], // lone low
      ['a\uDFFFb', false],
      ['\uDC00ab', false], // lone low at the start
      ['\uDC00\uD800', false], // low then high: two lone surrogates, not a pair
      ['\uD800\uD800\uDC00', false], // a lone high before a pair
      ['\uD800\uDC00\uDC00', false], // a lone low after a pair
    ];
    for (const [s, wellFormed] of cases) {
      expect(hasNoLoneSurrogate(s), JSON.stringify(s)).toBe(wellFormed);
      expect(nativeIsWellFormed(s), JSON.stringify(s)).toBe(wellFormed);
    }
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: codeUnit, maxLength: 16 }), anyString), (s) => {
        expect(hasNoLoneSurrogate(s)).toBe(nativeIsWellFormed(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a version that is not one byte, and names the field it refuses', () => {
    for (const v of [256, -1, 1.5]) {
      expect(() => encodeAad('L', v, [])).toThrow(new RangeError('AAD version must be one byte'));
    }
    expect(() => encodeAad('L', 1, ['a', 'b', 'c\uD800'])).toThrow(
      new RangeError('AAD field 2 is not well-formed Unicode (lone surrogate); reject it at the API boundary'),
    );
    expect(() => encodeAad('L', 1, ['a', 'b', 3 as unknown as string])).toThrow(new TypeError('AAD field 2 must be a string'));
  });
});
