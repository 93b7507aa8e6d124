// One secured value, sealed under its conversation key (docs/FORMAT.md, "Value envelope").
//
//   offset  length  field
//   0       1       version = 0x01
//   1       12      nonce (random)
//   13      n       ciphertext (n = plaintext length, may be 0)
//   13+n    16      tag
//   total   29 + n
//
// AAD = valueAad(version, orgId, conversationId, name): an envelope copied to another attribute,
// conversation or org does not open.

import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { valueAad } from './aad.js';
import { aesGcmOpen, aesGcmSeal, assertKey, NONCE_LENGTH, TAG_LENGTH } from './aes-gcm.js';
import { EnvelopeError } from './errors.js';

export const VALUE_ENVELOPE_VERSION = 0x01;
export const VALUE_ENVELOPE_OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH; // 29

const NONCE_AT = 1;
const CIPHERTEXT_AT = NONCE_AT + NONCE_LENGTH; // 13

export interface SealValueInput {
  conversationKey: Buffer;
  orgId: string;
  conversationId: string;
  name: string;
  plaintext: Buffer;
  /** Only for test vectors. Leave unset: a fresh random nonce is drawn. */
  nonce?: Buffer | undefined;
}

export function sealValue(input: SealValueInput): Buffer {
  assertKey(input.conversationKey, 'conversation key');
  if (!Buffer.isBuffer(input.plaintext)) throw new TypeError('plaintext must be a Buffer');
  // Zero-filled, not pooled memory: every byte is written below (version, nonce, ciphertext, tag), and
  // a nonce that were ever left unwritten must show as a repeated all-zero nonce, never as stale bytes
  // of another buffer that merely look random.
  const out = Buffer.alloc(VALUE_ENVELOPE_OVERHEAD + input.plaintext.length);
  out.writeUInt8(VALUE_ENVELOPE_VERSION, 0);
  const nonce = out.subarray(NONCE_AT, CIPHERTEXT_AT);
  if (input.nonce) {
    if (input.nonce.length !== NONCE_LENGTH) throw new RangeError(`AES-GCM nonce must be a ${NONCE_LENGTH}-byte Buffer`);
    input.nonce.copy(nonce);
  } else {
    randomFillSync(nonce);
  }
  const aad = valueAad(VALUE_ENVELOPE_VERSION, input);
  const { ciphertext, tag } = aesGcmSeal(input.conversationKey, nonce, input.plaintext, aad);

  ciphertext.copy(out, CIPHERTEXT_AT);
  tag.copy(out, CIPHERTEXT_AT + ciphertext.length);
  return out;
}

export interface OpenValueInput {
  conversationKey: Buffer;
  orgId: string;
  conversationId: string;
  name: string;
  envelope: Buffer;
}

export function openValue(input: OpenValueInput): Buffer {
  assertKey(input.conversationKey, 'conversation key');
  const envelope = input.envelope;
  if (!Buffer.isBuffer(envelope) || envelope.length === 0) {
    throw new EnvelopeError('MalformedEnvelope', 'value envelope is empty');
  }
  const version = envelope.readUInt8(0);
  if (version !== VALUE_ENVELOPE_VERSION) {
    throw new EnvelopeError(
      'UnsupportedVersion',
      `value envelope has version ${version}; this build reads only ${VALUE_ENVELOPE_VERSION}`,
    );
  }
  if (envelope.length < VALUE_ENVELOPE_OVERHEAD) {
    throw new EnvelopeError(
      'MalformedEnvelope',
      `value envelope must be at least ${VALUE_ENVELOPE_OVERHEAD} bytes, got ${envelope.length}`,
    );
  }
  const tagAt = envelope.length - TAG_LENGTH;
  const aad = valueAad(VALUE_ENVELOPE_VERSION, input);
  return aesGcmOpen(
    input.conversationKey,
    envelope.subarray(NONCE_AT, CIPHERTEXT_AT),
    envelope.subarray(CIPHERTEXT_AT, tagAt),
    envelope.subarray(tagAt),
    aad,
  );
}
