import {
  ciphertextDataIntegrityValue,
  XKS_LIMITS,
  type DecryptResponse,
  type EncryptResponse,
  type GetHealthStatusResponse,
  type GetKeyMetadataResponse,
  type KeyUsage,
} from '../xks-protocol/index.js';
import { VERSION } from '../version.js';
import { XksProxyError } from './errors.js';
import { DecryptFailed, type KeyBackend } from './key-backend.js';
import { base64, decryptBody, encryptBody, getKeyMetadataBody, parseBody } from './request-body.js';
import { parseKeyUsage, type XksKeyRow, type XksStore } from './store.js';

/** The four operations of the XKS proxy API over the key store and its backends. */

export interface XksBackends {
  software: KeyBackend;
  pkcs11?: KeyBackend;
}

/**
 * What the cipher authenticates besides the ciphertext: 2-byte big-endian AAD length || AAD ||
 * 1-byte ciphertextMetadata length || ciphertextMetadata, as the Encrypt section recommends, so
 * metadata moved into the AAD (or back) never decrypts.
 */
export function frameAad(aad: Buffer | undefined, ciphertextMetadata: Buffer | undefined): Buffer {
  const a = aad ?? Buffer.alloc(0);
  const m = ciphertextMetadata ?? Buffer.alloc(0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(a.length);
  return Buffer.concat([head, a, Buffer.from([m.length]), m]);
}

export function createXksOperations({ store, backends }: { store: Pick<XksStore, 'findKey'>; backends: XksBackends }) {
  async function usableKey(keyId: string, usage?: KeyUsage): Promise<{ key: XksKeyRow; backend: KeyBackend }> {
    const key = await store.findKey(keyId);
    if (!key) throw new XksProxyError('KeyNotFoundException', `No external key ${keyId} in this proxy`);
    const backend = key.backend === 'pkcs11' ? backends.pkcs11 : backends.software;
    if (!backend) throw new XksProxyError('InternalException', `Key ${keyId} is kept in a PKCS#11 token, and this proxy runs without --pkcs11-module`);
    if (usage !== undefined) {
      if (key.key_status !== 'ENABLED') throw new XksProxyError('InvalidStateException', `External key ${keyId} is disabled`);
      if (!parseKeyUsage(key.key_usage).includes(usage)) {
        throw new XksProxyError('InvalidKeyUsageException', `External key ${keyId} does not allow ${usage}`);
      }
    }
    return { key, backend };
  }

  function checkSize(bytes: Buffer, field: string, max: number): void {
    if (bytes.length > max) {
      throw new XksProxyError('UnsupportedOperationException', `${field} of ${bytes.length} bytes exceeds the ${max} bytes this proxy supports`);
    }
  }

  return {
    async getKeyMetadata(keyId: string, raw: Buffer): Promise<GetKeyMetadataResponse> {
      parseBody(getKeyMetadataBody, raw);
      const { key } = await usableKey(keyId);
      return { keySpec: 'AES_256', keyUsage: parseKeyUsage(key.key_usage), keyStatus: key.key_status };
    },

    async encrypt(keyId: string, raw: Buffer): Promise<EncryptResponse> {
      const body = parseBody(encryptBody, raw);
      const plaintext = base64(body.plaintext, 'plaintext')!;
      const aad = base64(body.additionalAuthenticatedData, 'additionalAuthenticatedData');
      if (plaintext.length === 0) throw new XksProxyError('ValidationException', 'plaintext is empty');
      checkSize(plaintext, 'plaintext', XKS_LIMITS.maxPlaintextBytes);
      if (aad) checkSize(aad, 'additionalAuthenticatedData', XKS_LIMITS.maxAadBytes);
      const { key, backend } = await usableKey(keyId, 'ENCRYPT');
      const framed = frameAad(aad, undefined);
      const out = await backend.encrypt(key, plaintext, framed);
      plaintext.fill(0);
      const response: EncryptResponse = {
        ciphertext: out.ciphertext.toString('base64'),
        initializationVector: out.iv.toString('base64'),
        authenticationTag: out.tag.toString('base64'),
      };
      if (body.ciphertextDataIntegrityValueAlgorithm === 'SHA_256') {
        // Appendix C's order: hash what will be returned first, then prove it decrypts, so a bit
        // flip after the hash cannot slip through as a consistent but undecryptable answer.
        response.ciphertextDataIntegrityValue = ciphertextDataIntegrityValue({ aad, ...out }).toString('base64');
        try {
          (await backend.decrypt(key, { ...out, aad: framed })).fill(0);
        } catch {
          throw new XksProxyError('InternalException', 'The key manager produced a ciphertext that does not decrypt; retry');
        }
      }
      return response;
    },

    async decrypt(keyId: string, raw: Buffer): Promise<DecryptResponse> {
      const body = parseBody(decryptBody, raw);
      const ciphertext = base64(body.ciphertext, 'ciphertext')!;
      const metadata = base64(body.ciphertextMetadata, 'ciphertextMetadata');
      const aad = base64(body.additionalAuthenticatedData, 'additionalAuthenticatedData');
      const iv = base64(body.initializationVector, 'initializationVector')!;
      const tag = base64(body.authenticationTag, 'authenticationTag')!;
      checkSize(ciphertext, 'ciphertext', XKS_LIMITS.maxPlaintextBytes);
      if (aad) checkSize(aad, 'additionalAuthenticatedData', XKS_LIMITS.maxAadBytes);
      if (ciphertext.length === 0) throw new XksProxyError('InvalidCiphertextException', 'ciphertext is empty');
      if (!XKS_LIMITS.ivBytes.includes(iv.length)) throw new XksProxyError('InvalidCiphertextException', `initializationVector must be 12 or 16 bytes, not ${iv.length}`);
      if (tag.length !== XKS_LIMITS.tagBytes) throw new XksProxyError('InvalidCiphertextException', `authenticationTag must be 16 bytes, not ${tag.length}`);
      if (metadata && metadata.length > XKS_LIMITS.maxCiphertextMetadataBytes) {
        throw new XksProxyError('InvalidCiphertextException', `ciphertextMetadata must be at most 20 bytes, not ${metadata.length}`);
      }
      const { key, backend } = await usableKey(keyId, 'DECRYPT');
      try {
        const plaintext = await backend.decrypt(key, { iv, ciphertext, tag, aad: frameAad(aad, metadata) });
        const response = { plaintext: plaintext.toString('base64') };
        plaintext.fill(0);
        return response;
      } catch (err) {
        if (err instanceof DecryptFailed) throw new XksProxyError('InvalidCiphertextException', err.message);
        throw err;
      }
    },

    /** Deep check: every backend does a round trip under a test key. The request body is not inspected. */
    async getHealthStatus(): Promise<GetHealthStatusResponse> {
      const details = await Promise.all([backends.software, ...(backends.pkcs11 ? [backends.pkcs11] : [])].map((b) => b.health()));
      return {
        xksProxyFleetSize: 1,
        xksProxyVendor: 'convault',
        xksProxyModel: `convault reference XKS proxy ${VERSION}`,
        ekmVendor: details[details.length - 1]!.vendor,
        ekmFleetDetails: details.map(({ id, model, healthStatus }) => ({ id, model, healthStatus })),
      };
    },
  };
}

export type XksOperations = ReturnType<typeof createXksOperations>;
