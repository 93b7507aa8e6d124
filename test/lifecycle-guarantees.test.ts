import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLifecycleDal } from '../src/services/lifecycle/lifecycle-dal.js';
import { createRewrapService } from '../src/services/lifecycle/rewrap-service.js';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, PLATFORM_ACCOUNT, REGION, CONTEXT_KEY } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * The guarantees of a rewrap that only show under a race or an unusual key policy. Races are made
 * deterministic with fault gates: a KMS operation is held until the test releases it.
 */

const BASE = '/api/v2/conversations/keyconfigurations';

async function waitForJob(server: TestServer, token: string, jobId: string) {
  for (let i = 0; i < 600; i++) {
    const res = await server.call('GET', `/api/v2/jobs/${jobId}`, { token });
    if (!['queued', 'running'].includes(res.body.state)) return res.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${jobId} did not end`);
}

async function write(server: TestServer, token: string, prefix: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await server.call('PUT', `/api/v2/conversations/${prefix}-${i}/secureddata`, { token, body: { data: { card: `4111-${prefix}-${i}` } } });
    if (res.status !== 200) throw new Error(`write failed: ${JSON.stringify(res.body)}`);
  }
}

async function expectReadable(server: TestServer, token: string, prefix: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await server.call('GET', `/api/v2/conversations/${prefix}-${i}/secureddata`, { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data).toEqual({ card: `4111-${prefix}-${i}` });
  }
}

/** Successful calls per operation, from the platform's KMS metrics. */
function okCalls(server: TestServer): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of server.runtime.kms.metrics.snapshot()) out[`${e.operation}|${e.outcome}`] = e.count;
  return out;
}
const delta = (after: Record<string, number>, before: Record<string, number>, key: string) => (after[key] ?? 0) - (before[key] ?? 0);

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`rewrap guarantees on ${target.name}`, () => {
    let server: TestServer;

    beforeAll(async () => {
      // One conversation per data key; no background key probes adding KMS calls to the counts.
      server = await startTestServer(target.name, { CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '86400' });
    });
    afterAll(async () => server?.close());

    it('a key policy without kms:ReEncrypt*: one refused ReEncrypt, then Decrypt + Encrypt per data key; with the old key disabled and caches empty every value reads', async () => {
      const org = await orgWithCustomerKey(server, 'NoReEncrypt', createOrgWithToken, { reEncrypt: false });
      const configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
      await write(server, org.token, 'plain', 5);
      const next = await createCustomerKey(server, { orgIds: [org.orgId], reEncrypt: false });
      await configureOrgKey(server, org.token, next.aliasArn);

      const before = okCalls(server);
      const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
      expect(started.status).toBe(202);
      const job = await waitForJob(server, org.token, started.body.id);
      expect(job).toMatchObject({ state: 'succeeded', total: 5, done: 5, failed: 0, targetKeyArn: next.keyArn });
      const after = okCalls(server);
      // Refused once per worker already in flight when the first refusal arrives (at most one per data key here).
      const refused = delta(after, before, 'ReEncrypt|AccessDeniedException');
      expect(refused).toBeGreaterThanOrEqual(1);
      expect(refused).toBeLessThanOrEqual(5);
      expect(delta(after, before, 'ReEncrypt|ok')).toBe(0);
      expect(delta(after, before, 'Decrypt|ok')).toBe(5);
      expect(delta(after, before, 'Encrypt|ok')).toBe(5);

      await org.key.disable();
      server.runtime.services.securedData.clearCaches(); // every read below unwraps its data key with the new key
      await expectReadable(server, org.token, 'plain', 5);
    });

    it('a shred that lands while a rewrap holds the rows: the shredded keys stay shredded', async () => {
      const org = await orgWithCustomerKey(server, 'ShredRace', createOrgWithToken);
      const configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
      const from = new Date().toISOString();
      await write(server, org.token, 'race', 3);
      const to = new Date(Date.now() + 1).toISOString();
      const next = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, next.aliasArn);

      const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
      let job;
      try {
        const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
        await gate.waitFor(3); // the job has read all three rows and asked KMS to move them
        const shred = await server.call('POST', `${BASE}/${configId}/shred`, { token: org.token, body: { from, to, confirm: 'ShredRace' } });
        expect(shred.status).toBe(200);
        expect(shred.body.dataKeys).toBe(3);
        gate.release();
        job = await waitForJob(server, org.token, started.body.id);
      } finally {
        gate.release();
      }
      expect(job.state).toBe('succeeded');
      const rows = await server.runtime.database.db.selectFrom('org_data_keys').select(['wrapped_key', 'shredded_at', 'key_arn']).where('org_id', '=', org.orgId).execute();
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row.shredded_at).not.toBeNull();
        expect(row.wrapped_key).toBeNull(); // the rewrapped blob was not written back
        expect(row.key_arn).toBe(org.key.keyArn);
      }
      server.runtime.services.securedData.clearCaches();
      for (let i = 0; i < 3; i++) {
        const res = await server.call('GET', `/api/v2/conversations/race-${i}/secureddata`, { token: org.token });
        expect(res.status).toBe(404);
        expect(res.body.errorType).toBe('DataShredded');
      }
    });

    it('a second node never claims a job whose lease another node holds', async () => {
      const org = await orgWithCustomerKey(server, 'TwoNodes', createOrgWithToken);
      const configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
      await write(server, org.token, 'lease', 1); // one data key: exactly one ReEncrypt from the node that holds the job
      const next = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, next.aliasArn);

      // Another node on the same database: its own node id, the same KMS and services.
      const { services } = server.runtime;
      const otherNode = createRewrapService({
        dal: createLifecycleDal(server.runtime.database.db),
        keys: server.runtime.keyLayer.keys,
        keyConfigs: services.keyConfigs,
        audit: services.audit,
        forgetDataKeys: () => undefined,
        settings: { concurrency: 8, leaseMs: 10_000, batchSize: 200, platformAccountId: PLATFORM_ACCOUNT, defaultRegion: REGION, encryptionContextKey: CONTEXT_KEY },
        nodeId: 'other-node',
      });
      const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
      try {
        const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
        await gate.waitFor(1); // the first node holds the lease and is inside the job
        const second = await Promise.race([
          otherNode.runHere(org.orgId, started.body.id),
          gate.waitFor(2).then(() => 'the other node ran the job too'),
        ]);
        expect(second).toBe('not-claimed');
        const row = await server.runtime.database.db.selectFrom('jobs').select(['lease_owner']).where('id', '=', started.body.id).executeTakeFirstOrThrow();
        expect(row.lease_owner).not.toBe('other-node');
        gate.release();
        expect(await waitForJob(server, org.token, started.body.id)).toMatchObject({ state: 'succeeded', done: 1 });
        expect(gate.arrived).toBe(1);
      } finally {
        gate.release();
        await otherNode.stop();
      }
    });
  });
}
