import { randomBytes } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal, NONCE_LENGTH } from '../crypto/aes-gcm.js';
import { VERSION } from '../version.js';
import { DecryptFailed, type KeyBackend } from './key-backend.js';
import { openUnderRoot, sealUnderRoot } from './root-key.js';
import type { XksKeyRow } from './store.js';

/**
 * Keys as 32 random bytes sealed under the proxy's root key in xks.db; AES-256-GCM by node:crypto.
 * The opened material lives only for the duration of one operation and is zeroed after it.
 */
export function createSoftwareBackend(rootKey: Buffer): KeyBackend {
  const label = (keyId: string) => `xks-key:${keyId}`;

  function withMaterial<T>(key: XksKeyRow, use: (material: Buffer) => T): T {
    if (!key.material) throw new Error(`key ${key.key_id} has no material`);
    const material = openUnderRoot(rootKey, label(key.key_id), key.material);
    try {
      return use(material);
    } finally {
      material.fill(0);
    }
  }

  return {
    name: 'software',
    async createKey(keyId) {
      const material = randomBytes(32);
      try {
        return sealUnderRoot(rootKey, label(keyId), material);
      } finally {
        material.fill(0);
      }
    },
    async encrypt(key, plaintext, aad) {
      const iv = randomBytes(NONCE_LENGTH);
      return { iv, ...withMaterial(key, (material) => aesGcmSeal(material, iv, plaintext, aad)) };
    },
    async decrypt(key, { iv, ciphertext, tag, aad }) {
      // Only 96-bit IVs are ever produced here; a 16-byte one cannot belong to this key's ciphertext.
      if (iv.length !== NONCE_LENGTH) throw new DecryptFailed();
      return withMaterial(key, (material) => {
        try {
          return aesGcmOpen(material, iv, ciphertext, tag, aad);
        } catch {
          throw new DecryptFailed();
        }
      });
    },
    async health() {
      // The root key must open what it seals and the cipher must round-trip: a test key, never a customer's.
      const probe = { key_id: '__health__', material: sealUnderRoot(rootKey, label('__health__'), randomBytes(32)) } as XksKeyRow;
      const sample = randomBytes(32);
      const sealed = await this.encrypt(probe, sample, Buffer.alloc(0));
      const back = await this.decrypt(probe, { ...sealed, aad: Buffer.alloc(0) });
      return {
        id: 'xks.db',
        model: `convault software key store ${VERSION}`,
        vendor: 'convault',
        healthStatus: back.equals(sample) ? 'ACTIVE' : 'UNAVAILABLE',
      };
    },
    async close() {},
  };
}
