import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { envelopeErrorCode } from './test-helpers.js';
import { aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { isEnvelopeError } from './errors.js';

const h = (s: string) => Buffer.from(s, 'hex');

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 16 (AES-256, 96-bit IV, AAD).
const gcm16 = {
  key: h('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'),
  nonce: h('cafebabefacedbaddecaf888'),
  plaintext: h(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  ),
  aad: h('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
  ciphertext: h(
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
  ),
  tag: h('76fc6ece0f4e1768cddf8853bb2d551b'),
};

describe('aes-gcm', () => {
  it('matches the GCM spec test case 16', () => {
    const { ciphertext, tag } = aesGcmSeal(gcm16.key, gcm16.nonce, gcm16.plaintext, gcm16.aad);
    expect(ciphertext.toString('hex')).toBe(gcm16.ciphertext.toString('hex'));
    expect(tag.toString('hex')).toBe(gcm16.tag.toString('hex'));
    const opened = aesGcmOpen(gcm16.key, gcm16.nonce, gcm16.ciphertext, gcm16.tag, gcm16.aad);
    expect(opened.toString('hex')).toBe(gcm16.plaintext.toString('hex'));
  });

  it('rejects a wrong AAD, key or tag with AuthenticationFailed', () => {
    const { key, nonce, ciphertext, tag, aad } = gcm16;
    const otherKey = Buffer.from(key);
    otherKey[0] ^= 1;
    expect(envelopeErrorCode(() => aesGcmOpen(key, nonce, ciphertext, tag, Buffer.alloc(0)))).toBe('AuthenticationFailed');
    expect(envelopeErrorCode(() => aesGcmOpen(otherKey, nonce, ciphertext, tag, aad))).toBe('AuthenticationFailed');
    expect(envelopeErrorCode(() => aesGcmOpen(key, nonce, ciphertext, Buffer.alloc(16), aad))).toBe('AuthenticationFailed');
  });

  it('reports an authentication failure as an EnvelopeError that says what may be wrong', () => {
    const { key, nonce, ciphertext, aad } = gcm16;
    const failure = thrownBy(() => aesGcmOpen(key, nonce, ciphertext, Buffer.alloc(16), aad));
    expect(isEnvelopeError(failure)).toBe(true);
    expect(failure).toMatchObject({
      name: 'EnvelopeError',
      code: 'AuthenticationFailed',
      message: 'authentication failed: wrong key, wrong org/conversation/name/key id, or the bytes were altered',
    });
    // A bug in our own call (a wrong-size nonce) is not an envelope problem.
    const bug = thrownBy(() => aesGcmSeal(key, nonce.subarray(0, 8), gcm16.plaintext, aad));
    expect(bug).toBeInstanceOf(RangeError);
    expect(isEnvelopeError(bug)).toBe(false);
  });

  it('refuses a truncated tag instead of checking only its first bytes', () => {
    const { key, nonce, ciphertext, tag, aad } = gcm16;
    for (const len of [0, 4, 8, 12, 15]) {
      expect(envelopeErrorCode(() => aesGcmOpen(key, nonce, ciphertext, tag.subarray(0, len), aad))).toBe(
        'MalformedEnvelope',
      );
    }
  });

  it('validates key and nonce sizes', () => {
    const { key, nonce, plaintext, aad } = gcm16;
    expect(envelopeErrorCode(() => aesGcmSeal(key.subarray(0, 16), nonce, plaintext, aad))).toBe('InvalidKey');
    expect(envelopeErrorCode(() => aesGcmSeal(Buffer.concat([key, Buffer.of(1)]), nonce, plaintext, aad))).toBe(
      'InvalidKey',
    );
    expect(() => aesGcmSeal(key, nonce.subarray(0, 8), plaintext, aad)).toThrow(RangeError);
    expect(envelopeErrorCode(() => aesGcmOpen(key, Buffer.alloc(16), plaintext, Buffer.alloc(16), aad))).toBe(
      'MalformedEnvelope',
    );
  });

  it('refuses the all-zero key (a key zeroed by cache eviction)', () => {
    const zero = Buffer.alloc(32);
    expect(envelopeErrorCode(() => aesGcmSeal(zero, gcm16.nonce, gcm16.plaintext, gcm16.aad))).toBe('InvalidKey');
    expect(envelopeErrorCode(() => aesGcmOpen(zero, gcm16.nonce, gcm16.ciphertext, gcm16.tag, gcm16.aad))).toBe(
      'InvalidKey',
    );
  });
});
