import { AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, type KmsNodeClientSupplier } from '@aws-crypto/client-node';
import { ForeignMessageError, MalformedMessageError, type EncryptDataCodec } from '../../encrypt-data-codec.js';
import { classifyAwsKmsFailure } from '../index.js';
import { withKmsCallLog } from './esdk-kms-client.js';
import { createOrgMaterials, isOrgContext } from './org-materials.js';

/** The ESDK suite of every message convault makes (docs/SECURED_DATA.md, "Why this suite"). */
export const ENCRYPT_SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
/** Encrypted data keys a message may carry (a customer's back end may add its own keys with a multi-keyring). */
const MAX_ENCRYPTED_DATA_KEYS = 10;

export interface EsdkMessageSettings {
  encryptionContextKey: string;
  cacheMaxAgeMs: number;
  /** Largest message body Decrypt opens, in bytes. */
  maxBodySize: number;
  /** Messages one cached ESDK data key may encrypt (default 100,000). */
  maxMessagesPerDataKey?: number;
  /** Cached ESDK data keys for all organizations together (default 5,000). */
  cacheCapacity?: number;
  /** Organizations with materials in memory (default 1,000). */
  maxOrganizations?: number;
}

/**
 * Encrypt Data messages as AWS Encryption SDK messages under the organization's KMS key, so the
 * customer's own back end decrypts them with the ESDK and the same key, without convault. The ESDK
 * folds KMS errors into text: the KMS calls made for a message are logged, and the first failure is
 * what the key did wrong.
 */
export function createEsdkMessageCodec(clientProvider: KmsNodeClientSupplier, settings: EsdkMessageSettings): EncryptDataCodec {
  const esdk = buildClient({ commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, maxEncryptedDataKeys: MAX_ENCRYPTED_DATA_KEYS });
  const materials = createOrgMaterials(clientProvider, {
    encryptionContextKey: settings.encryptionContextKey,
    cacheMaxAgeMs: settings.cacheMaxAgeMs,
    maxMessagesPerDataKey: settings.maxMessagesPerDataKey ?? 100_000,
    cacheCapacity: settings.cacheCapacity ?? 5_000,
    maxOrganizations: settings.maxOrganizations ?? 1_000,
  });

  /** Runs an ESDK operation; what went wrong leaves as a foreign message, a classified key failure, or (decrypt) a malformed message. */
  async function run<T>(operation: 'encrypt' | 'decrypt', fn: () => Promise<T>): Promise<{ result: T; calledProvider: boolean }> {
    const { log, result, error } = await withKmsCallLog(fn);
    if (error === undefined) return { result: result as T, calledProvider: log.calls > 0 };
    if (error instanceof ForeignMessageError) throw error;
    const kms = log.failures[0];
    if (kms) throw classifyAwsKmsFailure(kms);
    throw operation === 'decrypt' ? new MalformedMessageError({ cause: error }) : error;
  }

  return {
    async encrypt(orgId, key, plaintext) {
      const { result, calledProvider } = await run('encrypt', () =>
        esdk.encrypt(materials.forEncrypt(orgId, key), plaintext, {
          encryptionContext: { [settings.encryptionContextKey]: orgId },
          suiteId: ENCRYPT_SUITE,
        }),
      );
      return { message: result.result, keyIds: result.messageHeader.encryptedDataKeys.map((edk) => edk.providerInfo), calledProvider };
    },

    async decrypt(orgId, key, message, isOrgKey) {
      const { result, calledProvider } = await run('decrypt', () => esdk.decrypt(materials.forDecrypt(orgId, key, isOrgKey), message, { maxBodySize: settings.maxBodySize }));
      return {
        plaintext: result.plaintext,
        forOrganization: isOrgContext(result.messageHeader.encryptionContext, settings.encryptionContextKey, orgId),
        calledProvider,
      };
    },
  };
}
