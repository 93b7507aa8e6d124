// Shared by the crypto tests only (not exported from index.ts).
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { EnvelopeError, type EnvelopeErrorCode } from './errors.js';

/** The EnvelopeError code `fn` throws, or undefined if it returns; any other error propagates. */
export function envelopeErrorCode(fn: () => unknown): EnvelopeErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnvelopeError) return err.code;
    throw err;
  }
  return undefined;
}

/** A copy of `bytes` with one bit flipped. */
export function flipBit(bytes: Buffer, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/** Any 32-byte key but the all-zero one (which the code refuses by design). */
export const arbitraryKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)).filter((b) => b.some((x) => x !== 0));
/**
 * Any well-formed string (every code point, astral ones as surrogate pairs) from empty to 128 UTF-16
 * units; `size: 'max'` so the lengths really spread over that range instead of staying near 10.
 */
export const arbitraryId = fc.string({ unit: 'binary', maxLength: 128, size: 'max' });
/** A well-formed string with one lone surrogate somewhere in it: no UTF-8 form, so the code must refuse it. */
export const arbitraryIdWithLoneSurrogate = fc
  .tuple(fc.string({ unit: 'binary', maxLength: 20 }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ unit: 'binary', maxLength: 20 }))
  .map(([before, surrogate, after]) => before + String.fromCharCode(surrogate) + after);
