import type { EkmHealthStatus } from '../xks-protocol/index.js';
import type { KeyBackendName, XksKeyRow } from './store.js';

/**
 * Where key material lives and where AES-256-GCM runs: in this process under the root key
 * (software), or inside a PKCS#11 token. The proxy's operations see only this.
 */
export interface KeyBackend {
  readonly name: KeyBackendName;
  /** Creates the key; returns what the key row keeps in `material` (null when the material stays in a token). */
  createKey(keyId: string): Promise<Buffer | null>;
  /** `aad` is the AAD given to the cipher (already framed by the caller). */
  encrypt(key: XksKeyRow, plaintext: Buffer, aad: Buffer): Promise<{ iv: Buffer; ciphertext: Buffer; tag: Buffer }>;
  /** Throws DecryptFailed when the ciphertext, IV, tag or AAD do not authenticate. */
  decrypt(key: XksKeyRow, input: { iv: Buffer; ciphertext: Buffer; tag: Buffer; aad: Buffer }): Promise<Buffer>;
  /** A deep check: a round trip under a test key that belongs to no customer. */
  health(): Promise<{ id: string; model: string; vendor: string; healthStatus: EkmHealthStatus }>;
  close(): Promise<void>;
}

export class DecryptFailed extends Error {
  constructor() {
    super('The ciphertext, initialization vector, authentication tag or additional authenticated data do not authenticate under this key');
  }
}
