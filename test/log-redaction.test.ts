import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { freePort, runCli, spawnServe, type ServeProcess } from './support/process.js';

/**
 * With LOG_LEVEL=trace — everything the server can log — no line carries a bearer token, a secured
 * value, an Encrypt Data plaintext or key material, on success and on error paths alike.
 */

const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`;
const ROOT_KEY = randomBytes(32);

describe('logs at trace level', () => {
  const dataDir = tempDir();
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('never contain a token, a value, a plaintext or key material', async () => {
    const env = {
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      CONVAULT_LOCAL_KMS_ROOT_KEY: ROOT_KEY.toString('hex'),
      CONVAULT_LOCAL_KMS_PORT: String(await freePort()),
    };
    serve = await spawnServe({ ...env, LOG_LEVEL: 'trace' });
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(serve!.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    const org = await call('POST', '/api/v2/admin/organizations', ADMIN_TOKEN, { name: 'Logged' });
    expect(org.status).toBe(201);
    const permissions = ['conversation:encryptionKey:edit', 'conversation:encryptionKey:view', 'conversation:securedData:view', 'conversation:securedData:edit', 'conversation:encryption:use'];
    const token = (await call('POST', `/api/v2/admin/organizations/${org.body.id}/tokens`, ADMIN_TOKEN, { permissions })).body.token as string;
    const key = await runCli(['kms', 'create-key', '--account', '111122223333', '--region', 'us-east-1', '--alias', 'alias/logged', '--allow-org', org.body.id, '--json'], env);
    expect(key.code, key.stderr).toBe(0);
    const { aliasArn } = JSON.parse(key.stdout) as { aliasArn: string };
    expect((await call('POST', '/api/v2/conversations/keyconfigurations', token, { keyConfigurationType: 'KmsSymmetric', url: aliasArn })).status).toBe(201);

    const value = `value-${randomBytes(12).toString('hex')}`;
    const patched = `patched-${randomBytes(12).toString('hex')}`;
    const plaintext = `plaintext-${randomBytes(12).toString('hex')}`;
    const wrongToken = `wrong-${randomBytes(16).toString('hex')}`;
    expect((await call('PUT', '/api/v2/conversations/c1/secureddata', token, { data: { card: value } })).status).toBe(200);
    expect((await call('PATCH', '/api/v2/conversations/c1/secureddata', token, { data: { cvv: patched } })).status).toBe(200);
    expect((await call('GET', '/api/v2/conversations/c1/secureddata', token)).body.data).toEqual({ card: value, cvv: patched });
    const encrypted = await call('POST', '/api/v2/conversations/encrypt', token, { data: plaintext });
    expect(encrypted.status).toBe(200);
    expect((await call('POST', '/api/v2/conversations/decrypt', token, { encryptedData: encrypted.body.encryptedData })).body.data).toBe(plaintext);
    // Error paths: a wrong token, a value too large for the limits, a tampered message.
    expect((await call('GET', '/api/v2/conversations/c1/secureddata', wrongToken)).status).toBe(401);
    expect((await call('PUT', '/api/v2/conversations/c2/secureddata', token, { data: { big: `${value}${'x'.repeat(40_000)}` } })).status).toBeGreaterThanOrEqual(400);
    const tampered = Buffer.from(encrypted.body.encryptedData, 'base64');
    tampered[tampered.length - 40] ^= 1;
    expect((await call('POST', '/api/v2/conversations/decrypt', token, { encryptedData: tampered.toString('base64') })).status).toBeGreaterThanOrEqual(400);
    await serve.stop();

    // The log is the JSON lines; the first-start banner that shows the admin token once is not a log line.
    const lines = `${serve.stdout()}\n${serve.stderr()}`.split('\n').filter((l) => l.startsWith('{'));
    // The level really is trace: requests and responses are logged.
    expect(lines.filter((l) => l.includes('incoming request')).length).toBeGreaterThanOrEqual(10);
    const secrets = {
      'admin token': ADMIN_TOKEN,
      'organization token': token,
      'wrong token': wrongToken,
      'secured value': value,
      'patched value': patched,
      'Encrypt Data plaintext': plaintext,
      'local KMS root key (hex)': ROOT_KEY.toString('hex'),
      'local KMS root key (base64)': ROOT_KEY.toString('base64'),
      'secured value (base64)': Buffer.from(value).toString('base64'),
      'Encrypt Data plaintext (base64)': Buffer.from(plaintext).toString('base64'),
    };
    for (const [what, secret] of Object.entries(secrets)) {
      const leaking = lines.filter((l) => l.includes(secret));
      expect(leaking.map((l) => l.slice(0, 400)), `${what} in the log`).toEqual([]);
    }
    // No KMS answer with a plaintext data key is logged either.
    expect(lines.filter((l) => /"Plaintext"/.test(l))).toEqual([]);
  });
});
