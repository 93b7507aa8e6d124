import { randomBytes } from 'node:crypto';
import { normalizeUriPath } from '../xks-protocol/index.js';
import { XksAdminError } from './key-admin.js';
import { openUnderRoot, sealUnderRoot } from './root-key.js';
import type { XksStore } from './store.js';

/**
 * SigV4 credentials, one set per logical key store (URI path). Access key ids are 24 random
 * characters of A-Z2-7 (the specification asks for 20-30 and nothing derivable from the secret);
 * secrets are 32 random bytes in Base64 (44 characters, within 43-64), sealed under the root key.
 */

export interface XksCredentials {
  uriPrefix: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function newAccessKeyId(): string {
  // 15 random bytes are 120 bits: exactly 24 base-32 characters.
  const bytes = randomBytes(15);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

export function createCredentialStore({
  store,
  rootKey,
  clock = Date.now,
}: {
  store: Pick<XksStore, 'insertCredential' | 'findCredential' | 'credentialsOf' | 'deleteCredential'>;
  rootKey: Buffer;
  clock?: () => number;
}) {
  const label = (accessKeyId: string) => `xks-credential:${accessKeyId}`;

  function uriPathOf(uriPrefix: string): string {
    const uriPath = normalizeUriPath(uriPrefix);
    if (!uriPath) throw new XksAdminError('--uri-prefix must be [/<path-prefix>]/kms/xks/v1 of at most 128 characters of a-z A-Z 0-9 / - _');
    return uriPath;
  }

  async function issue(uriPath: string): Promise<void> {
    // Strictly increasing per key store, so "newest" is well defined even within one millisecond.
    const existing = await store.credentialsOf(uriPath);
    const createdAt = Math.max(clock(), (existing[existing.length - 1]?.created_at ?? 0) + 1);
    const accessKeyId = newAccessKeyId();
    const secret = randomBytes(32).toString('base64');
    await store.insertCredential({ access_key_id: accessKeyId, uri_path: uriPath, secret: sealUnderRoot(rootKey, label(accessKeyId), Buffer.from(secret)), created_at: createdAt });
  }

  async function newest(uriPath: string): Promise<XksCredentials> {
    const all = await store.credentialsOf(uriPath);
    const row = all[all.length - 1]!;
    return { uriPrefix: uriPath, accessKeyId: row.access_key_id, secretAccessKey: openUnderRoot(rootKey, label(row.access_key_id), row.secret).toString() };
  }

  return {
    /** The current (newest) credentials of a key store, created on the first call; `uriPrefix` may omit `/kms/xks/v1`. */
    async credentialsFor(uriPrefix: string): Promise<XksCredentials> {
      const uriPath = uriPathOf(uriPrefix);
      // Two first calls at once may both issue a set; both sets are valid, and later calls name the newer.
      if ((await store.credentialsOf(uriPath)).length === 0) await issue(uriPath);
      return newest(uriPath);
    },

    /**
     * Rotation as the specification describes it: a new set is issued while the old ones stay valid,
     * so the caller can switch over before the old set is revoked. Returns the new set.
     */
    async rotate(uriPrefix: string): Promise<XksCredentials> {
      const uriPath = uriPathOf(uriPrefix);
      await issue(uriPath);
      return newest(uriPath);
    },

    /** Revokes one access key id of a key store; requests signed with it fail from the next request on. */
    async revoke(uriPrefix: string, accessKeyId: string): Promise<{ uriPrefix: string; revoked: string; remaining: string[] }> {
      const uriPath = uriPathOf(uriPrefix);
      if (!(await store.deleteCredential(accessKeyId, uriPath))) throw new XksAdminError(`${accessKeyId} is not a credential of ${uriPath}`);
      return { uriPrefix: uriPath, revoked: accessKeyId, remaining: (await store.credentialsOf(uriPath)).map((r) => r.access_key_id) };
    },

    /** The secret of an access key id, only when it belongs to that key store. */
    async secretFor(accessKeyId: string, uriPath: string): Promise<string | undefined> {
      const row = await store.findCredential(accessKeyId);
      if (!row || row.uri_path !== uriPath) return undefined;
      return openUnderRoot(rootKey, label(accessKeyId), row.secret).toString();
    },
  };
}
