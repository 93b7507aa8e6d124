// AES-256-GCM with a 96-bit nonce and a full 128-bit tag, straight from node:crypto.
// The wrapper exists for the checks node:crypto does not make for us.

import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { EnvelopeError } from './errors.js';

export const KEY_LENGTH = 32;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;

// A cache zeroes a key when it evicts it (key-cache.ts). A caller still holding that buffer
// would otherwise encrypt under the all-zero key, i.e. publish the data. A real random key is
// all zeros with probability 2^-256, so refusing it costs nothing.
export function assertKey(key: Buffer, what: string): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
    throw new EnvelopeError('InvalidKey', `${what} must be a ${KEY_LENGTH}-byte Buffer`);
  }
  let acc = 0;
  for (let i = 0; i < KEY_LENGTH; i++) acc |= key[i] as number; // no early exit: constant time
  if (acc === 0) {
    throw new EnvelopeError('InvalidKey', `${what} is all zeros: it was evicted from a key cache; fetch it again`);
  }
}

export function aesGcmSeal(
  key: Buffer,
  nonce: Buffer,
  plaintext: Buffer,
  aad: Buffer,
): { ciphertext: Buffer; tag: Buffer } {
  assertKey(key, 'AES-GCM key');
  // A wrong-length nonce here is a bug in our own code, never data from storage.
  if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_LENGTH) {
    throw new RangeError(`AES-GCM nonce must be a ${NONCE_LENGTH}-byte Buffer`);
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const rest = cipher.final(); // GCM is a stream mode: always empty, kept for correctness
  const ciphertext = rest.length === 0 ? head : Buffer.concat([head, rest]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

export function aesGcmOpen(key: Buffer, nonce: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  assertKey(key, 'AES-GCM key');
  if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_LENGTH) {
    throw new EnvelopeError('MalformedEnvelope', `AES-GCM nonce must be ${NONCE_LENGTH} bytes`);
  }
  // node:crypto accepts tags of 4..16 bytes unless authTagLength is pinned; a short tag would
  // let a forger brute-force 32 bits. We pin it and check the length ourselves.
  if (!Buffer.isBuffer(tag) || tag.length !== TAG_LENGTH) {
    throw new EnvelopeError('MalformedEnvelope', `AES-GCM tag must be ${TAG_LENGTH} bytes`);
  }
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  // update() hands out plaintext before the tag is checked; it must not escape unless final() passes.
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new EnvelopeError(
      'AuthenticationFailed',
      'authentication failed: wrong key, wrong org/conversation/name/key id, or the bytes were altered',
    );
  }
  return plaintext;
}
