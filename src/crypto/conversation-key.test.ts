import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { envelopeErrorCode, flipBit, arbitraryKey, arbitraryId, arbitraryIdWithLoneSurrogate } from './test-helpers.js';
import {
  generateConversationKey,
  unwrapConversationKey,
  wrapConversationKey,
  WRAPPED_KEY_LENGTH,
  WRAPPED_KEY_VERSION,
} from './conversation-key.js';

const key = arbitraryKey;
const id = arbitraryId;
const ids = fc.record({ orgId: id, conversationId: id, dataKeyId: id });

describe('wrapped conversation key', () => {
  it('round-trips any key under any org, conversation and data key id', () => {
    fc.assert(
      fc.property(key, key, ids, (dataKey, conversationKey, where) => {
        const wrapped = wrapConversationKey({ dataKey, conversationKey, ...where });
        expect(wrapped.length).toBe(WRAPPED_KEY_LENGTH);
        expect(wrapped[0]).toBe(WRAPPED_KEY_VERSION);
        expect(unwrapConversationKey({ dataKey, wrapped, ...where }).equals(conversationKey)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an org, conversation or data key id with a lone surrogate', () => {
    const dataKey = randomBytes(32);
    const conversationKey = randomBytes(32);
    const good = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    fc.assert(
      fc.property(arbitraryIdWithLoneSurrogate, fc.constantFrom('orgId', 'conversationId', 'dataKeyId'), (bad, field) => {
        expect(() => wrapConversationKey({ dataKey, conversationKey, ...good, [field]: bad })).toThrow();
      }),
      { numRuns: 100 },
    );
  });

  it('generates distinct random 32-byte keys and fresh nonces', () => {
    const a = generateConversationKey();
    const b = generateConversationKey();
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(false);
    const dataKey = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    const w1 = wrapConversationKey({ dataKey, conversationKey: a, ...where });
    const w2 = wrapConversationKey({ dataKey, conversationKey: a, ...where });
    expect(w1.equals(w2)).toBe(false);
  });

  it('rejects every single-bit flip (exhaustive over all 488 bits, random keys and ids)', () => {
    fc.assert(
      fc.property(key, key, ids, (dataKey, conversationKey, where) => {
        const wrapped = wrapConversationKey({ dataKey, conversationKey, ...where });
        for (let bit = 0; bit < WRAPPED_KEY_LENGTH * 8; bit++) {
          const code = envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped: flipBit(wrapped, bit), ...where }));
          expect(code).toBe(bit < 8 ? 'UnsupportedVersion' : 'AuthenticationFailed');
        }
      }),
      { numRuns: 20 },
    );
  });

  it('rejects any truncation and any extension', () => {
    const dataKey = randomBytes(32);
    const where = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    const wrapped = wrapConversationKey({ dataKey, conversationKey: randomBytes(32), ...where });
    for (let len = 0; len < WRAPPED_KEY_LENGTH; len++) {
      expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped: wrapped.subarray(0, len), ...where }))).toBe(
        'MalformedEnvelope',
      );
      expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped: wrapped.subarray(WRAPPED_KEY_LENGTH - len), ...where }))).toBeDefined();
    }
    for (const extra of [1, 16, 100]) {
      const longer = Buffer.concat([wrapped, Buffer.alloc(extra)]);
      expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped: longer, ...where }))).toBe('MalformedEnvelope');
    }
  });

  it('rejects a wrong data key id, conversation or org', () => {
    fc.assert(
      fc.property(key, key, ids, ids, (dataKey, conversationKey, from, to) => {
        fc.pre(from.orgId !== to.orgId || from.conversationId !== to.conversationId || from.dataKeyId !== to.dataKeyId);
        const wrapped = wrapConversationKey({ dataKey, conversationKey, ...from });
        expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped, ...to }))).toBe('AuthenticationFailed');
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(key, key, ids, id, (dataKey, conversationKey, where, otherKeyId) => {
        fc.pre(otherKeyId !== where.dataKeyId);
        const wrapped = wrapConversationKey({ dataKey, conversationKey, ...where });
        const code = envelopeErrorCode(() => unwrapConversationKey({ dataKey, wrapped, ...where, dataKeyId: otherKeyId }));
        expect(code).toBe('AuthenticationFailed');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects the wrong data key', () => {
    const where = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    const wrapped = wrapConversationKey({ dataKey: randomBytes(32), conversationKey: randomBytes(32), ...where });
    expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey: randomBytes(32), wrapped, ...where }))).toBe(
      'AuthenticationFailed',
    );
  });

  it('rejects invalid keys, including an all-zero (evicted) conversation key', () => {
    const where = { orgId: 'o', conversationId: 'c', dataKeyId: 'k' };
    for (const bad of [Buffer.alloc(0), randomBytes(31), randomBytes(64), Buffer.alloc(32)]) {
      expect(envelopeErrorCode(() => wrapConversationKey({ dataKey: bad, conversationKey: randomBytes(32), ...where }))).toBe('InvalidKey');
      expect(envelopeErrorCode(() => wrapConversationKey({ dataKey: randomBytes(32), conversationKey: bad, ...where }))).toBe('InvalidKey');
      expect(envelopeErrorCode(() => unwrapConversationKey({ dataKey: bad, wrapped: Buffer.alloc(61, 1), ...where }))).toBe('InvalidKey');
    }
  });
});
