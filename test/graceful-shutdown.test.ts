import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { openConvaultDatabase } from '../src/server/runtime.js';
import { loadConfig } from '../src/config.js';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey } from './support/customer-keys.js';
import { tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Closing a runtime (what SIGTERM does in `convault serve`): a request in flight completes, a new
 * request is not served (503 on a connection still open, refused once the listener is closed), and a
 * running rewrap job gives its lease back with its progress, so the next start resumes it at once.
 * KMS calls are held at fault gates, so nothing depends on timing.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const ROWS = 20;

describe('graceful shutdown', () => {
  const dataDir = tempDir();
  let restarted: TestServer | undefined;
  afterAll(async () => {
    await restarted?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes the request in flight, answers new ones 503, and releases a running job\'s lease for the next start', async () => {
    const env = { CONVAULT_DATA_DIR: dataDir, CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '86400' };
    const server = await startTestServer('sqlite', env);
    const org = await orgWithCustomerKey(server, 'Shutdown', createOrgWithToken);
    const configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
    for (let i = 0; i < ROWS; i++) expect((await server.call('PUT', `/api/v2/conversations/s-${i}/secureddata`, { token: org.token, body: { data: { v: `${i}` } } })).status).toBe(200);
    const next = await createCustomerKey(server, { orgIds: [org.orgId] });
    await configureOrgKey(server, org.token, next.aliasArn);

    const faults = server.runtime.kms.localKms!.faults;
    const reEncrypt = faults.hold('ReEncrypt');
    const generate = faults.hold('GenerateDataKey');
    const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
    expect(started.status).toBe(202);
    await reEncrypt.waitFor(8); // the job's workers are all inside KMS calls
    // A write that needs a new data key: in flight until GenerateDataKey answers.
    const inFlight = server.call('PUT', '/api/v2/conversations/in-flight/secureddata', { token: org.token, body: { data: { v: 'kept' } } });
    await generate.waitFor(1);

    const closing = server.runtime.close();
    const refused = await server.call('GET', '/healthz').catch((err: Error) => err);
    // A new request is answered 503 on a connection still open, or cannot connect once the listener is closed.
    if (refused instanceof Error) expect(String((refused as { cause?: { code?: string } }).cause?.code ?? refused.message)).toMatch(/ECONNREFUSED|ECONNRESET|other side closed/);
    else expect(refused.status).toBe(503);

    generate.release();
    expect((await inFlight).status).toBe(200);
    reEncrypt.release();
    await closing;

    // The job is still running by state, with no lease: whoever starts next picks it up at once.
    const database = await openConvaultDatabase(loadConfig({ CONVAULT_DATA_DIR: dataDir }));
    const job = await database.db.selectFrom('jobs').selectAll().where('id', '=', started.body.id).executeTakeFirstOrThrow();
    await database.close();
    expect(job).toMatchObject({ state: 'running', lease_owner: null, lease_expires_at: null, total: ROWS });
    expect(job.done).toBeGreaterThan(0);
    expect(job.done).toBeLessThan(ROWS);

    restarted = await startTestServer('sqlite', env);
    let finished;
    for (let i = 0; i < 200; i++) {
      finished = (await restarted.call('GET', `/api/v2/jobs/${started.body.id}`, { token: org.token })).body;
      if (finished.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(finished).toMatchObject({ state: 'succeeded', done: ROWS, failed: 0 });
    expect((await restarted.call('GET', '/api/v2/conversations/in-flight/secureddata', { token: org.token })).body.data).toEqual({ v: 'kept' });
  });
});
