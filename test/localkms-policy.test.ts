import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetKeyPolicyCommand,
  ListKeysCommand,
  MalformedPolicyDocumentException,
  NotFoundException,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsClient } from '../src/kms/client-factory.js';
import { localKmsClient } from './support/local-kms.js';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget, tempDir } from './support/databases.js';

/**
 * Key policies as the platform meets them: a customer key whose policy lets the platform account use
 * it only with the encryption context of the customer's organizations, used cross-account by ARN.
 */

const CUSTOMER = '111122223333';
const PLATFORM = '444455556666';
const CTX = 'convault-organization-id';
const REGION = 'us-east-1';

let kms: LocalKms;
let closeDb: () => Promise<void>;
let customer: KMSClient;
let platform: KMSClient;
let principalsDir: string;
const clientFor = (accessKeyId: string, secretAccessKey?: string, region = REGION) =>
  secretAccessKey === undefined
    ? localKmsClient(kms, accessKeyId, { region, maxAttempts: 1 })
    : createKmsClient({ endpoint: kms.url, region, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });

beforeAll(async () => {
  principalsDir = tempDir('localkms-principals-');
  const principalsFile = path.join(principalsDir, 'principals.json');
  fs.writeFileSync(
    principalsFile,
    JSON.stringify({
      principals: [
        { accessKeyId: 'AKIACONVAULTNODE01', secretAccessKey: 'node-secret', arn: `arn:aws:iam::${PLATFORM}:role/convault-node` },
        { accessKeyId: 'AKIAAUDITOR0000001', secretAccessKey: 'auditor-secret', arn: `arn:aws:iam::${CUSTOMER}:user/auditor` },
      ],
    }),
  );
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, principalsFile });
  customer = clientFor(CUSTOMER);
  platform = clientFor(PLATFORM);
});

afterAll(async () => {
  await kms.close();
  await closeDb();
  fs.rmSync(principalsDir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error;
}

async function customerKey(orgIds: string[], alias?: string) {
  const policy = JSON.stringify(customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds }));
  const meta = (await customer.send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!;
  if (alias) await customer.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: meta.KeyId }));
  return meta;
}

describe('platform statement: the org id in the condition vs another org id', () => {
  it('lets the platform generate and decrypt data keys for its organization only', async () => {
    const key = await customerKey(['org-a']);
    const mine = await platform.send(new GenerateDataKeyCommand({ KeyId: key.Arn, KeySpec: 'AES_256', EncryptionContext: { [CTX]: 'org-a' } }));
    expect(mine.KeyId).toBe(key.Arn);
    const back = await platform.send(new DecryptCommand({ CiphertextBlob: mine.CiphertextBlob, EncryptionContext: { [CTX]: 'org-a' } }));
    expect(back.KeyId).toBe(key.Arn);

    const other = await rejection(platform.send(new GenerateDataKeyCommand({ KeyId: key.Arn, KeySpec: 'AES_256', EncryptionContext: { [CTX]: 'org-b' } })));
    expect(other.name).toBe('AccessDeniedException');
    expect(other.message).toBe(
      `User: arn:aws:iam::${PLATFORM}:root is not authorized to perform: kms:GenerateDataKey on resource: ${key.Arn} because no resource-based policy allows the kms:GenerateDataKey action`,
    );
    for (const call of [
      platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x') })),
      platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x'), EncryptionContext: { other: 'org-a' } })),
      platform.send(new DecryptCommand({ CiphertextBlob: mine.CiphertextBlob, EncryptionContext: { [CTX]: 'org-b' } })),
    ]) {
      expect((await rejection(call)).name).toBe('AccessDeniedException');
    }
  });

  it('accepts several org ids', async () => {
    const key = await customerKey(['org-a', 'org-b']);
    for (const org of ['org-a', 'org-b']) {
      await platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from(org), EncryptionContext: { [CTX]: org } }));
    }
    expect((await rejection(platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('c'), EncryptionContext: { [CTX]: 'org-c' } })))).name).toBe(
      'AccessDeniedException',
    );
  });

  it('lets the platform DescribeKey (its own statement, no context condition) but nothing else', async () => {
    const key = await customerKey(['org-a'], 'alias/contact-center-describe');
    expect((await platform.send(new DescribeKeyCommand({ KeyId: key.Arn }))).KeyMetadata?.KeyState).toBe('Enabled');
    const aliasArn = `arn:aws:kms:${REGION}:${CUSTOMER}:alias/contact-center-describe`;
    expect((await platform.send(new DescribeKeyCommand({ KeyId: aliasArn }))).KeyMetadata?.Arn).toBe(key.Arn);
    expect((await rejection(platform.send(new GetKeyPolicyCommand({ KeyId: key.Arn })))).name).toBe('NotFoundException'); // not cross-account
    // ReEncrypt* is in the platform statement, under the same org condition as the other uses.
    const ctx = { [CTX]: 'org-a' };
    const blob = (await platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x'), EncryptionContext: ctx }))).CiphertextBlob;
    const reEncrypt = new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: ctx, DestinationKeyId: key.Arn, DestinationEncryptionContext: ctx });
    expect((await platform.send(reEncrypt)).KeyId).toBe(key.Arn);
    const toOtherOrg = new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: ctx, DestinationKeyId: key.Arn, DestinationEncryptionContext: { [CTX]: 'org-b' } });
    expect((await rejection(platform.send(toOtherOrg))).name).toBe('AccessDeniedException');
  });

  it('resolves alias names and bare key ids in the caller account, ARNs in theirs', async () => {
    const key = await customerKey(['org-a'], 'alias/contact-center-names');
    const ctx = { [CTX]: 'org-a' };
    const byAliasArn = await platform.send(
      new GenerateDataKeyCommand({ KeyId: `arn:aws:kms:${REGION}:${CUSTOMER}:alias/contact-center-names`, NumberOfBytes: 32, EncryptionContext: ctx }),
    );
    expect(byAliasArn.KeyId).toBe(key.Arn);
    expect(await rejection(platform.send(new GenerateDataKeyCommand({ KeyId: 'alias/contact-center-names', NumberOfBytes: 32, EncryptionContext: ctx })))).toBeInstanceOf(
      NotFoundException,
    );
    expect(await rejection(platform.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32, EncryptionContext: ctx })))).toBeInstanceOf(NotFoundException);
  });

  it('never lets another account manage the key, whatever the policy says', async () => {
    const key = await customerKey(['org-a']);
    expect(await rejection(platform.send(new DisableKeyCommand({ KeyId: key.Arn })))).toBeInstanceOf(NotFoundException);
    expect((await platform.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyArn)).not.toContain(key.Arn);
  });

  it('a key of another region is NotFound even by ARN', async () => {
    const key = await customerKey(['org-a']);
    const elsewhere = clientFor(PLATFORM, undefined, 'eu-central-1');
    expect(await rejection(elsewhere.send(new DescribeKeyCommand({ KeyId: key.Arn })))).toBeInstanceOf(NotFoundException);
  });
});

describe('the customer revokes', () => {
  it('by removing the platform from the policy', async () => {
    const key = await customerKey(['org-a']);
    const blob = (await platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x'), EncryptionContext: { [CTX]: 'org-a' } }))).CiphertextBlob;
    const rootOnly = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: [] });
    await customer.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: JSON.stringify(rootOnly) }));
    expect((await rejection(platform.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { [CTX]: 'org-a' } })))).name).toBe('AccessDeniedException');
    // The customer, of course, still can.
    await customer.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { [CTX]: 'org-a' } }));
  });

  it('by an explicit Deny for one organization, which wins over the Allow', async () => {
    const key = await customerKey(['org-a', 'org-b']);
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: ['org-a', 'org-b'] });
    const withDeny = {
      ...policy,
      Statement: [
        ...policy.Statement,
        { Sid: 'RevokeOrgB', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*', Condition: { StringEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-b' } } },
      ],
    };
    await customer.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: JSON.stringify(withDeny) }));
    await platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x'), EncryptionContext: { [CTX]: 'org-a' } }));
    const denied = await rejection(platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x'), EncryptionContext: { [CTX]: 'org-b' } })));
    expect(denied.name).toBe('AccessDeniedException');
    expect(denied.message).toMatch(/explicit deny/);
  });

  it('and cannot lock itself out by accident (lockout safety check), only on purpose', async () => {
    const key = await customerKey(['org-a']);
    const platformOnly = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: PLATFORM }, Action: 'kms:Encrypt', Resource: '*' }] };
    expect(await rejection(customer.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: JSON.stringify(platformOnly) })))).toBeInstanceOf(
      MalformedPolicyDocumentException,
    );
    await customer.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, Policy: JSON.stringify(platformOnly), BypassPolicyLockoutSafetyCheck: true }));
    expect((await rejection(customer.send(new GetKeyPolicyCommand({ KeyId: key.KeyId })))).name).toBe('AccessDeniedException');
  });
});

describe('principals from the principals file (signature verified)', () => {
  it('acts as the mapped role, which a policy can name', async () => {
    const node = clientFor('AKIACONVAULTNODE01', 'node-secret');
    const policy = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${CUSTOMER}:root` }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${PLATFORM}:role/convault-node` }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' },
      ],
    };
    const key = (await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }))).KeyMetadata!;
    const enc = await node.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x') }));
    expect(enc.KeyId).toBe(key.Arn);
    // The account root of the platform is not the role: the policy names only the role.
    expect((await rejection(platform.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: Buffer.from('x') })))).name).toBe('AccessDeniedException');
  });

  it('rejects a request signed with the wrong secret', async () => {
    const err = await rejection(clientFor('AKIACONVAULTNODE01', 'not-the-secret').send(new ListKeysCommand({})));
    expect(err.name).toBe('InvalidSignatureException');
  });

  it('a user of the customer account is admitted by the account-root statement (no IAM policies here)', async () => {
    const key = await customerKey(['org-a']);
    const auditor = clientFor('AKIAAUDITOR0000001', 'auditor-secret');
    expect((await auditor.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata?.Arn).toBe(key.Arn);
  });
});
