import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  NodeCachingMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  type NodeAlgorithmSuite,
} from '@aws-crypto/client-node';
import { openValue, sealValue } from '../src/crypto/index.js';
import { openAttribute, sealAttribute } from '../src/services/secured-data/value-codec.js';
import { CONTEXT_KEY, type BenchOrg } from './stack.js';

export const VALUE_BYTES = 256;

export interface Case {
  name: string;
  op: () => unknown;
}

/** (a) AES-256-GCM in node:crypto, nothing else: fresh random nonce, 16-byte tag, no AAD. */
export function rawAesGcm(): Case {
  const key = randomBytes(32);
  const plaintext = randomBytes(VALUE_BYTES);
  const nonce = Buffer.alloc(12);
  return {
    name: '(a) raw AES-256-GCM, node:crypto',
    op: () => {
      randomFillSync(nonce);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      const ciphertext = cipher.update(plaintext);
      cipher.final();
      const tag = cipher.getAuthTag();
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      decipher.setAuthTag(tag);
      const out = decipher.update(ciphertext);
      decipher.final();
      if (out.length !== VALUE_BYTES) throw new Error('raw AES-GCM round trip failed');
    },
  };
}

/**
 * (b) convault's per-value work with warm caches, called directly rather than through a service
 * call: the conversation key from the conversation-key manager's cache (`peek`, which checks the
 * entry against a conversation key row read once before the run and hands out a fresh copy, zeroed
 * after use), and the value codec the service uses (`sealAttribute` / `openAttribute`: versioned
 * envelope with AAD of format version, org, conversation, name; string ↔ UTF-8 with the plaintext
 * zeroed). One key lookup for the encrypt and one for the decrypt. No database read and none of a
 * request's once-per-request work (see (b′) for the real service call).
 */
export async function convaultValuePath(org: BenchOrg): Promise<Case> {
  const { securedData, dal } = org.service({ cacheMaxAgeSeconds: 3600 });
  const conversationId = 'bench-warm-conversation';
  const value = 'v'.repeat(VALUE_BYTES);
  await securedData.replace(org.caller, conversationId, { data: { pan: value } });
  const snapshot = (await dal.readConversation(org.orgId, conversationId))!;
  await securedData.get(org.caller, conversationId); // warm: every key of the conversation is cached now
  const keys = securedData.internals.conversationKeys;
  const { orgId } = org;
  const cachedKey = () => {
    const key = keys.peek(orgId, conversationId, snapshot.key);
    if (!key) throw new Error('the conversation key left the cache during the benchmark');
    return key;
  };
  return {
    name: '(b) convault per-value work: key cache peek + value codec (no service call)',
    op: () => {
      const sealKey = cachedKey();
      const envelope = sealAttribute(sealKey, orgId, conversationId, 'pan', value);
      sealKey.fill(0);
      const openKey = cachedKey();
      const out = openAttribute(openKey, orgId, conversationId, 'pan', envelope);
      openKey.fill(0);
      if (out.length !== VALUE_BYTES) throw new Error('convault round trip failed');
    },
  };
}

/** (b₀) For the breakdown of (b): the envelope code of src/crypto alone, with a fixed key (no cache, no strings). */
export function envelopeOnly(): Case {
  const conversationKey = randomBytes(32);
  const plaintext = randomBytes(VALUE_BYTES);
  const ids = { orgId: '3e50de3b-6afe-4f51-9842-532378fbda1d', conversationId: 'bench-warm-conversation', name: 'pan' };
  return {
    name: '(b₀) src/crypto sealValue+openValue alone, fixed key',
    op: () => {
      const envelope = sealValue({ conversationKey, ...ids, plaintext });
      const out = openValue({ conversationKey, ...ids, envelope });
      if (out.length !== VALUE_BYTES) throw new Error('envelope round trip failed');
    },
  };
}

/** (b′) The real service call, for scale: a whole replace + get of one 256-byte attribute (SQLite, audit events). */
export async function convaultServiceRoundTrip(org: BenchOrg): Promise<Case> {
  const { securedData } = org.service();
  const value = 'v'.repeat(VALUE_BYTES);
  let n = 0;
  return {
    name: '(b′) SecuredDataService replace+get of one 256 B attribute (SQLite + audit)',
    op: async () => {
      const conversationId = `bench-service-${n++ % 1000}`;
      await securedData.replace(org.caller, conversationId, { data: { pan: value } });
      const got = await securedData.get(org.caller, conversationId);
      if (got.data.pan !== value) throw new Error('service round trip failed');
    },
  };
}

/** (c) @aws-crypto/client-node: raw AES keyring behind the caching materials manager. */
export function esdk(suiteId: AlgorithmSuiteIdentifier, name: string): Case {
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const keyring = new RawAesKeyringNode({
    keyName: 'bench-key',
    keyNamespace: 'convault-bench',
    unencryptedMasterKey: randomBytes(32),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  const cmm = new NodeCachingMaterialsManager({
    backingMaterials: keyring,
    cache: getLocalCryptographicMaterialsCache<NodeAlgorithmSuite>(100),
    maxAge: 60_000,
    partition: 'bench-org',
  });
  const plaintext = randomBytes(VALUE_BYTES);
  const encryptionContext = { [CONTEXT_KEY]: 'bench-org' };
  return {
    name,
    op: async () => {
      const { result } = await encrypt(cmm, plaintext, { suiteId, encryptionContext });
      const { plaintext: out } = await decrypt(cmm, result);
      if (out.length !== VALUE_BYTES) throw new Error('ESDK round trip failed');
    },
  };
}

export const COMMITTING_SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
export const SIGNING_DEFAULT_SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384;
