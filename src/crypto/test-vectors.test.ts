// The vectors in test-vectors.json (also printed in docs/FORMAT.md), checked byte for byte both ways,
// and one of each kind rebuilt here from the spec with node:crypto alone, so the vectors are not
// merely what this implementation happens to produce.

import { Buffer } from 'node:buffer';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { conversationKeyAad, valueAad } from './aad.js';
import { unwrapConversationKey, wrapConversationKey } from './conversation-key.js';
import { EnvelopeError } from './errors.js';
import { openValue, sealValue } from './value-envelope.js';

interface WrapVector {
  description: string;
  dataKeyHex: string;
  conversationKeyHex: string;
  nonceHex: string;
  orgId: string;
  conversationId: string;
  dataKeyId: string;
  aadHex: string;
  wrappedHex: string;
}
interface ValueVector {
  description: string;
  conversationKeyHex: string;
  nonceHex: string;
  orgId: string;
  conversationId: string;
  name: string;
  plaintextUtf8: string;
  plaintextHex: string;
  aadHex: string;
  envelopeHex: string;
}
interface InvalidWrapVector {
  description: string;
  dataKeyHex: string;
  orgId: string;
  conversationId: string;
  dataKeyId: string;
  wrappedHex: string;
  expectedError: string;
}
interface InvalidValueVector {
  description: string;
  conversationKeyHex: string;
  orgId: string;
  conversationId: string;
  name: string;
  envelopeHex: string;
  expectedError: string;
}
interface Vectors {
  conversationKeyWrap: WrapVector[];
  valueEnvelope: ValueVector[];
  invalidConversationKeyWrap: InvalidWrapVector[];
  invalidValueEnvelope: InvalidValueVector[];
}

const vectors = JSON.parse(readFileSync(new URL('./test-vectors.json', import.meta.url), 'utf8')) as Vectors;
const h = (s: string) => Buffer.from(s, 'hex');

function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnvelopeError) return err.code;
    throw err;
  }
  return 'returned';
}

// The AAD layout of docs/FORMAT.md, written out by hand.
function handAad(label: string, version: number, fields: string[]): Buffer {
  const lp = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    return Buffer.concat([len, bytes]);
  };
  return Buffer.concat([lp(label), Buffer.of(version), ...fields.map(lp)]);
}

function nodeGcm(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([ct, cipher.getAuthTag()]);
}

describe('test vectors: wrapped conversation key', () => {
  it('has vectors', () => expect(vectors.conversationKeyWrap.length).toBeGreaterThan(0));

  for (const v of vectors.conversationKeyWrap) {
    it(`${v.description}: AAD, wrap and unwrap match byte for byte`, () => {
      const ids = { orgId: v.orgId, conversationId: v.conversationId, dataKeyId: v.dataKeyId };
      expect(conversationKeyAad(1, ids).toString('hex')).toBe(v.aadHex);
      const wrapped = wrapConversationKey({
        dataKey: h(v.dataKeyHex),
        conversationKey: h(v.conversationKeyHex),
        nonce: h(v.nonceHex),
        ...ids,
      });
      expect(wrapped.toString('hex')).toBe(v.wrappedHex);
      expect(unwrapConversationKey({ dataKey: h(v.dataKeyHex), wrapped: h(v.wrappedHex), ...ids }).toString('hex')).toBe(
        v.conversationKeyHex,
      );
    });

    it(`${v.description}: rebuilt independently with node:crypto`, () => {
      const aad = handAad('convault/conversation-key', 0x01, [v.orgId, v.conversationId, v.dataKeyId]);
      expect(aad.toString('hex')).toBe(v.aadHex);
      const body = nodeGcm(h(v.dataKeyHex), h(v.nonceHex), h(v.conversationKeyHex), aad);
      expect(Buffer.concat([Buffer.of(0x01), h(v.nonceHex), body]).toString('hex')).toBe(v.wrappedHex);
    });
  }

  for (const v of vectors.invalidConversationKeyWrap) {
    it(`rejects: ${v.description} → ${v.expectedError}`, () => {
      const input = {
        dataKey: h(v.dataKeyHex),
        wrapped: h(v.wrappedHex),
        orgId: v.orgId,
        conversationId: v.conversationId,
        dataKeyId: v.dataKeyId,
      };
      expect(thrownCode(() => unwrapConversationKey(input))).toBe(v.expectedError);
    });
  }
});

describe('test vectors: value envelope', () => {
  it('has vectors', () => expect(vectors.valueEnvelope.length).toBeGreaterThan(0));

  for (const v of vectors.valueEnvelope) {
    it(`${v.description}: AAD, seal and open match byte for byte`, () => {
      const ids = { orgId: v.orgId, conversationId: v.conversationId, name: v.name };
      expect(Buffer.from(v.plaintextUtf8, 'utf8').toString('hex')).toBe(v.plaintextHex);
      expect(valueAad(1, ids).toString('hex')).toBe(v.aadHex);
      const envelope = sealValue({
        conversationKey: h(v.conversationKeyHex),
        plaintext: h(v.plaintextHex),
        nonce: h(v.nonceHex),
        ...ids,
      });
      expect(envelope.toString('hex')).toBe(v.envelopeHex);
      expect(openValue({ conversationKey: h(v.conversationKeyHex), envelope: h(v.envelopeHex), ...ids }).toString('hex')).toBe(
        v.plaintextHex,
      );
    });

    it(`${v.description}: rebuilt independently with node:crypto`, () => {
      const aad = handAad('convault/value', 0x01, [v.orgId, v.conversationId, v.name]);
      expect(aad.toString('hex')).toBe(v.aadHex);
      const body = nodeGcm(h(v.conversationKeyHex), h(v.nonceHex), h(v.plaintextHex), aad);
      expect(Buffer.concat([Buffer.of(0x01), h(v.nonceHex), body]).toString('hex')).toBe(v.envelopeHex);
    });
  }

  for (const v of vectors.invalidValueEnvelope) {
    it(`rejects: ${v.description} → ${v.expectedError}`, () => {
      const input = {
        conversationKey: h(v.conversationKeyHex),
        envelope: h(v.envelopeHex),
        orgId: v.orgId,
        conversationId: v.conversationId,
        name: v.name,
      };
      expect(thrownCode(() => openValue(input))).toBe(v.expectedError);
    });
  }
});

describe('docs/FORMAT.md', () => {
  it('prints the same vectors as test-vectors.json', () => {
    const doc = readFileSync(new URL('../../docs/FORMAT.md', import.meta.url), 'utf8');
    for (const v of vectors.conversationKeyWrap) expect(doc).toContain(`\`${v.wrappedHex}\``);
    for (const v of vectors.valueEnvelope) expect(doc).toContain(`\`${v.envelopeHex}\``);
  });
});
