import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { postgresTarget, postgresUrl, sqliteTarget, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/** The database holds no plaintext value: search the raw SQLite files and every PostgreSQL row for a marker. */

const marker = () => `PLAINTEXT-MARKER-${randomBytes(8).toString('hex')}`;

/** Writes the marker through both APIs that take secrets (secured data, Encrypt Data) in several shapes. */
async function writeMarker(server: TestServer, token: string, value: string): Promise<void> {
  const conv = randomUUID();
  const put = await server.call('PUT', `/api/v2/conversations/${conv}/secureddata`, {
    token,
    body: { data: { short: value, long: `${value} `.repeat(200), embedded: `card ${value} exp 12/29` } },
  });
  expect(put.status).toBe(200);
  expect((await server.call('GET', `/api/v2/conversations/${conv}/secureddata`, { token })).body.data.short).toBe(value);
  const enc = await server.call('POST', '/api/v2/conversations/encrypt', { token, body: { data: value } });
  expect(enc.status).toBe(200);
  expect((await server.call('POST', '/api/v2/conversations/decrypt', { token, body: { encryptedData: enc.body.encryptedData } })).body.data).toBe(value);
}

function expectAbsent(haystack: Buffer, needle: string, where: string): void {
  for (const encoding of ['utf8', 'utf16le'] as const) {
    expect(haystack.includes(Buffer.from(needle, encoding)), `${needle} (${encoding}) found in ${where}`).toBe(false);
  }
}

describe.skipIf(!sqliteTarget.available)('no plaintext at rest: SQLite', () => {
  let server: TestServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tempDir();
    server = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the database file and its WAL never contain the value', async () => {
    const org = await orgWithCustomerKey(server, 'At rest', createOrgWithToken);
    const value = marker();
    await writeMarker(server, org.token, value);
    const files = () => fs.readdirSync(dataDir).filter((f) => f.startsWith('convault.db'));
    for (const f of files()) expectAbsent(fs.readFileSync(path.join(dataDir, f)), value, f);
    // Closing checkpoints the WAL into the main file: search again.
    await server.close();
    expect(files()).toContain('convault.db');
    for (const f of files()) expectAbsent(fs.readFileSync(path.join(dataDir, f)), value, f);
    // Sanity check of the search itself: the attribute names (not secret) are in the file.
    expect(fs.readFileSync(path.join(dataDir, 'convault.db')).includes(Buffer.from('embedded'))).toBe(true);
  });
});

describe.skipIf(!postgresTarget.available)('no plaintext at rest: PostgreSQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
  });
  afterAll(async () => server?.close());

  it('no row of any table contains the value, as text or as bytes', async () => {
    const org = await orgWithCustomerKey(server, 'At rest', createOrgWithToken);
    const value = marker();
    await writeMarker(server, org.token, value);
    const schema = new URL(server.databaseUrl!).searchParams.get('schema')!;
    const client = new pg.Client({ connectionString: postgresUrl() });
    await client.connect();
    try {
      const tables = (await client.query('select table_name from information_schema.tables where table_schema = $1', [schema])).rows.map((r) => r.table_name as string);
      expect(tables).toEqual(expect.arrayContaining(['org_data_keys', 'conversation_keys', 'secured_values', 'audit_events']));
      const hex = Buffer.from(value, 'utf8').toString('hex');
      let rows = 0;
      for (const table of tables) {
        // t::text renders every column, bytea as \x<hex>.
        const res = await client.query(`select t::text as row from "${schema}"."${table}" t`);
        for (const { row } of res.rows as Array<{ row: string }>) {
          rows++;
          expect(row.includes(value), `${table} holds the value`).toBe(false);
          expect(row.toLowerCase().includes(hex), `${table} holds the value as bytes`).toBe(false);
        }
      }
      expect(rows).toBeGreaterThan(10);
      const names = await client.query(`select count(*)::int as n from "${schema}".secured_values where name = 'embedded'`);
      expect(names.rows[0].n).toBe(1); // the search looked at the right rows
    } finally {
      await client.end();
    }
  });
});
