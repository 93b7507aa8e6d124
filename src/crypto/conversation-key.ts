// A conversation key wrapped under its org data key (docs/FORMAT.md, "Wrapped conversation key").
//
//   offset  length  field
//   0       1       version = 0x01
//   1       12      nonce
//   13      32      ciphertext (the 32-byte conversation key)
//   45      16      tag
//   total   61
//
// AAD = conversationKeyAad(version, orgId, conversationId, dataKeyId): a wrapped key moved to
// another org, conversation or data key id does not open.

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { conversationKeyAad } from './aad.js';
import { aesGcmOpen, aesGcmSeal, assertKey, KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from './aes-gcm.js';
import { EnvelopeError } from './errors.js';

export const WRAPPED_KEY_VERSION = 0x01;
export const WRAPPED_KEY_LENGTH = 1 + NONCE_LENGTH + KEY_LENGTH + TAG_LENGTH; // 61

const NONCE_AT = 1;
const CIPHERTEXT_AT = NONCE_AT + NONCE_LENGTH; // 13
const TAG_AT = CIPHERTEXT_AT + KEY_LENGTH; // 45

export function generateConversationKey(): Buffer {
  return randomBytes(KEY_LENGTH);
}

export interface WrapConversationKeyInput {
  dataKey: Buffer;
  conversationKey: Buffer;
  orgId: string;
  conversationId: string;
  dataKeyId: string;
  /** Only for test vectors. Leave unset: a fresh random nonce is drawn. */
  nonce?: Buffer | undefined;
}

export function wrapConversationKey(input: WrapConversationKeyInput): Buffer {
  assertKey(input.dataKey, 'org data key');
  assertKey(input.conversationKey, 'conversation key');
  const nonce = input.nonce ?? randomBytes(NONCE_LENGTH);
  const aad = conversationKeyAad(WRAPPED_KEY_VERSION, input);
  const { ciphertext, tag } = aesGcmSeal(input.dataKey, nonce, input.conversationKey, aad);

  const out = Buffer.alloc(WRAPPED_KEY_LENGTH);
  out.writeUInt8(WRAPPED_KEY_VERSION, 0);
  nonce.copy(out, NONCE_AT);
  ciphertext.copy(out, CIPHERTEXT_AT);
  tag.copy(out, TAG_AT);
  return out;
}

export interface UnwrapConversationKeyInput {
  dataKey: Buffer;
  wrapped: Buffer;
  orgId: string;
  conversationId: string;
  dataKeyId: string;
}

export function unwrapConversationKey(input: UnwrapConversationKeyInput): Buffer {
  assertKey(input.dataKey, 'org data key');
  const wrapped = input.wrapped;
  if (!Buffer.isBuffer(wrapped) || wrapped.length === 0) {
    throw new EnvelopeError('MalformedEnvelope', 'wrapped conversation key is empty');
  }
  const version = wrapped.readUInt8(0);
  if (version !== WRAPPED_KEY_VERSION) {
    throw new EnvelopeError(
      'UnsupportedVersion',
      `wrapped conversation key has version ${version}; this build reads only ${WRAPPED_KEY_VERSION}`,
    );
  }
  if (wrapped.length !== WRAPPED_KEY_LENGTH) {
    throw new EnvelopeError(
      'MalformedEnvelope',
      `wrapped conversation key must be ${WRAPPED_KEY_LENGTH} bytes, got ${wrapped.length}`,
    );
  }
  const aad = conversationKeyAad(WRAPPED_KEY_VERSION, input);
  return aesGcmOpen(
    input.dataKey,
    wrapped.subarray(NONCE_AT, CIPHERTEXT_AT),
    wrapped.subarray(CIPHERTEXT_AT, TAG_AT),
    wrapped.subarray(TAG_AT, WRAPPED_KEY_LENGTH),
    aad,
  );
}
