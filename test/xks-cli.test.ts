import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createXksClient, isXksError, type XksClient } from '../src/xks-client/index.js';
import { tempDir } from './support/databases.js';
import { runCli } from './support/process.js';
import { KMS_KEY_ARN, PRINCIPAL, spawnXksServe, type XksServeProcess } from './support/xks.js';

/** `convault xks …` as a user runs it: real processes sharing one data dir. */

let dataDir: string;
const running: ChildProcess[] = [];
const env = () => ({ CONVAULT_DATA_DIR: dataDir });

async function serveXks(args: string[]): Promise<XksServeProcess> {
  const served = await spawnXksServe(args, env());
  running.push(served.proc);
  return served;
}

async function json(args: string[]): Promise<any> {
  const res = await runCli(['xks', ...args, '--json'], env());
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

beforeAll(() => {
  dataDir = tempDir('convault-xks-cli-');
});

afterAll(() => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGTERM');
});

// Each step spawns the CLI; on a busy machine a spawn alone can take seconds.
describe('convault xks', { timeout: 180_000 }, () => {
  let creds: { uriPrefix: string; accessKeyId: string; secretAccessKey: string };

  it('credentials: created on the first call, the same on the next; a bad prefix is refused', async () => {
    creds = await json(['credentials', '--uri-prefix', '/tenant-a']);
    expect(creds).toEqual({ uriPrefix: '/tenant-a/kms/xks/v1', accessKeyId: expect.stringMatching(/^[A-Z2-7]{20,30}$/), secretAccessKey: expect.stringMatching(/^[A-Za-z0-9/+=]{43,64}$/) });
    const [again, bad] = await Promise.all([json(['credentials', '--uri-prefix', '/tenant-a/kms/xks/v1']), runCli(['xks', 'credentials', '--uri-prefix', '/a.b'], env())]);
    expect(again).toEqual(creds);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--uri-prefix must be/);
    // Rotation issues a second set; the first stays valid (the serve test below still signs with it).
    const rotated = await json(['credentials', '--uri-prefix', '/tenant-a', '--rotate']);
    expect(rotated.uriPrefix).toBe(creds.uriPrefix);
    expect(rotated.accessKeyId).not.toBe(creds.accessKeyId);
  });

  it('create-key: a key with the usage asked for; a duplicate id, a bad id or a bad usage is refused', async () => {
    expect(await json(['create-key', '--key-id', 'tenant-a-key-1'])).toEqual({ keyId: 'tenant-a-key-1', keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED', backend: 'software' });
    const [dup, badUsage, badId, encOnly] = await Promise.all([
      runCli(['xks', 'create-key', '--key-id', 'tenant-a-key-1'], env()),
      runCli(['xks', 'create-key', '--key-id', 'k2', '--usage', 'sign'], env()),
      runCli(['xks', 'create-key', '--key-id', 'bad/id'], env()),
      json(['create-key', '--key-id', 'enc-only', '--usage', 'encrypt']),
    ]);
    expect([dup.code, badUsage.code, badId.code]).toEqual([1, 1, 1]);
    expect(dup.stderr).toMatch(/already exists/);
    expect(badUsage.stderr).toMatch(/--usage must be/);
    expect(badId.stderr).toMatch(/--key-id must be/);
    expect(encOnly.keyUsage).toEqual(['ENCRYPT']);
  });

  it('serve: plain HTTP on loopback; disable-key and enable-key take effect on the running proxy', async () => {
    const served = await serveXks([]);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client: XksClient = createXksClient({ url: `${served.url}${creds.uriPrefix}`, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, requestMetadata: { awsPrincipalArn: PRINCIPAL, kmsKeyArn: KMS_KEY_ARN } });
    try {
      const aad = Buffer.from('org-1');
      const sealed = await client.encrypt('tenant-a-key-1', { plaintext: Buffer.from('data key bytes'), aad });
      expect((await client.decrypt('tenant-a-key-1', { ...sealed, aad })).toString()).toBe('data key bytes');

      expect((await json(['disable-key', '--key-id', 'tenant-a-key-1'])).keyStatus).toBe('DISABLED');
      const refused = await client.decrypt('tenant-a-key-1', { ...sealed, aad }).catch((e: unknown) => e);
      expect(isXksError(refused, 'invalid-state')).toBe(true);
      expect((await client.getKeyMetadata('tenant-a-key-1')).keyStatus).toBe('DISABLED');

      expect((await json(['enable-key', '--key-id', 'tenant-a-key-1'])).keyStatus).toBe('ENABLED');
      expect((await client.decrypt('tenant-a-key-1', { ...sealed, aad })).toString()).toBe('data key bytes');
      const missing = await runCli(['xks', 'disable-key', '--key-id', 'no-such-key'], env());
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/no key no-such-key/);
      // One JSON log line per request, with the request's kmsRequestId.
      expect(served.output()).toMatch(/"operation":"Decrypt".*"status":400.*"errorName":"InvalidStateException"/);
    } finally {
      client.close();
      served.proc.kill('SIGTERM');
    }
  });

  it('serve refuses plain HTTP on an address other than loopback', async () => {
    const res = await runCli(['xks', 'serve', '--port', '0', '--host', '0.0.0.0'], env());
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/plain HTTP is served on loopback only.*--tls-cert and --tls-key/);
  });

  it('serve: HTTPS with --tls-cert/--tls-key; the client trusts a custom CA bundle and refuses the proxy without it', async () => {
    const dir = tempDir('convault-xks-tls-');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const served = await serveXks(['--tls-cert', cert, '--tls-key', key]);
    expect(served.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const options = { url: `${served.url}${creds.uriPrefix}`, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
    const trusting = createXksClient({ ...options, ca: fs.readFileSync(cert) });
    const untrusting = createXksClient(options);
    try {
      expect((await trusting.getHealthStatus()).ekmFleetDetails[0]!.healthStatus).toBe('ACTIVE');
      const err = await untrusting.getHealthStatus().catch((e: unknown) => e);
      expect(isXksError(err, 'tls'), String(err)).toBe(true);
    } finally {
      trusting.close();
      untrusting.close();
      served.proc.kill('SIGTERM');
    }
  });
});
