import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisabledException,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  NotFoundException,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localKmsClient } from './support/local-kms.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { openDatabase } from '../src/store/database.js';
import { postgresTarget, sqliteTarget, type DatabaseTarget } from './support/databases.js';

/**
 * Two local KMS nodes on one database. Each node keeps per-process caches (opened key material,
 * parsed policies); whatever one node changes — state, policy, alias, deletion — must hold on the
 * other at its very next request, however warm that node's caches are.
 */

const CUSTOMER = '111122223333';
const PLATFORM = '444455556666';
const CTX = { 'convault-organization-id': 'org-1' };
const DAY = 86_400_000;

function policyFor(orgId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Owner', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${CUSTOMER}:root` }, Action: 'kms:*', Resource: '*' },
      {
        Sid: 'Platform',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${PLATFORM}:root` },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:EncryptionContext:convault-organization-id': orgId } },
      },
    ],
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error;
}

const targets: DatabaseTarget[] = [sqliteTarget, postgresTarget];

describe.each(targets)('two local KMS nodes on one $name database', (target) => {
  let now = Date.UTC(2026, 0, 1);
  let nodeA: LocalKms;
  let nodeB: LocalKms;
  let closeAll: () => Promise<void>;
  let ownerOnA: KMSClient;
  let platformOnA: KMSClient;
  let platformOnB: KMSClient;

  beforeAll(async () => {
    if (!target.available) return;
    const first = await target.open();
    // A second connection to the same database, as another node would have.
    const second = await openDatabase<any>(first.url ? { url: first.url, dataDir: first.dataDir, schema: first.schema } : { dataDir: first.dataDir });
    const rootKey = randomBytes(32);
    nodeA = await startLocalKms({ db: first.db, dialect: first.dialect, rootKey, port: 0, clock: () => now });
    nodeB = await startLocalKms({ db: second.db, dialect: second.dialect, rootKey, port: 0, clock: () => now });
    const client = (kms: LocalKms, accessKeyId: string) => localKmsClient(kms, accessKeyId, { maxAttempts: 1 });
    ownerOnA = client(nodeA, CUSTOMER);
    platformOnA = client(nodeA, PLATFORM);
    platformOnB = client(nodeB, PLATFORM);
    closeAll = async () => {
      for (const c of [ownerOnA, platformOnA, platformOnB]) c.destroy();
      await Promise.all([nodeA.close(), nodeB.close()]);
      await second.close();
      await first.close();
    };
  });

  afterAll(async () => {
    await closeAll?.();
  });

  /** A key with an alias, and node B's caches warmed on it: a data key generated and decrypted there. */
  async function warmKey(aliasName: string) {
    const key = (await ownerOnA.send(new CreateKeyCommand({ Policy: policyFor('org-1') }))).KeyMetadata!;
    await ownerOnA.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    const aliasArn = `arn:aws:kms:us-east-1:${CUSTOMER}:${aliasName}`;
    const dataKey = await platformOnB.send(new GenerateDataKeyCommand({ KeyId: aliasArn, KeySpec: 'AES_256', EncryptionContext: CTX }));
    const blob = dataKey.CiphertextBlob!;
    const back = await platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX, KeyId: key.Arn }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).toBe(true);
    return { key, aliasArn, blob };
  }

  it.skipIf(!target.available)('refuses a key on node B as soon as node A disables it, and serves it again once enabled', async () => {
    const { key, aliasArn, blob } = await warmKey('alias/disable-me');
    await ownerOnA.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    // Thunks: each call is made only when awaited, so none rejects unobserved.
    for (const call of [
      () => platformOnB.send(new GenerateDataKeyCommand({ KeyId: aliasArn, KeySpec: 'AES_256', EncryptionContext: CTX })),
      () => platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX, KeyId: key.Arn })),
      () => platformOnB.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: CTX, DestinationKeyId: aliasArn, DestinationEncryptionContext: CTX })),
    ]) {
      expect(await rejection(call())).toBeInstanceOf(DisabledException);
    }
    await ownerOnA.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    await platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX, KeyId: key.Arn }));
  });

  it.skipIf(!target.available)('applies a key policy changed on node A to node B at its next request', async () => {
    const { key, aliasArn, blob } = await warmKey('alias/repolicy');
    await ownerOnA.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default', Policy: policyFor('org-2') }));
    expect((await rejection(platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX })))).name).toBe('AccessDeniedException');
    expect(
      (await rejection(platformOnB.send(new GenerateDataKeyCommand({ KeyId: aliasArn, KeySpec: 'AES_256', EncryptionContext: CTX })))).name,
    ).toBe('AccessDeniedException');
    await ownerOnA.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: 'default', Policy: policyFor('org-1') }));
    await platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX }));
  });

  it.skipIf(!target.available)('follows an alias retargeted on node A', async () => {
    const { aliasArn } = await warmKey('alias/moving');
    const next = (await ownerOnA.send(new CreateKeyCommand({ Policy: policyFor('org-1') }))).KeyMetadata!;
    await ownerOnA.send(new UpdateAliasCommand({ AliasName: 'alias/moving', TargetKeyId: next.KeyId }));
    const out = await platformOnB.send(new EncryptCommand({ KeyId: aliasArn, Plaintext: Buffer.from('x'), EncryptionContext: CTX }));
    expect(out.KeyId).toBe(next.Arn);
  });

  it.skipIf(!target.available)('treats a key deleted through node A as gone on node B, whose caches hold its material', async () => {
    const { key, aliasArn, blob } = await warmKey('alias/doomed');
    await ownerOnA.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
    now += 7 * DAY;
    // Node A completes the deletion (material erased, alias dropped); node B had the material open.
    expect(await rejection(platformOnA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX })))).toBeInstanceOf(NotFoundException);
    expect(await rejection(platformOnB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX })))).toBeInstanceOf(NotFoundException);
    expect(
      await rejection(platformOnB.send(new GenerateDataKeyCommand({ KeyId: aliasArn, KeySpec: 'AES_256', EncryptionContext: CTX }))),
    ).toBeInstanceOf(NotFoundException);
  });
});
