import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTarget, postgresUrl, tempDir, uniqueSchema } from './support/databases.js';
import { runCli, spawnServe, type ServeProcess } from './support/process.js';
import { dropSchema } from './support/runtime.js';

async function get(url: string, token?: string) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as any };
}

describe('convault serve as a real process (SQLite)', () => {
  const dataDir = tempDir();
  let serve: ServeProcess;
  beforeAll(async () => {
    serve = await spawnServe({ CONVAULT_DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints the URL and where the admin token is, and serves it', async () => {
    const token = fs.readFileSync(`${dataDir}/admin-token`, 'utf8').trim();
    expect(serve.stdout()).toContain(serve.url.replace('127.0.0.1', '127.0.0.1'));
    expect(serve.stdout()).toContain(`${dataDir}/admin-token`);
    expect(serve.stdout()).toContain(token);
    expect((await get(`${serve.url}/healthz`)).status).toBe(200);
    const me = await get(`${serve.url}/api/v2/organizations/me`, token);
    expect(me).toEqual({ status: 200, body: { id: expect.any(String), name: 'Default organization' } });
  });

  it('creates organizations and tokens from the CLI while the server runs on the same database', async () => {
    const org = await runCli(['orgs', 'create', '--name', 'Acme Contact Center', '--json'], { CONVAULT_DATA_DIR: dataDir });
    expect(org.code).toBe(0);
    const created = JSON.parse(org.stdout);
    expect(created).toMatchObject({ id: expect.any(String), name: 'Acme Contact Center' });

    const tok = await runCli(
      ['tokens', 'create', '--org', created.id, '--permissions', 'conversation:encryptionKey:view,audit:log:view', '--json'],
      { CONVAULT_DATA_DIR: dataDir },
    );
    expect(tok.code).toBe(0);
    const { token, permissions } = JSON.parse(tok.stdout);
    expect(permissions).toEqual(['conversation:encryptionKey:view', 'audit:log:view']);
    expect(await get(`${serve.url}/api/v2/organizations/me`, token)).toEqual({ status: 200, body: { id: created.id, name: 'Acme Contact Center' } });

    const list = await runCli(['orgs', 'list', '--json'], { CONVAULT_DATA_DIR: dataDir });
    expect(JSON.parse(list.stdout).map((o: any) => o.name)).toEqual(['Default organization', 'Acme Contact Center']);
  });

  it('refuses bad CLI input with one line and a non-zero exit', async () => {
    const unknownPerm = await runCli(['tokens', 'create', '--org', 'x', '--permissions', 'nope', '--json'], { CONVAULT_DATA_DIR: dataDir });
    expect(unknownPerm.code).not.toBe(0);
    expect(unknownPerm.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknownPerm.stderr).toContain('Unknown permission');
    // A near miss gets a suggestion, and every known permission is listed.
    const typo = await runCli(['tokens', 'create', '--org', 'x', '--permissions', 'conversation:encryptionkey:veiw', '--json'], { CONVAULT_DATA_DIR: dataDir });
    expect(typo.code).not.toBe(0);
    expect(typo.stderr.trim().split('\n')).toHaveLength(1);
    expect(typo.stderr).toContain('conversation:encryptionkey:veiw (did you mean conversation:encryptionKey:view?)');
    expect(typo.stderr).toContain('Known permissions: conversation:encryptionKey:view, conversation:encryptionKey:edit');
    const noOrg = await runCli(['tokens', 'create', '--org', 'missing', '--permissions', 'audit:log:view'], { CONVAULT_DATA_DIR: dataDir });
    expect(noOrg.code).not.toBe(0);
    expect(noOrg.stderr).toContain('Organization missing was not found');
  });

  it('stops start-up on a bad configuration value with a one-line message naming the variable', async () => {
    const res = await runCli(['serve'], { CONVAULT_DATA_DIR: dataDir, PORT: 'abc' });
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toMatch(/^convault: Invalid PORT: /);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('shuts down gracefully on SIGTERM and keeps the data for the next start', async () => {
    const port = new URL(serve.url).port;
    expect(await serve.stop('SIGTERM')).toBe(0);
    serve = await spawnServe({ CONVAULT_DATA_DIR: dataDir, PORT: port });
    expect(serve.stdout()).not.toContain(fs.readFileSync(`${dataDir}/admin-token`, 'utf8').trim());
    const token = fs.readFileSync(`${dataDir}/admin-token`, 'utf8').trim();
    expect((await get(`${serve.url}/api/v2/organizations/me`, token)).status).toBe(200);
  });
});

describe.skipIf(!postgresTarget.available)('convault serve as a real process (PostgreSQL)', () => {
  it('bootstraps, serves and accepts CLI writes on PostgreSQL', async () => {
    const schema = uniqueSchema();
    const dataDir = tempDir();
    const env = { CONVAULT_DATA_DIR: dataDir, DATABASE_URL: `${postgresUrl()}?schema=${schema}` };
    const serve = await spawnServe(env);
    try {
      expect(serve.stdout()).toContain('postgres');
      const token = fs.readFileSync(`${dataDir}/admin-token`, 'utf8').trim();
      expect((await get(`${serve.url}/api/v2/organizations/me`, token)).body.name).toBe('Default organization');
      const org = await runCli(['orgs', 'create', '--name', 'PG org', '--json'], env);
      expect(org.code).toBe(0);
      expect(JSON.parse(org.stdout).name).toBe('PG org');
    } finally {
      expect(await serve.stop()).toBe(0);
      await dropSchema(schema);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
