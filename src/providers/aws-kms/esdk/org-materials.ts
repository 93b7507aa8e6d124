import {
  getLocalCryptographicMaterialsCache,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
  type KmsNodeClientSupplier,
  type NodeAlgorithmSuite,
  type NodeMaterialsManager,
} from '@aws-crypto/client-node';
import { ForeignMessageError } from '../../encrypt-data-codec.js';
/** The organization's key as the ESDK keyring needs it: the alias (or key) ARN and the configuration version (cache key). */
interface ActiveKey {
  keyId: string;
  version: number;
}

/** The public-key pair the ESDK adds to the context of messages made with a signing suite. */
export const ESDK_PUBLIC_KEY_CONTEXT = 'aws-crypto-public-key';

export interface OrgMaterialsSettings {
  encryptionContextKey: string;
  /** How long a data key is reused across messages (CONVAULT_KEY_CACHE_MAX_AGE_S): also how fast a revoked CMK takes effect. */
  cacheMaxAgeMs: number;
  /** Messages one cached data key may encrypt. */
  maxMessagesPerDataKey: number;
  /** Cached data keys, all organizations together. */
  cacheCapacity: number;
  /** Organizations (configurations) with a materials manager in memory. */
  maxOrganizations: number;
}

/** Whether a KMS key ARN named in a message is one of the organization's keys. */
export type OrgKeyCheck = (keyArn: string) => Promise<boolean> | boolean;

/** Exactly `{<ctxKey>: orgId}`, plus the ESDK's own public key pair when a signing suite made the message. */
export function isOrgContext(context: Record<string, string>, contextKey: string, orgId: string): boolean {
  const keys = Object.keys(context);
  return context[contextKey] === orgId && keys.every((k) => k === contextKey || k === ESDK_PUBLIC_KEY_CONTEXT);
}

/** The account of a KMS ARN (alias or key). */
export function accountOf(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:kms:[a-z0-9-]+:(\d{12}):/.exec(arn)?.[1];
}

function partitionOf(arn: string): string {
  return /^arn:(aws[a-z-]*):/.exec(arn)?.[1] ?? 'aws';
}

/**
 * ESDK materials managers per organization and key configuration, over one shared cache: a caching
 * materials manager whose partition is the organization (and configuration), so one org's cached
 * data keys are never used for another, and a configuration switch starts a new partition.
 *
 * Encrypt: KMS keyring with the configuration's alias ARN as generator (one GenerateDataKey per
 * cache window, not per message). Decrypt: a discovery keyring limited to the CMK's account, behind
 * a check that the message's encryption context is exactly this organization's — before any KMS call.
 */
export function createOrgMaterials(clientProvider: KmsNodeClientSupplier, settings: OrgMaterialsSettings) {
  const cache = getLocalCryptographicMaterialsCache<NodeAlgorithmSuite>(settings.cacheCapacity);
  const managers = new Map<string, NodeMaterialsManager>();

  function lru(id: string, make: () => NodeMaterialsManager): NodeMaterialsManager {
    let manager = managers.get(id);
    if (manager) {
      managers.delete(id);
    } else {
      manager = make();
      while (managers.size >= settings.maxOrganizations) managers.delete(managers.keys().next().value!);
    }
    managers.set(id, manager);
    return manager;
  }

  const caching = (partition: string, keyring: KmsKeyringNode) =>
    new NodeCachingMaterialsManager({
      cache,
      backingMaterials: keyring,
      partition,
      maxAge: settings.cacheMaxAgeMs,
      maxMessagesEncrypted: settings.maxMessagesPerDataKey,
    });

  return {
    forEncrypt(orgId: string, key: ActiveKey): NodeMaterialsManager {
      const partition = `convault/encrypt/${orgId}/${key.version}/${key.keyId}`;
      return lru(partition, () => caching(partition, new KmsKeyringNode({ generatorKeyId: key.keyId, clientProvider })));
    },

    /**
     * Only data keys under one of the org's own KMS keys are tried, and only the first of them: a
     * message (altered, or made for someone else) cannot make convault call KMS with a key it names,
     * nor make it call KMS more than once, nor pass off its own defect as the org's key failing.
     */
    forDecrypt(orgId: string, key: ActiveKey, isOrgKey: OrgKeyCheck): NodeMaterialsManager {
      const partition = `convault/decrypt/${orgId}/${key.version}/${key.keyId}`;
      // Only the caching manager is kept; the check around it is the caller's, made anew for each
      // message. Kept together, every later Decrypt of the configuration would judge keys by the
      // org's keys as they were at the first one, and refuse a message under a key the org got since
      // (a rotation saved on another node, an alias retargeted in AWS).
      const inner = lru(partition, () => {
        const account = accountOf(key.keyId);
        const keyring = new KmsKeyringNode({
          discovery: true,
          ...(account ? { discoveryFilter: { accountIDs: [account], partition: partitionOf(key.keyId) } } : {}),
          clientProvider,
        });
        return caching(partition, keyring);
      });
      return {
        getEncryptionMaterials: () => Promise.reject(new Error('decrypt-only materials manager')),
        decryptMaterials: async (request) => {
          if (!isOrgContext(request.encryptionContext, settings.encryptionContextKey, orgId)) throw new ForeignMessageError('context');
          for (const edk of request.encryptedDataKeys) {
            if (edk.providerId === 'aws-kms' && (await isOrgKey(edk.providerInfo))) return inner.decryptMaterials({ ...request, encryptedDataKeys: [edk] });
          }
          throw new ForeignMessageError('keys');
        },
      };
    },
  };
}
