import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { spawnServe, type ServeProcess } from './support/process.js';
import { startTestServer, type TestServer } from './support/runtime.js';
import { expectStoreUnavailable } from './support/store-unavailable.js';

/** The embedded SQLite database under faults: a lock held too long, a full disk. */

const TOKEN = 'sqlite-faults-admin-token-0123456789';
const securedData = (conversationId: string) => `/api/v2/conversations/${conversationId}/secureddata`;

describe('SQLite locked by another writer beyond the busy timeout', () => {
  const dataDir = tempDir();
  let serve: ServeProcess;
  beforeAll(async () => {
    serve = await spawnServe({ CONVAULT_DATA_DIR: dataDir, CONVAULT_BOOTSTRAP_TOKEN: TOKEN, CONVAULT_SQLITE_BUSY_TIMEOUT_MS: '200' });
  });
  afterAll(async () => {
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function call(method: string, p: string, body?: unknown) {
    const res = await fetch(serve.url + p, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any, retryAfter: res.headers.get('retry-after') };
  }

  it('answers 503 StoreUnavailable (busy) with Retry-After while the lock is held, and writes again once it is released', async () => {
    const before = randomUUID();
    expect((await call('PUT', securedData(before), { data: { a: 'before' } })).status).toBe(200);

    const other = new SQLite(path.join(dataDir, 'convault.db'));
    try {
      other.exec('BEGIN EXCLUSIVE');
      const blocked = randomUUID();
      const started = Date.now();
      const res = await call('PUT', securedData(blocked), { data: { a: 'blocked' } });
      expectStoreUnavailable(res, 'busy');
      expect(Date.now() - started).toBeGreaterThanOrEqual(200); // it waited out the busy timeout first
      other.exec('ROLLBACK');
      // Nothing of the refused write was kept.
      expect((await call('GET', securedData(blocked))).status).toBe(404);
    } finally {
      other.close();
    }

    const after = randomUUID();
    expect((await call('PUT', securedData(after), { data: { a: 'after' } })).status).toBe(200);
    expect((await call('GET', securedData(before))).body.data).toEqual({ a: 'before' });
    expect((await call('GET', securedData(after))).body.data).toEqual({ a: 'after' });
    expect(serve.proc.exitCode).toBeNull();
  });
});

describe('SQLite out of space', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await server?.close();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('answers 503 StoreUnavailable (disk-full), keeps the database intact, and writes again once there is room', async () => {
    const db = server.runtime.database.db;
    const kept = randomUUID();
    expect((await server.call('PUT', securedData(kept), { body: { data: { a: 'kept' } } })).status).toBe(200);
    // A size cap at the current size makes SQLite answer SQLITE_FULL, as a full disk does.
    const pages = (await sql<{ page_count: number }>`pragma page_count`.execute(db)).rows[0]!.page_count;
    await sql.raw(`pragma max_page_count = ${pages}`).execute(db);
    const big = { data: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`attr${i}`, 'x'.repeat(4000)])) };
    let res: Awaited<ReturnType<TestServer['call']>> | undefined;
    for (let i = 0; i < 50 && (res === undefined || res.status === 200); i++) res = await server.call('PUT', securedData(randomUUID()), { body: big });
    expectStoreUnavailable({ status: res!.status, body: res!.body, retryAfter: res!.headers.get('retry-after') }, 'disk-full');

    await sql.raw('pragma max_page_count = 1073741823').execute(db);
    expect((await sql<{ integrity_check: string }>`pragma integrity_check`.execute(db)).rows).toEqual([{ integrity_check: 'ok' }]);
    expect((await server.call('PUT', securedData(randomUUID()), { body: big })).status).toBe(200);
    expect((await server.call('GET', securedData(kept))).body.data).toEqual({ a: 'kept' });
  });
});
