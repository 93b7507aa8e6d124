import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal, NONCE_LENGTH, TAG_LENGTH } from '../crypto/aes-gcm.js';

/**
 * The proxy's root key seals what xks.db must not hold in the clear: the material of software
 * keys and the SigV4 secrets (the proxy needs the secret itself to recompute signatures, so it
 * cannot keep a hash). It is 32 random bytes in `<dataDir>/xks-root.key`, created 0600 on first
 * use; xks.db without that file is useless to whoever copies it. Keys kept in a PKCS#11 token never
 * leave the token and are not sealed here.
 */

export const XKS_ROOT_KEY_FILE = 'xks-root.key';

export class XksRootKeyError extends Error {}

export function loadXksRootKey(dataDir: string): Buffer {
  const file = path.join(dataDir, XKS_ROOT_KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx': a second process starting at the same moment keeps the first one's key.
    fs.writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const hex = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new XksRootKeyError(`${file} must hold 32 bytes as 64 hex characters`);
  return Buffer.from(hex, 'hex');
}

/** nonce || ciphertext || tag; `label` (what the value belongs to) is the AAD, so sealed values cannot trade rows. */
export function sealUnderRoot(rootKey: Buffer, label: string, plaintext: Buffer): Buffer {
  const nonce = randomBytes(NONCE_LENGTH);
  const { ciphertext, tag } = aesGcmSeal(rootKey, nonce, plaintext, Buffer.from(label, 'utf8'));
  return Buffer.concat([nonce, ciphertext, tag]);
}

export function openUnderRoot(rootKey: Buffer, label: string, sealed: Buffer): Buffer {
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) throw new XksRootKeyError(`sealed value of ${label} is truncated`);
  try {
    return aesGcmOpen(
      rootKey,
      sealed.subarray(0, NONCE_LENGTH),
      sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH),
      sealed.subarray(sealed.length - TAG_LENGTH),
      Buffer.from(label, 'utf8'),
    );
  } catch {
    throw new XksRootKeyError(`sealed value of ${label} does not open under ${XKS_ROOT_KEY_FILE}: wrong root key file for this xks.db`);
  }
}
