import { randomBytes } from 'node:crypto';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSInvalidStateException,
  ListAliasesCommand,
  ListKeysCommand,
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
import { sqliteTarget } from './support/databases.js';

/** Key states over time (with an injected clock), alias retargeting, ReEncrypt. */

const CUSTOMER = '111122223333';
const DAY = 86_400_000;

let kms: LocalKms;
let closeDb: () => Promise<void>;
let client: KMSClient;
let now = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, clock: () => now });
  client = localKmsClient(kms, CUSTOMER, { maxAttempts: 1 });
});

afterAll(async () => {
  await kms.close();
  await closeDb();
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error;
}

async function keyWithBlob(context: Record<string, string> = { org: 'o-1' }) {
  const meta = (await client.send(new CreateKeyCommand({}))).KeyMetadata!;
  const blob = (await client.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('data'), EncryptionContext: context }))).CiphertextBlob!;
  return { meta, blob, context };
}

/** Every cryptographic operation on the key, each expected to fail with `type`. */
async function expectCryptoRefused(keyId: string, blob: Uint8Array, context: Record<string, string>, type: new (...args: never[]) => Error) {
  const calls = [
    client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })),
    client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })),
    client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })),
    client.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: context, DestinationKeyId: keyId })),
  ];
  for (const call of calls) expect(await rejection(call)).toBeInstanceOf(type);
}

describe('Disabled', () => {
  it('refuses cryptographic operations with DisabledException until enabled again', async () => {
    const { meta, blob, context } = await keyWithBlob();
    await client.send(new DisableKeyCommand({ KeyId: meta.KeyId }));
    expect((await client.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata).toMatchObject({ KeyState: 'Disabled', Enabled: false });
    await expectCryptoRefused(meta.KeyId!, blob, context, DisabledException);
    const err = await rejection(client.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('x') })));
    expect(err.message).toBe(`${meta.Arn} is disabled.`);
    await client.send(new DisableKeyCommand({ KeyId: meta.Arn })); // idempotent, by ARN
    await client.send(new EnableKeyCommand({ KeyId: meta.KeyId }));
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('data');
  });

  it('takes key ids and ARNs only for Enable/DisableKey', async () => {
    const { meta } = await keyWithBlob();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/no-disable-by-alias', TargetKeyId: meta.KeyId }));
    expect(await rejection(client.send(new DisableKeyCommand({ KeyId: 'alias/no-disable-by-alias' })))).toBeInstanceOf(NotFoundException);
  });
});

describe('PendingDeletion and deletion', () => {
  it('schedules with a 30-day default window, returning the DeletionDate', async () => {
    const { meta } = await keyWithBlob();
    const out = await client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId }));
    expect(out).toMatchObject({ KeyId: meta.Arn, KeyState: 'PendingDeletion', PendingWindowInDays: 30 });
    expect(out.DeletionDate!.getTime()).toBe(now + 30 * DAY);
    expect((await client.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata).toMatchObject({ KeyState: 'PendingDeletion', Enabled: false });
  });

  it.each([6, 31])('refuses a %i-day window', async (days) => {
    const { meta } = await keyWithBlob();
    expect((await rejection(client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId, PendingWindowInDays: days })))).name).toBe('ValidationException');
  });

  it('refuses use and state changes with KMSInvalidStateException while pending', async () => {
    const { meta, blob, context } = await keyWithBlob();
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId, PendingWindowInDays: 7 }));
    await expectCryptoRefused(meta.KeyId!, blob, context, KMSInvalidStateException);
    for (const call of [
      client.send(new EnableKeyCommand({ KeyId: meta.KeyId })),
      client.send(new DisableKeyCommand({ KeyId: meta.KeyId })),
      client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId })),
      client.send(new CreateAliasCommand({ AliasName: 'alias/to-pending', TargetKeyId: meta.KeyId })),
    ]) {
      expect(await rejection(call)).toBeInstanceOf(KMSInvalidStateException);
    }
    // The owner can still fix the policy of a key pending deletion, as in AWS.
    const policy = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: CUSTOMER }, Action: 'kms:*', Resource: '*' }] });
    await client.send(new PutKeyPolicyCommand({ KeyId: meta.KeyId, Policy: policy }));
  });

  it('CancelKeyDeletion leaves the key Disabled, as AWS does', async () => {
    const { meta, blob, context } = await keyWithBlob();
    expect(await rejection(client.send(new CancelKeyDeletionCommand({ KeyId: meta.KeyId })))).toBeInstanceOf(KMSInvalidStateException);
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId, PendingWindowInDays: 7 }));
    expect((await client.send(new CancelKeyDeletionCommand({ KeyId: meta.KeyId }))).KeyId).toBe(meta.Arn);
    const described = (await client.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata!;
    expect(described.KeyState).toBe('Disabled');
    expect(described.DeletionDate).toBeUndefined();
    expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })))).toBeInstanceOf(DisabledException);
    await client.send(new EnableKeyCommand({ KeyId: meta.KeyId }));
    await client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }));
  });

  it('deletes the key for good once the window has passed: NotFound everywhere, aliases gone', async () => {
    const { meta, blob, context } = await keyWithBlob();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: meta.KeyId }));
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId, PendingWindowInDays: 7 }));

    now += 7 * DAY - 1;
    expect((await client.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata?.KeyState).toBe('PendingDeletion');

    now += 1;
    for (const call of [
      client.send(new DescribeKeyCommand({ KeyId: meta.KeyId })),
      client.send(new DescribeKeyCommand({ KeyId: 'alias/doomed' })),
      client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context })),
      client.send(new CancelKeyDeletionCommand({ KeyId: meta.KeyId })),
      client.send(new EnableKeyCommand({ KeyId: meta.KeyId })),
    ]) {
      expect(await rejection(call)).toBeInstanceOf(NotFoundException);
    }
    const keys = await client.send(new ListKeysCommand({ Limit: 1000 }));
    expect(keys.Keys!.map((k) => k.KeyId)).not.toContain(meta.KeyId);
    const aliases = await client.send(new ListAliasesCommand({}));
    expect(aliases.Aliases!.map((a) => a.AliasName)).not.toContain('alias/doomed');
    // The alias name is free again.
    const { meta: other } = await keyWithBlob();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: other.KeyId }));
  });

  it('ListKeys alone completes deletions whose window has passed', async () => {
    const { meta } = await keyWithBlob();
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: meta.KeyId, PendingWindowInDays: 7 }));
    now += 8 * DAY;
    const keys = await client.send(new ListKeysCommand({ Limit: 1000 }));
    expect(keys.Keys!.map((k) => k.KeyId)).not.toContain(meta.KeyId);
  });
});

describe('alias retargeting (rotation by alias)', () => {
  it('moves new encryptions to the new key while old blobs stay with the key that made them', async () => {
    const { meta: k1 } = await keyWithBlob();
    const { meta: k2 } = await keyWithBlob();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/contact-center', TargetKeyId: k1.KeyId }));
    const before = await client.send(new GenerateDataKeyCommand({ KeyId: 'alias/contact-center', KeySpec: 'AES_256', EncryptionContext: { org: 'o' } }));
    expect(before.KeyId).toBe(k1.Arn);

    await client.send(new UpdateAliasCommand({ AliasName: 'alias/contact-center', TargetKeyId: k2.Arn }));
    const after = await client.send(new GenerateDataKeyCommand({ KeyId: 'alias/contact-center', KeySpec: 'AES_256', EncryptionContext: { org: 'o' } }));
    expect(after.KeyId).toBe(k2.Arn);

    const old = await client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob, EncryptionContext: { org: 'o' } }));
    expect(old.KeyId).toBe(k1.Arn);
    // Naming the alias now names k2, which did not encrypt the old blob.
    expect(
      await rejection(client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob, EncryptionContext: { org: 'o' }, KeyId: 'alias/contact-center' }))),
    ).toBeInstanceOf(IncorrectKeyException);
  });

  it('refuses to point an alias at a key pending deletion', async () => {
    const { meta: k1 } = await keyWithBlob();
    const { meta: k2 } = await keyWithBlob();
    await client.send(new CreateAliasCommand({ AliasName: 'alias/retarget-pending', TargetKeyId: k1.KeyId }));
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: k2.KeyId }));
    expect(await rejection(client.send(new UpdateAliasCommand({ AliasName: 'alias/retarget-pending', TargetKeyId: k2.KeyId })))).toBeInstanceOf(
      KMSInvalidStateException,
    );
  });
});

describe('ReEncrypt', () => {
  it('moves a blob to another key and another context without the caller seeing the plaintext', async () => {
    const { meta: source, blob } = await keyWithBlob({ org: 'o-1' });
    const { meta: destination } = await keyWithBlob();
    const out = await client.send(
      new ReEncryptCommand({
        CiphertextBlob: blob,
        SourceEncryptionContext: { org: 'o-1' },
        SourceKeyId: source.Arn,
        DestinationKeyId: destination.KeyId,
        DestinationEncryptionContext: { org: 'o-1', generation: '2' },
      }),
    );
    expect(out).toMatchObject({
      SourceKeyId: source.Arn,
      KeyId: destination.Arn,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    const dec = await client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { generation: '2', org: 'o-1' } }));
    expect(dec.KeyId).toBe(destination.Arn);
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('data');
    expect(await rejection(client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { org: 'o-1' } })))).toBeInstanceOf(
      InvalidCiphertextException,
    );
  });

  it('needs the right source context and source key', async () => {
    const { meta: source, blob } = await keyWithBlob({ org: 'o-1' });
    const { meta: destination } = await keyWithBlob();
    expect(
      await rejection(client.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { org: 'o-2' }, DestinationKeyId: destination.KeyId }))),
    ).toBeInstanceOf(InvalidCiphertextException);
    expect(
      await rejection(
        client.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { org: 'o-1' }, SourceKeyId: destination.KeyId, DestinationKeyId: source.KeyId })),
      ),
    ).toBeInstanceOf(IncorrectKeyException);
  });

  it('re-encrypts under the same key with a new context (context rotation)', async () => {
    const { meta, blob } = await keyWithBlob({ org: 'o-1' });
    const out = await client.send(
      new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { org: 'o-1' }, DestinationKeyId: meta.KeyId, DestinationEncryptionContext: { org: 'o-9' } }),
    );
    expect(out.KeyId).toBe(meta.Arn);
    await client.send(new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: { org: 'o-9' } }));
  });
});
