import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CreateKeyCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { serveLocalKms } from '../src/cli/kms-commands.js';
import { createKmsClient } from '../src/kms/client-factory.js';
import { tempDir } from './support/databases.js';
import { freePort, runCli, spawnServe, type ServeProcess } from './support/process.js';

/**
 * A local KMS that answers 500 says so in its log — one line naming the operation and the error
 * code — embedded in `convault serve` and standalone (`convault kms serve`) alike, and the line
 * carries neither the request's plaintext nor key material.
 */

const ACCOUNT = '111122223333';
const ROOT_KEY = randomBytes(32).toString('hex');

/** Replaces a key's sealed material in the database file: the root key no longer opens it. */
function corruptKeyMaterial(file: string, keyId: string): void {
  const db = new Database(file);
  try {
    expect(db.prepare('update localkms_keys set material = ? where key_id = ?').run(randomBytes(80), keyId).changes).toBe(1);
  } finally {
    db.close();
  }
}

/** Encrypts under a key whose material no longer opens: the local KMS fails inside, with a 500. */
async function failInside(client: KMSClient, dbFile: string): Promise<{ plaintext: Buffer }> {
  const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  corruptKeyMaterial(dbFile, keyId);
  const plaintext = randomBytes(24);
  const err = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })).then(
    () => undefined,
    (e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } },
  );
  expect(err?.name).toBe('KMSInternalException');
  expect(err?.$metadata.httpStatusCode).toBe(500);
  return { plaintext };
}

function expectNoSecrets(log: string, plaintext: Buffer): void {
  for (const secret of [plaintext.toString('base64'), plaintext.toString('hex'), ROOT_KEY]) expect(log).not.toContain(secret);
}

describe('local KMS errors in the log', () => {
  const dirs: string[] = [];
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await serve?.stop();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('embedded in convault serve: one warning line with the operation and the error code', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const port = await freePort();
    const env = { CONVAULT_DATA_DIR: dataDir, CONVAULT_LOCAL_KMS_ROOT_KEY: ROOT_KEY, CONVAULT_LOCAL_KMS_PORT: String(port) };
    serve = await spawnServe({ ...env, LOG_LEVEL: 'warn' });
    const issued = await runCli(['kms', 'credentials', '--account', ACCOUNT, '--json'], env);
    expect(issued.code, issued.stderr).toBe(0);
    const client = createKmsClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: JSON.parse(issued.stdout), maxAttempts: 1 });

    const { plaintext } = await failInside(client, path.join(dataDir, 'convault.db'));
    let lines: string[] = [];
    for (let i = 0; i < 100 && lines.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      lines = serve.stdout().split('\n').filter((l) => l.includes('"msg":"local KMS:'));
    }
    expect(lines, serve.stdout()).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as { level: number; msg: string };
    expect(entry.level).toBe(40); // warn
    expect(entry.msg).toMatch(/^local KMS: Encrypt answered 500 KMSInternalException: /);
    expectNoSecrets(serve.stdout() + serve.stderr(), plaintext);
  });

  it('standalone (convault kms serve): the same line on stderr', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const env = { ...process.env };
    process.env.CONVAULT_DATA_DIR = dataDir;
    process.env.CONVAULT_LOCAL_KMS_ROOT_KEY = ROOT_KEY;
    delete process.env.DATABASE_URL;
    let err = '';
    const cmd = new Command().configureOutput({ writeOut: () => undefined, writeErr: (s) => void (err += s) });
    const served = await serveLocalKms({ port: '0' }, cmd);
    try {
      const client = createKmsClient({ endpoint: served.kms.url, region: 'us-east-1', credentials: () => served.kms.credentialsFor(ACCOUNT), maxAttempts: 1 });
      const { plaintext } = await failInside(client, path.join(dataDir, 'localkms.db'));
      const lines = err.split('\n').filter((l) => l.includes('local KMS'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^local KMS: Encrypt answered 500 KMSInternalException: /);
      expectNoSecrets(err, plaintext);
    } finally {
      await served.close();
      process.env = env;
    }
  });
});
