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
/** Any string, lone surrogates included (the code must refuse those, not mis-encode them). */
export const arbitraryId = fc.string({ unit: 'binary', maxLength: 40 });
