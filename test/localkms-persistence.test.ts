import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  AlreadyExistsException,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  ListAliasesCommand,
  ListKeysCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { localKmsClient } from './support/local-kms.js';
import { resolveLocalKmsRootKey, startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { openDatabase } from '../src/store/database.js';
import { postgresTarget, tempDir } from './support/databases.js';

/** Keys survive restarts, live in SQLite or PostgreSQL, and are shared by nodes on one PostgreSQL database. */

const CUSTOMER = '111122223333';
const CTX = { 'convault-organization-id': 'org-1' };
const client = (kms: LocalKms) => localKmsClient(kms, CUSTOMER, { maxAttempts: 1 });

describe('persistence across a restart (SQLite)', () => {
  it('decrypts a blob from before the restart with the same database and root key', async () => {
    const dataDir = tempDir('localkms-restart-');
    try {
      const rootKey = resolveLocalKmsRootKey({ dataDir });
      let db = await openDatabase<any>({ dataDir, fileName: 'localkms.db' });
      let kms = await startLocalKms({ db: db.db, dialect: db.dialect, rootKey, port: 0 });
      const key = (await client(kms).send(new CreateKeyCommand({ Description: 'survives' }))).KeyMetadata!;
      await client(kms).send(new CreateAliasCommand({ AliasName: 'alias/survivor', TargetKeyId: key.KeyId }));
      await client(kms).send(new DisableKeyCommand({ KeyId: key.KeyId }));
      const key2 = (await client(kms).send(new CreateKeyCommand({}))).KeyMetadata!;
      const dataKey = await client(kms).send(new GenerateDataKeyCommand({ KeyId: key2.Arn, KeySpec: 'AES_256', EncryptionContext: CTX }));
      await kms.close();
      await db.close();

      // The root key file is reused, not regenerated.
      expect(resolveLocalKmsRootKey({ dataDir }).equals(rootKey)).toBe(true);
      db = await openDatabase<any>({ dataDir, fileName: 'localkms.db' });
      kms = await startLocalKms({ db: db.db, dialect: db.dialect, rootKey: resolveLocalKmsRootKey({ dataDir }), port: 0 });
      const back = await client(kms).send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: CTX }));
      expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).toBe(true);
      expect(back.KeyId).toBe(key2.Arn);
      const described = (await client(kms).send(new DescribeKeyCommand({ KeyId: 'alias/survivor' }))).KeyMetadata!;
      expect(described).toMatchObject({ Arn: key.Arn, KeyState: 'Disabled', Description: 'survives' });
      await kms.close();
      await db.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses to start with another root key, saying so', async () => {
    const dataDir = tempDir('localkms-wrong-root-');
    try {
      const db = await openDatabase<any>({ dataDir, fileName: 'localkms.db' });
      const kms = await startLocalKms({ db: db.db, dialect: db.dialect, rootKey: randomBytes(32), port: 0 });
      await client(kms).send(new CreateKeyCommand({}));
      await kms.close();
      await expect(startLocalKms({ db: db.db, dialect: db.dialect, rootKey: randomBytes(32), port: 0 })).rejects.toThrow(
        /root key does not match.*CONVAULT_LOCAL_KMS_ROOT_KEY/,
      );
      await db.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('runs its migrations idempotently on an existing database', async () => {
    const dataDir = tempDir('localkms-migrate-');
    try {
      const db = await openDatabase<any>({ dataDir });
      const rootKey = randomBytes(32);
      for (let i = 0; i < 2; i++) {
        const kms = await startLocalKms({ db: db.db, dialect: db.dialect, rootKey, port: 0 });
        await kms.close();
      }
      await db.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!postgresTarget.available)('PostgreSQL', () => {
  it('runs the core round trip', async () => {
    const pg = await postgresTarget.open();
    const kms = await startLocalKms({ db: pg.db, dialect: pg.dialect, rootKey: randomBytes(32), port: 0 });
    try {
      const c = client(kms);
      const key = (await c.send(new CreateKeyCommand({ Description: 'on postgres' }))).KeyMetadata!;
      await c.send(new CreateAliasCommand({ AliasName: 'alias/pg', TargetKeyId: key.KeyId }));
      await expect(c.send(new CreateAliasCommand({ AliasName: 'alias/pg', TargetKeyId: key.KeyId }))).rejects.toBeInstanceOf(AlreadyExistsException);
      const dataKey = await c.send(new GenerateDataKeyCommand({ KeyId: 'alias/pg', KeySpec: 'AES_256', EncryptionContext: CTX }));
      const back = await c.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: CTX }));
      expect(back.KeyId).toBe(key.Arn);
      expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).toBe(true);
      expect((await c.send(new ListAliasesCommand({ KeyId: key.KeyId }))).Aliases!.map((a) => a.AliasName)).toEqual(['alias/pg']);
      await c.send(new DisableKeyCommand({ KeyId: key.KeyId }));
      await expect(c.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('x') }))).rejects.toBeInstanceOf(DisabledException);
      const scheduled = await c.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
      expect(scheduled.KeyState).toBe('PendingDeletion');
    } finally {
      await kms.close();
      await pg.close();
    }
  });

  it('lets two local KMS instances on one database share keys, aliases and state', async () => {
    const pg = await postgresTarget.open();
    const second = await openDatabase<any>({ url: pg.url, dataDir: pg.dataDir, schema: pg.schema });
    const rootKey = randomBytes(32);
    // Started together: their migrations race on the same fresh schema.
    const [a, b] = await Promise.all([
      startLocalKms({ db: pg.db, dialect: 'postgres', rootKey, port: 0 }),
      startLocalKms({ db: second.db, dialect: 'postgres', rootKey, port: 0 }),
    ]);
    try {
      const key = (await client(a).send(new CreateKeyCommand({}))).KeyMetadata!;
      await client(a).send(new CreateAliasCommand({ AliasName: 'alias/shared', TargetKeyId: key.KeyId }));
      const blob = (await client(a).send(new EncryptCommand({ KeyId: 'alias/shared', Plaintext: Buffer.from('from a'), EncryptionContext: CTX }))).CiphertextBlob;

      const fromB = await client(b).send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX }));
      expect(Buffer.from(fromB.Plaintext!).toString()).toBe('from a');
      expect((await client(b).send(new DescribeKeyCommand({ KeyId: 'alias/shared' }))).KeyMetadata?.Arn).toBe(key.Arn);
      expect((await client(b).send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId)).toContain(key.KeyId);

      await client(b).send(new DisableKeyCommand({ KeyId: key.KeyId }));
      await expect(client(a).send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: CTX }))).rejects.toBeInstanceOf(DisabledException);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await second.close();
      await pg.close();
    }
  });

  it('refuses a node whose root key differs from the one the shared keys use', async () => {
    const pg = await postgresTarget.open();
    try {
      const a = await startLocalKms({ db: pg.db, dialect: 'postgres', rootKey: randomBytes(32), port: 0 });
      await a.close();
      await expect(startLocalKms({ db: pg.db, dialect: 'postgres', rootKey: randomBytes(32), port: 0 })).rejects.toThrow(/root key does not match/);
    } finally {
      await pg.close();
    }
  });
});
