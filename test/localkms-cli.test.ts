import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerKmsCommands, serveLocalKms } from '../src/cli/kms-commands.js';
import { createKmsClient } from '../src/kms/client-factory.js';
import { localKmsClient } from './support/local-kms.js';
import { resolveLocalKmsAdminSecret, startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget, tempDir } from './support/databases.js';

/**
 * `convault kms …` run in-process: a commander program with registerKmsCommands, its output
 * captured and its exit overridden, talking to a local KMS on a free port through CONVAULT_KMS_ENDPOINT.
 */

const CUSTOMER = '111122223333';
// Organization ids are UUIDs; --allow-org refuses anything else.
const ORG_1 = '0b6f3c1e-1111-4111-8111-000000000001';
const ORG_2 = '0b6f3c1e-2222-4222-8222-000000000002';
const PLATFORM = '444455556666';
const CTX = 'convault-organization-id';

let kms: LocalKms;
let closeDb: () => Promise<void>;
const savedEnv = { ...process.env };
const cliDataDir = tempDir('localkms-cli-');

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  // The CLI signs with keys the local KMS issues to the holder of the admin secret in the data dir.
  process.env.CONVAULT_DATA_DIR = cliDataDir;
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, adminSecret: resolveLocalKmsAdminSecret(cliDataDir) });
  process.env.CONVAULT_KMS_ENDPOINT = kms.url;
  process.env.CONVAULT_PLATFORM_ACCOUNT_ID = PLATFORM;
  process.env.AWS_REGION = 'us-east-1';
  delete process.env.CONVAULT_ENCRYPTION_CONTEXT_KEY;
});

afterAll(async () => {
  process.env = savedEnv;
  await kms.close();
  await closeDb();
  fs.rmSync(cliDataDir, { recursive: true, force: true });
});

interface CliRun {
  out: string;
  err: string;
  exitCode: number;
  json<T = any>(): T;
}

async function cli(...args: string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const program = new Command('convault').exitOverride().configureOutput({ writeOut: (s) => void (out += s), writeErr: (s) => void (err += s) });
  registerKmsCommands(program);
  let exitCode = 0;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    exitCode = e.exitCode;
  }
  return { out, err, exitCode, json: () => JSON.parse(out) };
}

const platform = () => localKmsClient(kms, PLATFORM, { maxAttempts: 1 });

describe('convault kms create-key', () => {
  it('creates a key with an alias and a policy for the allowed organizations, printing JSON', async () => {
    const run = await cli('kms', 'create-key', '--account', CUSTOMER, '--region', 'us-east-1', '--alias', 'alias/contact-center', '--allow-org', ORG_1, '--allow-org', ORG_2, '--json');
    expect(run.exitCode).toBe(0);
    const created = run.json<{ keyId: string; keyArn: string; aliasArn: string }>();
    expect(created.keyArn).toBe(`arn:aws:kms:us-east-1:${CUSTOMER}:key/${created.keyId}`);
    expect(created.aliasArn).toBe(`arn:aws:kms:us-east-1:${CUSTOMER}:alias/contact-center`);

    // The platform may now generate data keys with the alias ARN for ORG_1 and ORG_2 only.
    const ok = await platform().send(new GenerateDataKeyCommand({ KeyId: created.aliasArn, KeySpec: 'AES_256', EncryptionContext: { [CTX]: ORG_2 } }));
    expect(ok.KeyId).toBe(created.keyArn);
    await expect(platform().send(new GenerateDataKeyCommand({ KeyId: created.aliasArn, KeySpec: 'AES_256', EncryptionContext: { [CTX]: 'org-3' } }))).rejects.toThrow(
      /not authorized/,
    );

    const policy = (await cli('kms', 'get-policy', '--key', created.keyArn, '--json')).json<{ policy: { Statement: { Sid: string; Condition?: unknown }[] } }>().policy;
    expect(policy.Statement.map((s) => s.Sid)).toEqual(['EnableIAMUserPermissions', 'AllowConvaultPlatformUseForItsOrganizations', 'AllowConvaultPlatformDescribeKey']);
    expect(policy.Statement[1]!.Condition).toEqual({ StringEquals: { [`kms:EncryptionContext:${CTX}`]: [ORG_1, ORG_2] } });
  });

  it('without --allow-org keeps the default policy, and prints a readable line without --json', async () => {
    const run = await cli('kms', 'create-key', '--account', CUSTOMER, '--description', 'plain');
    expect(run.exitCode).toBe(0);
    expect(run.out).toMatch(/^Created key arn:aws:kms:us-east-1:111122223333:key\/\S+; default policy \(account root only\)\n$/);
  });

  it('refuses an alias that already exists, before creating a key', async () => {
    await cli('kms', 'create-key', '--account', CUSTOMER, '--alias', 'alias/taken', '--json');
    const run = await cli('kms', 'create-key', '--account', CUSTOMER, '--alias', 'alias/taken', '--json');
    expect(run.exitCode).toBe(1);
    expect(run.err).toMatch(/^convault: alias\/taken already exists/);
    expect(run.err.trim().split('\n')).toHaveLength(1);
  });
});

describe('convault kms credentials', () => {
  it('prints the account\'s access key (the same one each time), which the KMS accepts, and keeps it 0600 in the data dir', async () => {
    const first = (await cli('kms', 'credentials', '--account', '777788889999', '--json')).json();
    expect(first).toEqual({ accessKeyId: expect.stringMatching(/^AKIA[A-Z2-7]{16}$/), secretAccessKey: expect.any(String) });
    expect((await cli('kms', 'credentials', '--account', '777788889999', '--json')).json()).toEqual(first);
    expect(await kms.credentialsFor('777788889999')).toEqual(first);
    const kept = path.join(cliDataDir, 'localkms-credentials', '777788889999.json');
    expect(fs.statSync(kept).mode & 0o777).toBe(0o600);
    const client = createKmsClient({ endpoint: kms.url, region: 'us-east-1', credentials: first, maxAttempts: 1 });
    expect((await client.send(new ListKeysCommand({}))).Keys).toBeDefined();
  });

  it('refuses to issue without the admin secret of the local KMS', async () => {
    const other = tempDir('localkms-cli-nosecret-');
    process.env.CONVAULT_DATA_DIR = other;
    try {
      const run = await cli('kms', 'credentials', '--account', '777788889999', '--json');
      expect(run.exitCode).toBe(1);
      expect(run.err).toMatch(/no local KMS admin secret/);
      expect(run.out).toBe('');
    } finally {
      process.env.CONVAULT_DATA_DIR = cliDataDir;
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('the customer revokes and rotates', () => {
  it('disable-key, enable-key, schedule-deletion, cancel-deletion, describe-key', async () => {
    const { keyArn, keyId } = (await cli('kms', 'create-key', '--account', CUSTOMER, '--allow-org', ORG_1, '--json')).json();
    expect((await cli('kms', 'disable-key', '--key', keyArn, '--json')).json()).toEqual({ keyId: keyArn, keyState: 'Disabled' });
    expect((await cli('kms', 'enable-key', '--key', keyId, '--account', CUSTOMER)).out).toBe(`Key ${keyArn} is Enabled\n`);

    const scheduled = (await cli('kms', 'schedule-deletion', '--key', keyArn, '--days', '7', '--json')).json();
    expect(scheduled).toMatchObject({ keyId: keyArn, keyState: 'PendingDeletion', pendingWindowInDays: 7 });
    expect(new Date(scheduled.deletionDate).getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect((await cli('kms', 'describe-key', '--key', keyArn, '--json')).json()).toMatchObject({ keyArn, keyState: 'PendingDeletion' });

    expect((await cli('kms', 'cancel-deletion', '--key', keyArn, '--json')).json()).toEqual({ keyId: keyArn, keyState: 'Disabled' });
    expect((await cli('kms', 'describe-key', '--key', keyArn)).out).toMatch(new RegExp(`^${keyArn}  Disabled`));
  });

  it('update-alias moves an alias to a new key', async () => {
    const first = (await cli('kms', 'create-key', '--account', CUSTOMER, '--alias', 'alias/rotating', '--json')).json();
    const second = (await cli('kms', 'create-key', '--account', CUSTOMER, '--json')).json();
    const run = await cli('kms', 'update-alias', '--alias', 'alias/rotating', '--target-key', second.keyArn, '--json');
    expect(run.json()).toEqual({ aliasArn: first.aliasArn, targetKeyArn: second.keyArn });
    expect((await cli('kms', 'describe-key', '--key', 'alias/rotating', '--account', CUSTOMER, '--json')).json().keyArn).toBe(second.keyArn);
    // Key-management commands take an alias too (the CLI resolves it; the API itself would refuse it).
    expect((await cli('kms', 'disable-key', '--key', 'alias/rotating', '--account', CUSTOMER, '--json')).json()).toEqual({ keyId: second.keyArn, keyState: 'Disabled' });
  });

  it('put-policy --no-platform revokes the platform; --allow-org grants again; --file puts a document', async () => {
    const { keyArn } = (await cli('kms', 'create-key', '--account', CUSTOMER, '--allow-org', ORG_1, '--json')).json();
    const ctx = { [CTX]: ORG_1 };
    const blob = (await platform().send(new GenerateDataKeyCommand({ KeyId: keyArn, NumberOfBytes: 32, EncryptionContext: ctx }))).CiphertextBlob;

    expect((await cli('kms', 'put-policy', '--key', keyArn, '--no-platform')).out).toMatch(/no platform access/);
    await expect(platform().send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }))).rejects.toThrow(/not authorized/);

    await cli('kms', 'put-policy', '--key', keyArn, '--allow-org', ORG_1);
    await platform().send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }));

    const dir = tempDir('localkms-cli-policy-');
    const file = path.join(dir, 'policy.json');
    const document = { Version: '2012-10-17', Statement: [{ Sid: 'OnlyRoot', Effect: 'Allow', Principal: { AWS: CUSTOMER }, Action: 'kms:*', Resource: '*' }] };
    fs.writeFileSync(file, JSON.stringify(document));
    expect((await cli('kms', 'put-policy', '--key', keyArn, '--file', file, '--json')).json().policy).toEqual(document);
    expect((await cli('kms', 'get-policy', '--key', keyArn, '--json')).json().policy).toEqual(document);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('errors: one line on stderr, non-zero exit', () => {
  it.each([
    [['kms', 'describe-key', '--key', `arn:aws:kms:us-east-1:${CUSTOMER}:key/00000000-0000-4000-8000-000000000000`], /^convault: NotFoundException: Key '.*' does not exist\n$/],
    [['kms', 'disable-key', '--key', '00000000-0000-4000-8000-000000000000'], /^convault: --account is required/],
    [['kms', 'schedule-deletion', '--key', `arn:aws:kms:us-east-1:${CUSTOMER}:key/00000000-0000-4000-8000-000000000000`, '--days', 'soon'], /whole number/],
    [['kms', 'put-policy', '--key', `arn:aws:kms:us-east-1:${CUSTOMER}:key/00000000-0000-4000-8000-000000000000`], /exactly one of --allow-org/],
    [['kms', 'create-key', '--account', CUSTOMER, '--allow-org', 'acme'], /--allow-org "acme" is not an organization id \(a UUID/],
    [['kms', 'put-policy', '--key', `arn:aws:kms:us-east-1:${CUSTOMER}:key/00000000-0000-4000-8000-000000000000`, '--file', '/nonexistent.json'], /cannot read/],
  ])('%j', async (args, message) => {
    const run = await cli(...args);
    expect(run.exitCode).toBe(1);
    expect(run.err).toMatch(message);
    expect(run.err.trim().split('\n')).toHaveLength(1);
    expect(run.out).toBe('');
  });

  it('says how to start a KMS when none is listening', async () => {
    const url = process.env.CONVAULT_KMS_ENDPOINT;
    process.env.CONVAULT_KMS_ENDPOINT = 'http://127.0.0.1:9';
    try {
      const run = await cli('kms', 'describe-key', '--key', `arn:aws:kms:us-east-1:${CUSTOMER}:alias/x`);
      expect(run.exitCode).toBe(1);
      expect(run.err).toMatch(/cannot reach a KMS at http:\/\/127\.0\.0\.1:9 \(CONVAULT_KMS_ENDPOINT\)\. Start the server/);
      // Every way to point the CLI at a running KMS is named.
      for (const way of ['CONVAULT_DATA_DIR', 'local-kms.json', 'PORT', 'CONVAULT_LOCAL_KMS_PORT', 'CONVAULT_KMS_ENDPOINT']) expect(run.err).toContain(way);
    } finally {
      process.env.CONVAULT_KMS_ENDPOINT = url;
    }
  });
});

describe('convault kms serve', () => {
  it('serves alone with its own localkms.db and root key file in the data dir', async () => {
    const dataDir = tempDir('localkms-serve-');
    const env = { ...process.env };
    process.env.CONVAULT_DATA_DIR = dataDir;
    delete process.env.DATABASE_URL;
    delete process.env.CONVAULT_LOCAL_KMS_ROOT_KEY;
    let out = '';
    const cmd = new Command().configureOutput({ writeOut: (s) => void (out += s), writeErr: () => undefined });
    const served = await serveLocalKms({ port: '0' }, cmd);
    try {
      expect(out).toMatch(new RegExp(`^local KMS serving at ${served.kms.url} \\(keys in .*localkms\\.db\\)`));
      expect(fs.existsSync(path.join(dataDir, 'localkms.db'))).toBe(true);
      expect(fs.statSync(path.join(dataDir, 'localkms-root.key')).mode & 0o777).toBe(0o600);
      process.env.CONVAULT_KMS_ENDPOINT = served.kms.url;
      const created = (await cli('kms', 'create-key', '--account', CUSTOMER, '--alias', 'alias/standalone', '--json')).json();
      expect((await cli('kms', 'describe-key', '--key', created.aliasArn, '--json')).json().keyArn).toBe(created.keyArn);
    } finally {
      await served.close();
      process.env = env;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
