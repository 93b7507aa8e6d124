import { randomBytes } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal, encodeAad, KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from '../../crypto/index.js';
import type { KeyProvider } from '../../providers/key-provider.js';

/**
 * The secret fields of a key configuration (LocalKeyManager's apiKey and clientKey) at rest: one
 * JSON object sealed with AES-256-GCM under a fresh data key of the platform key, the additional
 * data binding the organization and the configuration. Bytes:
 *   0x01 | keyIdLength (u16) | keyId | wrappedLength (u16) | wrapped data key | nonce (12) | tag (16) | ciphertext
 * The plaintext exists only while a provider is built from it; it is never answered or logged.
 */

const VERSION = 0x01;
const AAD_LABEL = 'convault/key-configuration-secrets';

export interface SecretBoxDeps {
  /** The platform key (the None adapter). */
  platformKey: Pick<KeyProvider, 'generateDataKey' | 'unwrapDataKey'>;
}

export type SecretBox = ReturnType<typeof createSecretBox>;

export function createSecretBox(deps: SecretBoxDeps) {
  const binding = (orgId: string, configId: string) => ({ orgId, dataKeyId: `key-configuration-secrets:${configId}` });
  const aad = (orgId: string, configId: string) => encodeAad(AAD_LABEL, VERSION, [orgId, configId]);

  return {
    async seal(orgId: string, configId: string, secrets: Record<string, string>): Promise<Buffer> {
      const { plaintext: key, wrapped } = await deps.platformKey.generateDataKey(binding(orgId, configId));
      const json = Buffer.from(JSON.stringify(secrets), 'utf8');
      try {
        const nonce = randomBytes(NONCE_LENGTH);
        const { ciphertext, tag } = aesGcmSeal(key, nonce, json, aad(orgId, configId));
        const keyId = Buffer.from(wrapped.keyId, 'utf8');
        return Buffer.concat([Buffer.from([VERSION]), u16(keyId.length), keyId, u16(wrapped.blob.length), wrapped.blob, nonce, tag, ciphertext]);
      } finally {
        key.fill(0);
        json.fill(0);
      }
    },

    async open(orgId: string, configId: string, sealed: Buffer): Promise<Record<string, string>> {
      let at = 0;
      const take = (n: number) => {
        if (at + n > sealed.length) throw new Error('the sealed secrets of the key configuration are truncated');
        const out = sealed.subarray(at, at + n);
        at += n;
        return out;
      };
      if (take(1)[0] !== VERSION) throw new Error('the sealed secrets of the key configuration have an unknown version');
      const keyId = take(take(2).readUInt16BE(0)).toString('utf8');
      const blob = Buffer.from(take(take(2).readUInt16BE(0)));
      const nonce = take(NONCE_LENGTH);
      const tag = take(TAG_LENGTH);
      const ciphertext = sealed.subarray(at);
      const key = await deps.platformKey.unwrapDataKey({ blob, keyId }, binding(orgId, configId));
      try {
        if (key.length !== KEY_LENGTH) throw new Error('the platform key returned a data key of the wrong length');
        const json = aesGcmOpen(key, nonce, ciphertext, tag, aad(orgId, configId));
        try {
          return JSON.parse(json.toString('utf8')) as Record<string, string>;
        } finally {
          json.fill(0);
        }
      } finally {
        key.fill(0);
      }
    },
  };
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}
