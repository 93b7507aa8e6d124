import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeAad } from './aad.js';
import { aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { unwrapConversationKey, wrapConversationKey } from './conversation-key.js';
import { EnvelopeError } from './errors.js';
import { createKeyCache } from './key-cache.js';
import { openValue, sealValue } from './value-envelope.js';

/** Bad input is refused with an error that says what is wrong — an operator reads these messages. */

const key = randomBytes(32);
const nonce = randomBytes(12);

describe('input checks of src/crypto', () => {
  it('AAD: non-strings, lone surrogates (in fields and label) and versions beyond a byte', () => {
    expect(() => encodeAad('L', 1, [7 as unknown as string])).toThrow(TypeError);
    expect(() => encodeAad('L', 1, [7 as unknown as string])).toThrow(/must be a string/);
    expect(() => encodeAad('L', 1, ['\uD800'])).toThrow(/not well-formed Unicode \(lone surrogate\)/);
    expect(() => encodeAad('bad\uDC00label', 1, [])).toThrow(/AAD label is not well-formed Unicode/);
    expect(() => encodeAad('L', 256, [])).toThrow(/AAD version must be one byte/);
  });

  it('AES-GCM: key, nonce and tag sizes', () => {
    const aad = Buffer.alloc(0);
    expect(() => aesGcmSeal(randomBytes(31), nonce, Buffer.from('x'), aad)).toThrow(/AES-GCM key must be a 32-byte Buffer/);
    expect(() => aesGcmSeal(Buffer.alloc(32), nonce, Buffer.from('x'), aad)).toThrow(/AES-GCM key is all zeros/);
    expect(() => aesGcmSeal(key, randomBytes(11), Buffer.from('x'), aad)).toThrow(/AES-GCM nonce must be a 12-byte Buffer/);
    const { ciphertext, tag } = aesGcmSeal(key, nonce, Buffer.from('x'), aad);
    expect(() => aesGcmOpen(randomBytes(16), nonce, ciphertext, tag, aad)).toThrow(/AES-GCM key must be a 32-byte Buffer/);
    expect(() => aesGcmOpen(key, randomBytes(16), ciphertext, tag, aad)).toThrow(/AES-GCM nonce must be 12 bytes/);
    expect(() => aesGcmOpen(key, nonce, ciphertext, tag.subarray(0, 12), aad)).toThrow(/AES-GCM tag must be 16 bytes/);
  });

  it('envelopes: empty and short inputs, a given nonce of the wrong size', () => {
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    expect(() => sealValue({ conversationKey: key, plaintext: Buffer.from('x'), nonce: randomBytes(8), ...where })).toThrow(/AES-GCM nonce must be a 12-byte Buffer/);
    expect(() => sealValue({ conversationKey: key, plaintext: 'x' as unknown as Buffer, ...where })).toThrow(/plaintext must be a Buffer/);
    expect(() => openValue({ conversationKey: key, envelope: Buffer.alloc(0), ...where })).toThrow(/value envelope is empty/);
    expect(() => openValue({ conversationKey: key, envelope: Buffer.from([1, 2, 3]), ...where })).toThrow(/value envelope must be at least 29 bytes, got 3/);
    const ids = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    expect(() => unwrapConversationKey({ dataKey: key, wrapped: Buffer.alloc(0), ...ids })).toThrow(/wrapped conversation key is empty/);
    expect(() => unwrapConversationKey({ dataKey: key, wrapped: Buffer.from([1, 2]), ...ids })).toThrow(/wrapped conversation key must be 61 bytes, got 2/);
  });

  it('envelopes: which key is bad, and which version this build cannot read', () => {
    const ids = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    const wrongSize = (what: string) => new EnvelopeError('InvalidKey', `${what} must be a 32-byte Buffer`);
    const evicted = (what: string) =>
      new EnvelopeError('InvalidKey', `${what} is all zeros: it was evicted from a key cache; fetch it again`);
    expect(() => wrapConversationKey({ dataKey: randomBytes(31), conversationKey: key, ...ids })).toThrow(wrongSize('org data key'));
    expect(() => wrapConversationKey({ dataKey: key, conversationKey: Buffer.alloc(32), ...ids })).toThrow(evicted('conversation key'));
    expect(() => unwrapConversationKey({ dataKey: Buffer.alloc(32), wrapped: Buffer.alloc(61, 1), ...ids })).toThrow(evicted('org data key'));
    expect(() => unwrapConversationKey({ dataKey: key, wrapped: Buffer.alloc(61, 2), ...ids })).toThrow(
      new EnvelopeError('UnsupportedVersion', 'wrapped conversation key has version 2; this build reads only 1'),
    );
    expect(() => sealValue({ conversationKey: randomBytes(33), plaintext: Buffer.from('x'), ...where })).toThrow(wrongSize('conversation key'));
    expect(() => openValue({ conversationKey: Buffer.alloc(32), envelope: Buffer.alloc(40, 1), ...where })).toThrow(evicted('conversation key'));
    expect(() => openValue({ conversationKey: key, envelope: Buffer.alloc(40, 0), ...where })).toThrow(
      new EnvelopeError('UnsupportedVersion', 'value envelope has version 0; this build reads only 1'),
    );
  });

  it('key cache: option bounds (1 is the smallest allowed), Buffer values, a NaN expiry', () => {
    const now = () => 0;
    expect(() => createKeyCache({ maxAgeMs: 0, maxEntries: 1, now })).toThrow(/maxAgeMs must be a positive finite number/);
    expect(() => createKeyCache({ maxAgeMs: 1, maxEntries: 0, now })).toThrow(/maxEntries must be an integer >= 1/);
    expect(() => createKeyCache({ maxAgeMs: 1, maxEntries: 1, maxUses: 0, now })).toThrow(/maxUses must be an integer >= 1/);
    const cache = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 1, maxUses: 1, now });
    expect(() => cache.set('k', 'nope' as unknown as Buffer)).toThrow(/key cache values must be Buffers/);
    expect(() => cache.set('k', randomBytes(32), { expiresAt: Number.NaN })).toThrow(/expiresAt must be a number/);
    cache.set('k', randomBytes(32), { expiresAt: 500 });
    expect(cache.get('k')).toBeDefined();
    expect(cache.get('k')).toBeUndefined(); // maxUses 1: gone after its one use
    const twice = createKeyCache<string>({ maxAgeMs: 1000, maxEntries: 1, maxUses: 2, now });
    twice.set('k', randomBytes(32));
    expect(twice.get('k')).toBeDefined();
    expect(twice.get('k')).toBeDefined();
    expect(twice.get('k')).toBeUndefined();
  });
});
