import { randomBytes } from 'node:crypto';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { CreateAliasCommand, CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localKmsClient } from './support/local-kms.js';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget } from './support/databases.js';

/** The AWS Encryption SDK's KMS keyring works against the local KMS unchanged. */

const CUSTOMER = '111122223333';
const PLATFORM = '444455556666';
const CTX = 'convault-organization-id';
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

let kms: LocalKms;
let closeDb: () => Promise<void>;
let keyArn: string;

const keyring = (accessKeyId: string, generatorKeyId = keyArn) =>
  new KmsKeyringNode({ generatorKeyId, clientProvider: (region: string) => localKmsClient(kms, accessKeyId, { region, maxAttempts: 1 }) });

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0 });
  const customer = localKmsClient(kms, CUSTOMER);
  const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: ['org-a'] });
  const key = (await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }))).KeyMetadata!;
  await customer.send(new CreateAliasCommand({ AliasName: 'alias/esdk', TargetKeyId: key.KeyId }));
  keyArn = key.Arn!;
});

afterAll(async () => {
  await kms.close();
  await closeDb();
});

describe('AWS Encryption SDK (KmsKeyringNode) against the local KMS', () => {
  it('encrypts and decrypts a message', async () => {
    const { result } = await encrypt(keyring(CUSTOMER), 'card data 4111 1111 1111 1111');
    const { plaintext, messageHeader } = await decrypt(keyring(CUSTOMER), result);
    expect(plaintext.toString()).toBe('card data 4111 1111 1111 1111');
    expect(messageHeader.encryptedDataKeys[0]!.providerInfo).toBe(keyArn);
  });

  it('carries the encryption context, and the platform may use the customer key for its organization', async () => {
    const { result } = await encrypt(keyring(PLATFORM), Buffer.from('for the back end'), { encryptionContext: { [CTX]: 'org-a' } });
    // The customer's back end decrypts with the same key under its own account.
    const { plaintext, messageHeader } = await decrypt(keyring(CUSTOMER), result);
    expect(plaintext.toString()).toBe('for the back end');
    expect(messageHeader.encryptionContext[CTX]).toBe('org-a');
  });

  it('is refused for another organization by the key policy', async () => {
    await expect(encrypt(keyring(PLATFORM), 'x', { encryptionContext: { [CTX]: 'org-b' } })).rejects.toThrow(/not authorized/);
  });

  it('takes an alias ARN as generator', async () => {
    const aliasArn = `arn:aws:kms:us-east-1:${CUSTOMER}:alias/esdk`;
    const { result } = await encrypt(keyring(CUSTOMER, aliasArn), 'via alias');
    // The data key records the key ARN KMS returned, so decrypting names the key itself.
    const { plaintext } = await decrypt(keyring(CUSTOMER, keyArn), result);
    expect(plaintext.toString()).toBe('via alias');
  });
});
