import { createHash } from 'node:crypto';

/**
 * Ciphertext Data Integrity Value (Appendix C): SHA-256 over the decoded
 * additionalAuthenticatedData || ciphertextMetadata || initializationVector || ciphertext || authenticationTag,
 * absent fields counting as empty. No lengths are mixed in: it guards against bit flips, not forgery.
 */
export function ciphertextDataIntegrityValue(parts: {
  aad?: Buffer;
  ciphertextMetadata?: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}): Buffer {
  const hash = createHash('sha256');
  if (parts.aad) hash.update(parts.aad);
  if (parts.ciphertextMetadata) hash.update(parts.ciphertextMetadata);
  return hash.update(parts.iv).update(parts.ciphertext).update(parts.tag).digest();
}
