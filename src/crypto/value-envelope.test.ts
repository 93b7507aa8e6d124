import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { envelopeErrorCode, flipBit, arbitraryKey, arbitraryId, arbitraryIdWithLoneSurrogate } from './test-helpers.js';
import { openValue, sealValue, VALUE_ENVELOPE_OVERHEAD } from './value-envelope.js';

const key = arbitraryKey;
const id = arbitraryId;
const ids = fc.record({ orgId: id, conversationId: id, name: id });
const textPlaintext = fc.string({ unit: 'binary', maxLength: 32_000, size: 'medium' }).map((s) => Buffer.from(s, 'utf8'));
// size 'max': lengths spread over 0-4096 (the default size keeps them under a dozen bytes, one AES block).
const bytePlaintext = fc.uint8Array({ maxLength: 4096, size: 'max' }).map((b) => Buffer.from(b));
const smallPlaintext = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));

describe('value envelope', () => {
  it('round-trips any UTF-8 text under any org, conversation and name', () => {
    fc.assert(
      fc.property(key, ids, textPlaintext, (conversationKey, where, plaintext) => {
        const envelope = sealValue({ conversationKey, plaintext, ...where });
        expect(envelope.length).toBe(plaintext.length + VALUE_ENVELOPE_OVERHEAD);
        expect(openValue({ conversationKey, envelope, ...where }).equals(plaintext)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips long text up to the 32,000-character limit', () => {
    fc.assert(
      fc.property(key, ids, fc.string({ unit: 'binary', minLength: 1000, maxLength: 32_000, size: 'max' }), (k, where, s) => {
        const plaintext = Buffer.from(s, 'utf8');
        expect(openValue({ conversationKey: k, envelope: sealValue({ conversationKey: k, plaintext, ...where }), ...where }).toString('utf8')).toBe(s);
      }),
      { numRuns: 10 },
    );
    const k = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    for (const s of ['x'.repeat(32_000), '👋'.repeat(16_000), '\u0800'.repeat(32_000)]) {
      const plaintext = Buffer.from(s, 'utf8');
      expect(openValue({ conversationKey: k, envelope: sealValue({ conversationKey: k, plaintext, ...where }), ...where }).toString('utf8')).toBe(s);
    }
  });

  it('round-trips arbitrary bytes', () => {
    fc.assert(
      fc.property(key, ids, bytePlaintext, (conversationKey, where, plaintext) => {
        const envelope = sealValue({ conversationKey, plaintext, ...where });
        expect(openValue({ conversationKey, envelope, ...where }).equals(plaintext)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips the block-boundary sizes 0, 15, 16, 17 and 4096 bytes', () => {
    const conversationKey = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    for (const n of [0, 1, 15, 16, 17, 31, 32, 33, 4095, 4096]) {
      const plaintext = randomBytes(n);
      const envelope = sealValue({ conversationKey, plaintext, ...where });
      expect(envelope.length).toBe(n + VALUE_ENVELOPE_OVERHEAD);
      expect(openValue({ conversationKey, envelope, ...where }).equals(plaintext)).toBe(true);
    }
  });

  it('refuses an org, conversation or name with a lone surrogate, sealing and opening', () => {
    const conversationKey = randomBytes(32);
    const plaintext = Buffer.from('v');
    const good = { orgId: 'o', conversationId: 'c', name: 'n' };
    const envelope = sealValue({ conversationKey, plaintext, ...good });
    fc.assert(
      fc.property(arbitraryIdWithLoneSurrogate, fc.constantFrom('orgId', 'conversationId', 'name'), (bad, field) => {
        const where = { ...good, [field]: bad };
        expect(() => sealValue({ conversationKey, plaintext, ...where })).toThrow();
        expect(() => openValue({ conversationKey, envelope, ...where })).toThrow();
      }),
      { numRuns: 100 },
    );
  });

  it('draws a fresh nonce for every seal', () => {
    const conversationKey = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', name: 'n', plaintext: Buffer.from('same') };
    const a = sealValue({ conversationKey, ...where });
    const b = sealValue({ conversationKey, ...where });
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(1, 13).equals(Buffer.alloc(12))).toBe(false);
  });

  it('rejects any single-bit flip anywhere in the envelope', () => {
    fc.assert(
      fc.property(
        key,
        ids,
        smallPlaintext.chain((p) => fc.tuple(fc.constant(p), fc.nat({ max: (p.length + VALUE_ENVELOPE_OVERHEAD) * 8 - 1 }))),
        (conversationKey, where, [plaintext, bit]) => {
          const envelope = flipBit(sealValue({ conversationKey, plaintext, ...where }), bit);
          expect(envelopeErrorCode(() => openValue({ conversationKey, envelope, ...where }))).toBeDefined();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects every single-bit flip of one envelope (exhaustive)', () => {
    const conversationKey = randomBytes(32);
    const where = { orgId: 'org', conversationId: 'conv', name: 'cardNumber' };
    const envelope = sealValue({ conversationKey, plaintext: Buffer.from('4111 1111 1111 1111'), ...where });
    for (let bit = 0; bit < envelope.length * 8; bit++) {
      const code = envelopeErrorCode(() => openValue({ conversationKey, envelope: flipBit(envelope, bit), ...where }));
      expect(code).toBe(bit < 8 ? 'UnsupportedVersion' : 'AuthenticationFailed');
    }
  });

  it('rejects any truncation, from either end, and any extension', () => {
    fc.assert(
      fc.property(key, ids, smallPlaintext, fc.nat(), fc.boolean(), (conversationKey, where, plaintext, n, fromFront) => {
        const envelope = sealValue({ conversationKey, plaintext, ...where });
        const cut = 1 + (n % envelope.length); // 1..length bytes removed
        const truncated = fromFront ? envelope.subarray(cut) : envelope.subarray(0, envelope.length - cut);
        expect(envelopeErrorCode(() => openValue({ conversationKey, envelope: truncated, ...where }))).toBeDefined();
        const extended = Buffer.concat([envelope, Buffer.alloc(1 + (n % 16))]);
        expect(envelopeErrorCode(() => openValue({ conversationKey, envelope: extended, ...where }))).toBe('AuthenticationFailed');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an envelope moved to another attribute, conversation or org', () => {
    fc.assert(
      fc.property(key, ids, ids, smallPlaintext, (conversationKey, from, to, plaintext) => {
        fc.pre(from.orgId !== to.orgId || from.conversationId !== to.conversationId || from.name !== to.name);
        const envelope = sealValue({ conversationKey, plaintext, ...from });
        expect(envelopeErrorCode(() => openValue({ conversationKey, envelope, ...to }))).toBe('AuthenticationFailed');
      }),
      { numRuns: 300 },
    );
    const conversationKey = randomBytes(32);
    const where = { orgId: 'org-a', conversationId: 'conv-1', name: 'ab' };
    const envelope = sealValue({ conversationKey, plaintext: Buffer.from('secret'), ...where });
    for (const moved of [
      { ...where, name: 'cvv' },
      { ...where, conversationId: 'conv-2' },
      { ...where, orgId: 'org-b' },
      { orgId: 'org-', conversationId: 'aconv-1', name: 'ab' }, // same concatenation, other split
    ]) {
      expect(envelopeErrorCode(() => openValue({ conversationKey, envelope, ...moved }))).toBe('AuthenticationFailed');
    }
  });

  it('rejects the wrong conversation key', () => {
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    const envelope = sealValue({ conversationKey: randomBytes(32), plaintext: Buffer.from('x'), ...where });
    expect(envelopeErrorCode(() => openValue({ conversationKey: randomBytes(32), envelope, ...where }))).toBe(
      'AuthenticationFailed',
    );
  });

  it('classifies malformed input', () => {
    const conversationKey = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    const open = (envelope: Buffer) => envelopeErrorCode(() => openValue({ conversationKey, envelope, ...where }));
    expect(open(Buffer.alloc(0))).toBe('MalformedEnvelope');
    expect(open(Buffer.of(0x01))).toBe('MalformedEnvelope');
    expect(open(Buffer.alloc(28, 0x01))).toBe('MalformedEnvelope');
    expect(open(Buffer.alloc(29, 0x01))).toBe('AuthenticationFailed');
    expect(open(Buffer.of(0x02))).toBe('UnsupportedVersion');
    expect(open(Buffer.alloc(100, 0xff))).toBe('UnsupportedVersion');
  });

  it('rejects invalid conversation keys', () => {
    const where = { orgId: 'o', conversationId: 'c', name: 'n' };
    for (const conversationKey of [Buffer.alloc(0), randomBytes(16), randomBytes(33), Buffer.alloc(32)]) {
      expect(envelopeErrorCode(() => sealValue({ conversationKey, plaintext: Buffer.from('x'), ...where }))).toBe('InvalidKey');
      expect(envelopeErrorCode(() => openValue({ conversationKey, envelope: Buffer.alloc(40, 1), ...where }))).toBe(
        'InvalidKey',
      );
    }
  });
});
