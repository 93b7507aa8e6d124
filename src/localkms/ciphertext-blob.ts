import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomBytesFromPool } from './random-pool.js';

/**
 * The local KMS's CiphertextBlob. AWS's format is opaque and undocumented; this one is specific to
 * the local KMS and only it can read it (a blob from AWS cannot be decrypted here, nor the reverse).
 *
 *   offset  size  field
 *   0       1     format version, 0x01
 *   1       1     n = length of the key id
 *   2       n     key id, ASCII (a UUID, or mrk-<32 hex> for multi-Region keys)
 *   2+n     12    AES-GCM nonce, random
 *   14+n    L     AES-256-GCM ciphertext of the plaintext (L = plaintext length)
 *   14+n+L  16    AES-GCM tag
 *
 * AAD = bytes 0 … 2+n (version and key id) ‖ encodeEncryptionContext(context), so a blob opens only
 * under the key it names and with exactly the encryption context it was sealed with.
 */

export const BLOB_VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class InvalidBlobError extends Error {}

/** The key id a blob names, read without any key material (Decrypt needs it to find the key). */
export function readBlobKeyId(blob: Buffer): string {
  return parseHeader(blob).keyId;
}

export function sealBlob(material: Buffer, keyId: string, plaintext: Buffer, context: Record<string, string>): Buffer {
  const header = encodeHeader(keyId);
  const nonce = randomBytesFromPool(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', material, nonce);
  cipher.setAAD(Buffer.concat([header, encodeEncryptionContext(context)]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
}

/** Throws InvalidBlobError when the blob was altered or the context differs from the one it was sealed with. */
export function openBlob(material: Buffer, blob: Buffer, context: Record<string, string>): Buffer {
  const { headerLength } = parseHeader(blob);
  const header = blob.subarray(0, headerLength);
  const nonce = blob.subarray(headerLength, headerLength + NONCE_BYTES);
  const body = blob.subarray(headerLength + NONCE_BYTES, blob.length - TAG_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', material, nonce);
    decipher.setAAD(Buffer.concat([header, encodeEncryptionContext(context)]));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new InvalidBlobError('ciphertext or encryption context does not authenticate');
  }
}

/**
 * Canonical encoding of an encryption context: pairs sorted by the UTF-8 bytes of their keys, each
 * as u16be length ‖ key ‖ u16be length ‖ value, after a u16be pair count. Order-independent and
 * unambiguous (no separator a key or value could contain).
 */
export function encodeEncryptionContext(context: Record<string, string>): Buffer {
  const pairs = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) parts.push(u16(k.length), k, u16(v.length), v);
  return Buffer.concat(parts);
}

function encodeHeader(keyId: string): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  if (id.length > 255) throw new Error('key id too long for the blob header');
  return Buffer.concat([Buffer.from([BLOB_VERSION, id.length]), id]);
}

function parseHeader(blob: Buffer): { keyId: string; headerLength: number } {
  if (blob.length < 2 || blob[0] !== BLOB_VERSION) throw new InvalidBlobError('not a local KMS ciphertext blob');
  const n = blob[1]!;
  const headerLength = 2 + n;
  // At least one byte of ciphertext: KMS never encrypts empty plaintext.
  if (n === 0 || blob.length < headerLength + NONCE_BYTES + 1 + TAG_BYTES) throw new InvalidBlobError('ciphertext blob is truncated');
  const keyId = blob.subarray(2, headerLength).toString('ascii');
  if (!/^[0-9a-z-]+$/.test(keyId)) throw new InvalidBlobError('ciphertext blob names no valid key id');
  return { keyId, headerLength };
}

function u16(n: number): Buffer {
  if (n > 0xffff) throw new Error('encryption context element too long');
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
