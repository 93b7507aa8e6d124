import { EXTERNAL_KEY_ID, type KeyStatus, type KeyUsage } from '../xks-protocol/index.js';
import type { XksBackends } from './operations.js';
import { parseKeyUsage, type KeyBackendName, type XksStore } from './store.js';

/**
 * What the proxy's operator does to keys (the specification leaves key lifecycle to the key
 * manager's own interface; this is the reference proxy's): create, disable, enable.
 */

export const KEY_USAGE_CHOICES: Record<string, KeyUsage[]> = {
  'encrypt,decrypt': ['ENCRYPT', 'DECRYPT'],
  'decrypt,encrypt': ['ENCRYPT', 'DECRYPT'],
  encrypt: ['ENCRYPT'],
  decrypt: ['DECRYPT'],
  none: [],
};

export class XksAdminError extends Error {}

export interface XksKeyView {
  keyId: string;
  keySpec: 'AES_256';
  keyUsage: KeyUsage[];
  keyStatus: KeyStatus;
  backend: KeyBackendName;
}

export function createKeyAdmin({
  store,
  backends,
  clock = Date.now,
}: {
  store: Pick<XksStore, 'insertKey' | 'findKey' | 'setKeyStatus'>;
  backends: XksBackends;
  clock?: () => number;
}) {
  async function view(keyId: string): Promise<XksKeyView> {
    const row = await store.findKey(keyId);
    if (!row) throw new XksAdminError(`no key ${keyId} in this proxy`);
    return { keyId, keySpec: 'AES_256', keyUsage: parseKeyUsage(row.key_usage), keyStatus: row.key_status, backend: row.backend };
  }

  return {
    view,
    /** Keys go into the PKCS#11 token when the proxy has one, else into xks.db. */
    async createKey(keyId: string, usageChoice: string): Promise<XksKeyView> {
      // "." and ".." fit the alphabet but are dot segments: URL normalization would remove them from the path.
      if (!EXTERNAL_KEY_ID.test(keyId) || keyId === '.' || keyId === '..') throw new XksAdminError('--key-id must be 1-128 characters of A-Z a-z 0-9 - . _ (the specification\'s externalKeyId)');
      const usage = KEY_USAGE_CHOICES[usageChoice.replace(/\s+/g, '').toLowerCase()];
      if (!usage) throw new XksAdminError('--usage must be encrypt,decrypt | encrypt | decrypt | none');
      if (await store.findKey(keyId)) throw new XksAdminError(`key ${keyId} already exists`);
      const backend = backends.pkcs11 ?? backends.software;
      const material = await backend.createKey(keyId);
      const now = clock();
      await store.insertKey({ key_id: keyId, key_usage: usage.join(','), key_status: 'ENABLED', backend: backend.name, material, created_at: now, updated_at: now });
      return view(keyId);
    },
    async setStatus(keyId: string, status: KeyStatus): Promise<XksKeyView> {
      if (!(await store.setKeyStatus(keyId, status, clock()))) throw new XksAdminError(`no key ${keyId} in this proxy`);
      return view(keyId);
    },
  };
}
