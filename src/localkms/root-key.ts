import fs from 'node:fs';
import path from 'node:path';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ensurePrivateDir, ensurePrivateFile } from '../store/private-files.js';

/**
 * The root key encrypts every key's material at rest. It comes from CONVAULT_LOCAL_KMS_ROOT_KEY, or
 * from a random key kept in `<dataDir>/localkms-root.key` (created 0600 on first use). Nodes that
 * share one PostgreSQL database must share the root key, so they should set the variable.
 */

export const ROOT_KEY_FILE = 'localkms-root.key';
const ROOT_KEY_BYTES = 32;

export class RootKeyError extends Error {}

export function resolveLocalKmsRootKey({ rootKeyHex, dataDir }: { rootKeyHex?: string; dataDir: string }): Buffer {
  if (rootKeyHex !== undefined && rootKeyHex !== '') return parseHexKey(rootKeyHex, 'CONVAULT_LOCAL_KMS_ROOT_KEY');
  const file = path.join(dataDir, ROOT_KEY_FILE);
  ensurePrivateDir(dataDir);
  if (!fs.existsSync(file)) {
    try {
      // 'wx': if another process created it in the meantime, use theirs rather than overwrite it.
      fs.writeFileSync(file, `${randomBytes(ROOT_KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  ensurePrivateFile(file);
  return parseHexKey(fs.readFileSync(file, 'utf8').trim(), file);
}

function parseHexKey(hex: string, source: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RootKeyError(`${source} must hold 32 bytes as 64 hex characters`);
  return Buffer.from(hex, 'hex');
}

/** AES-256-GCM under the root key; `label` (e.g. the key id) is the AAD, so sealed values cannot be swapped between rows. */
export function sealWithRootKey(rootKey: Buffer, label: string, plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', rootKey, nonce);
  cipher.setAAD(Buffer.from(label, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Throws RootKeyError when the value was sealed under another root key (or altered). */
export function openWithRootKey(rootKey: Buffer, label: string, sealed: Buffer): Buffer {
  if (sealed.length < 12 + 16) throw new RootKeyError('sealed value is truncated');
  try {
    const decipher = createDecipheriv('aes-256-gcm', rootKey, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(label, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  } catch {
    throw new RootKeyError('sealed value does not open under this root key');
  }
}
