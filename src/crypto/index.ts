// The public API of the pure crypto layer. See docs/FORMAT.md for the byte formats.

export { EnvelopeError, isEnvelopeError } from './errors.js';
export type { EnvelopeErrorCode } from './errors.js';
export { aesGcmOpen, aesGcmSeal, KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from './aes-gcm.js';
export {
  AAD_LABEL_CONVERSATION_KEY,
  AAD_LABEL_VALUE,
  conversationKeyAad,
  encodeAad,
  valueAad,
} from './aad.js';
export {
  generateConversationKey,
  unwrapConversationKey,
  wrapConversationKey,
  WRAPPED_KEY_LENGTH,
  WRAPPED_KEY_VERSION,
} from './conversation-key.js';
export type { UnwrapConversationKeyInput, WrapConversationKeyInput } from './conversation-key.js';
export { openValue, sealValue, VALUE_ENVELOPE_OVERHEAD, VALUE_ENVELOPE_VERSION } from './value-envelope.js';
export type { OpenValueInput, SealValueInput } from './value-envelope.js';
export { createKeyCache } from './key-cache.js';
export type { CacheObserver, KeyCache, KeyCacheOptions } from './key-cache.js';
export { createSingleFlight } from './single-flight.js';
export type { SingleFlight } from './single-flight.js';
