import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { tempDir } from './support/databases.js';
import { privatePostgresSkipReason, startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';
import { expectStoreUnavailable } from './support/store-unavailable.js';

/**
 * Decrypt Data while the database is down: the organization's keys cannot be looked up, which is
 * the database's failure (503 StoreUnavailable, worth a retry), never a verdict on the message (a
 * 400 "not a message this organization can decrypt" made a client drop a valid message; found by
 * the soak during its PostgreSQL restart).
 */

const skipReason = privatePostgresSkipReason();

describe.skipIf(skipReason !== undefined)('Decrypt Data during a database outage (private PostgreSQL cluster)', () => {
  const dataDir = tempDir();
  let cluster: PrivatePostgres;
  let server: TestServer;
  let org: Awaited<ReturnType<typeof orgWithCustomerKey>>;

  beforeAll(async () => {
    cluster = await startPrivatePostgres();
    // The token and the active configuration stay cached while the database is down, so the
    // request gets as far as the key lookup of Decrypt Data.
    server = await startTestServer('postgres', {
      DATABASE_URL: cluster.url,
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_TOKEN_CACHE_MAX_AGE_MS: '5000',
      CONVAULT_CONFIG_REFRESH_MS: '600000',
      CONVAULT_KEY_PROBE_INTERVAL_S: '86400',
    });
    org = await orgWithCustomerKey(server, 'Outage', createOrgWithToken);
  });
  afterAll(async () => {
    await server?.close().catch(() => undefined);
    await cluster?.destroy();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const call = async (path: string, body: unknown) => {
    const res = await server.call('POST', path, { token: org.token, body });
    return { status: res.status, body: res.body, retryAfter: res.headers.get('retry-after') };
  };

  it('answers 503 StoreUnavailable with Retry-After, and decrypts again once the database is back', async () => {
    const encrypted = await call('/api/v2/conversations/encrypt', { data: 'kept through the outage' });
    expect(encrypted.status).toBe(200);
    expect((await call('/api/v2/conversations/decrypt', { encryptedData: encrypted.body.encryptedData })).body).toEqual({ data: 'kept through the outage' });

    await cluster.stop();
    try {
      expectStoreUnavailable(await call('/api/v2/conversations/decrypt', { encryptedData: encrypted.body.encryptedData }));
    } finally {
      await cluster.start();
    }
    await expect
      .poll(async () => (await call('/api/v2/conversations/decrypt', { encryptedData: encrypted.body.encryptedData })).body, { timeout: 15_000, interval: 250 })
      .toEqual({ data: 'kept through the outage' });
  });
});
