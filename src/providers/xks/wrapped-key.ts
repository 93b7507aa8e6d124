import { XKS_LIMITS } from '../../xks-protocol/index.js';
import type { XksCiphertext } from '../../xks-client/index.js';
import { KeyProviderError, type DataKeyBinding } from '../key-provider.js';

/**
 * The bytes stored for a data key wrapped by an XKS proxy: everything Decrypt needs back besides
 * the key id and the binding.
 *   0x01 | ivLength (1) | iv | tag (16) | metadataLength (1) | ciphertextMetadata | ciphertext
 */

const VERSION = 1;

export function encodeWrappedKey(c: XksCiphertext): Buffer {
  const meta = c.ciphertextMetadata ?? Buffer.alloc(0);
  return Buffer.concat([Buffer.from([VERSION, c.initializationVector.length]), c.initializationVector, c.authenticationTag, Buffer.from([meta.length]), meta, c.ciphertext]);
}

export function decodeWrappedKey(blob: Buffer): XksCiphertext {
  const bad = (why: string) => new KeyProviderError('InvalidCiphertext', `The wrapped data key is not an XKS-wrapped key: ${why}`, { providerError: 'MalformedWrappedKey' });
  if (blob.length < 2 || blob[0] !== VERSION) throw bad('unknown version');
  const ivLength = blob[1]!;
  if (!XKS_LIMITS.ivBytes.includes(ivLength)) throw bad(`initialization vector of ${ivLength} bytes`);
  let at = 2;
  const take = (n: number) => {
    if (at + n > blob.length) throw bad('truncated');
    const part = blob.subarray(at, at + n);
    at += n;
    return Buffer.from(part);
  };
  const initializationVector = take(ivLength);
  const authenticationTag = take(XKS_LIMITS.tagBytes);
  const metaLength = take(1)[0]!;
  if (metaLength > XKS_LIMITS.maxCiphertextMetadataBytes) throw bad('ciphertext metadata over 20 bytes');
  const ciphertextMetadata = take(metaLength);
  const ciphertext = Buffer.from(blob.subarray(at));
  if (ciphertext.length === 0) throw bad('no ciphertext');
  return { ciphertext, initializationVector, authenticationTag, ...(metaLength ? { ciphertextMetadata } : {}) };
}

/** AAD of the proxy's AES-GCM: the organization and the data key, unambiguously (a JSON array). */
export function bindingAad(binding: DataKeyBinding): Buffer {
  return Buffer.from(JSON.stringify(['convault/xks-data-key/v1', binding.orgId, binding.dataKeyId]), 'utf8');
}
