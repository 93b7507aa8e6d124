import { DeleteAliasCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets } from './support/databases.js';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

const BASE = '/api/v2/conversations/keyconfigurations';

async function waitForJob(server: TestServer, token: string, jobId: string, until: (job: any) => boolean = (j) => !['queued', 'running'].includes(j.state)) {
  for (let i = 0; i < 600; i++) {
    const res = await server.call('GET', `/api/v2/jobs/${jobId}`, { token });
    if (until(res.body)) return res.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${jobId} did not reach the expected state`);
}

async function writeConversations(server: TestServer, token: string, prefix: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await server.call('PUT', `/api/v2/conversations/${prefix}-${i}/secureddata`, { token, body: { data: { card: `4111-${prefix}-${i}`, cvv: `${i}` } } });
    if (res.status !== 200) throw new Error(`write failed: ${JSON.stringify(res.body)}`);
  }
}

async function expectReadable(server: TestServer, token: string, prefix: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await server.call('GET', `/api/v2/conversations/${prefix}-${i}/secureddata`, { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.data).toEqual({ card: `4111-${prefix}-${i}`, cvv: `${i}` });
  }
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`key lifecycle on ${target.name}`, () => {
    let server: TestServer;
    let org: { orgId: string; token: string; key: CustomerKey };
    let configId: string;

    beforeAll(async () => {
      // One conversation per data key, so a handful of writes makes a handful of data keys.
      server = await startTestServer(target.name, { CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1' });
      org = await orgWithCustomerKey(server, 'Acme', createOrgWithToken);
      configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
    });
    afterAll(async () => server?.close());

    it('rotates A → B: usage shows both, rewrap moves all to B, A is safe to retire and disabling it breaks nothing', async () => {
      const a = org.key;
      await writeConversations(server, org.token, 'a', 4);
      const b = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, b.aliasArn);
      await writeConversations(server, org.token, 'b', 2);

      const before = await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token });
      expect(before.status).toBe(200);
      const rowA = before.body.entities.find((r: any) => r.keyArn === a.keyArn);
      const rowB = before.body.entities.find((r: any) => r.keyArn === b.keyArn);
      expect(rowA).toMatchObject({ current: false, dataKeys: 4, conversations: 4, values: 8, safeToRetire: false });
      expect(rowB).toMatchObject({ current: true, dataKeys: 2, conversations: 2, values: 4, safeToRetire: false });
      expect(Date.parse(rowA.oldest)).toBeLessThanOrEqual(Date.parse(rowA.newest));

      const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
      expect(started.status).toBe(202);
      expect(started.body.type).toBe('rewrap');
      const job = await waitForJob(server, org.token, started.body.id);
      expect(job).toMatchObject({ state: 'succeeded', total: 4, done: 4, failed: 0, errors: [], targetKeyArn: b.keyArn });
      expect(job.startedAt).toBeDefined();
      expect(job.finishedAt).toBeDefined();

      const after = await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token });
      expect(after.body.entities.find((r: any) => r.keyArn === a.keyArn)).toMatchObject({ dataKeys: 0, conversations: 0, values: 0, safeToRetire: true, current: false });
      expect(after.body.entities.find((r: any) => r.keyArn === b.keyArn)).toMatchObject({ dataKeys: 6, conversations: 6, values: 12, current: true, safeToRetire: false });

      await a.disable();
      server.runtime.services.securedData.clearCaches(); // every read below must go to KMS
      await expectReadable(server, org.token, 'a', 4);
      await expectReadable(server, org.token, 'b', 2);
      await a.enable();

      const audit = await server.call('GET', '/api/v2/audits?action=lifecycle.rewrap.*', { token: org.token });
      expect(audit.body.entities.map((e: any) => e.action)).toEqual(expect.arrayContaining(['lifecycle.rewrap.started', 'lifecycle.rewrap.finished']));
    });

    it('reports data keys whose old key is disabled midway, skips them, loses nothing, and finishes on a re-POST once it is back', async () => {
      // Two old keys: one stays enabled (its data keys move), one is disabled while the job runs.
      const kept = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, kept.aliasArn);
      await writeConversations(server, org.token, 'k', 20);
      const c = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, c.aliasArn);
      await writeConversations(server, org.token, 'c', 20);
      const d = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, d.aliasArn);

      // The job's first KMS calls are held until C is disabled: no timing window decides the outcome.
      const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
      let job;
      try {
        const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
        await gate.waitFor(8); // running, with 8 data keys inside KMS
        await c.disable();
        gate.release();
        job = await waitForJob(server, org.token, started.body.id);
      } finally {
        gate.release();
      }
      expect(job.state).toBe('failed');
      expect(job.failed).toBe(20);
      expect(job.done).toBe(job.total - 20);
      expect(job.errors).toHaveLength(20);
      for (const error of job.errors) expect(error).toMatchObject({ keyArn: c.keyArn, awsError: 'DisabledException' });
      expect(job.errors[0].reason).toMatch(/disabled/);

      await c.enable();
      server.runtime.services.securedData.clearCaches();
      await expectReadable(server, org.token, 'c', 20);
      const again = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
      const finished = await waitForJob(server, org.token, again.body.id);
      expect(finished).toMatchObject({ state: 'succeeded', failed: 0, total: 20, done: 20 });
      const usage = await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token });
      expect(usage.body.entities.find((r: any) => r.keyArn === c.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true });
      expect(usage.body.entities.find((r: any) => r.keyArn === kept.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true });
      // Loses nothing: both old keys disabled, caches empty, every value reads through the new key.
      await c.disable();
      await kept.disable();
      server.runtime.services.securedData.clearCaches();
      await expectReadable(server, org.token, 'c', 20);
      await expectReadable(server, org.token, 'k', 20);
    });

    it('shreds a time window: its conversations answer DataShredded, the others stay readable; a wrong confirm is refused', async () => {
      await writeConversations(server, org.token, 'keep', 2);
      await new Promise((r) => setTimeout(r, 5));
      const from = new Date().toISOString();
      await writeConversations(server, org.token, 'gone', 3);
      const to = new Date(Date.now() + 1).toISOString();
      await new Promise((r) => setTimeout(r, 5));

      const wrong = await server.call('POST', `${BASE}/${configId}/shred`, { token: org.token, body: { from, to, confirm: 'acme' } });
      expect(wrong.status).toBe(400);
      expect(wrong.body.details.field).toBe('confirm');
      const reversed = await server.call('POST', `${BASE}/${configId}/shred`, { token: org.token, body: { from: to, to: from, confirm: 'Acme' } });
      expect(reversed.status).toBe(400);
      // Loose instants never decide what an irreversible operation destroys.
      for (const [looseFrom, looseTo, field] of [
        ['0', '1', 'from'],
        ['2000-01-01T00:00:00Z', '2030-02-30T00:00:00Z', 'to'],
        [from.replace('Z', ''), to, 'from'],
        ['2026-01-31', to, 'from'],
        ['2026-01-31T12:00Z', to, 'from'],
      ] as const) {
        const loose = await server.call('POST', `${BASE}/${configId}/shred`, { token: org.token, body: { from: looseFrom, to: looseTo, confirm: 'Acme' } });
        expect(loose.status, `${looseFrom} … ${looseTo}`).toBe(400);
        expect(loose.body.details.field).toBe(field);
      }

      const shred = await server.call('POST', `${BASE}/${configId}/shred`, { token: org.token, body: { from, to, confirm: 'Acme' } });
      expect(shred.status).toBe(200);
      expect(shred.body).toMatchObject({ from, to, dataKeys: 3, conversations: 3, values: 6 });
      for (let i = 0; i < 3; i++) {
        const res = await server.call('GET', `/api/v2/conversations/gone-${i}/secureddata`, { token: org.token });
        expect(res.status).toBe(404);
        expect(res.body.errorType).toBe('DataShredded');
      }
      await expectReadable(server, org.token, 'keep', 2);
      const audit = await server.call('GET', '/api/v2/audits?action=lifecycle.shred', { token: org.token });
      expect(audit.body.entities[0].details).toMatchObject({ dataKeys: 3, conversations: 3, values: 6 });
    });

    it('enforces permissions and hides other organizations\' configurations and jobs', async () => {
      const viewer = await createToken(server, org.orgId, ['conversation:encryptionKey:view']);
      expect((await server.call('GET', `${BASE}/${configId}/usage`, { token: viewer })).status).toBe(200);
      expect((await server.call('POST', `${BASE}/${configId}/rewrap`, { token: viewer })).status).toBe(403);
      expect((await server.call('POST', `${BASE}/${configId}/shred`, { token: viewer, body: { from: '2020-01-01T00:00:00Z', to: '2020-01-02T00:00:00Z', confirm: 'Acme' } })).status).toBe(403);

      const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
      await waitForJob(server, org.token, started.body.id);
      const other = await createOrgWithToken(server, 'Other', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
      expect((await server.call('GET', `${BASE}/${configId}/usage`, { token: other.token })).status).toBe(404);
      expect((await server.call('POST', `${BASE}/${configId}/rewrap`, { token: other.token })).status).toBe(404);
      expect((await server.call('GET', `/api/v2/jobs/${started.body.id}`, { token: other.token })).status).toBe(404);
      expect((await server.call('DELETE', `/api/v2/jobs/${started.body.id}`, { token: other.token })).status).toBe(404);
    });

    it('cancels a running job with DELETE, keeping what it rewrapped', async () => {
      const e = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, e.aliasArn);
      await writeConversations(server, org.token, 'e', 40);
      const f = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, f.aliasArn);

      // KMS answers are held at gates: the job is cancelled while its first data keys are inside KMS,
      // and the next ones are held until its progress write has seen the cancel.
      const faults = server.runtime.kms.localKms!.faults;
      const first = faults.hold('ReEncrypt');
      let second: ReturnType<typeof faults.hold> | undefined;
      let job;
      try {
        const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
        await first.waitFor(8);
        const viewer = await createToken(server, org.orgId, ['conversation:encryptionKey:view']);
        expect((await server.call('DELETE', `/api/v2/jobs/${started.body.id}`, { token: viewer })).status).toBe(403);
        const cancel = await server.call('DELETE', `/api/v2/jobs/${started.body.id}`, { token: org.token });
        expect(cancel.status).toBe(200);
        // The job writes progress (and reads the cancel) at most every 250 ms once a row finishes: let that be due.
        await new Promise((r) => setTimeout(r, 300));
        first.release();
        second = faults.hold('ReEncrypt');
        // The first rows finish; the progress write that follows records them and reads the cancel.
        // Rows taken meanwhile wait at the second gate, so the job cannot run on to the end.
        await waitForJob(server, org.token, started.body.id, (j) => j.done >= 1);
        second.release();
        job = await waitForJob(server, org.token, started.body.id);
      } finally {
        first.release();
        second?.release();
      }
      expect(job.state).toBe('cancelled');
      expect(job.done).toBeGreaterThanOrEqual(8);
      expect(job.done).toBeLessThanOrEqual(16); // the 8 held at the first gate, and at most 8 taken before the cancel was read
      expect(job.done).toBeLessThan(job.total);
      const usage = await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token });
      expect(usage.body.entities.find((r: any) => r.keyArn === f.keyArn).dataKeys).toBeGreaterThanOrEqual(job.done);
      server.runtime.services.securedData.clearCaches();
      await expectReadable(server, org.token, 'e', 40);
      const audit = await server.call('GET', '/api/v2/audits?action=lifecycle.rewrap.cancel', { token: org.token });
      expect(audit.body.entities).toHaveLength(1);
    });

    it('fails a job whose target key is gone, saying why, and loses nothing', async () => {
      const g = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, g.aliasArn);
      const dataKeys = () =>
        server.runtime.database.db.selectFrom('org_data_keys').select(['id', 'key_arn', 'wrapped_key']).where('org_id', '=', org.orgId).orderBy('id').execute();
      const before = await dataKeys();
      await g.client.send(new DeleteAliasCommand({ AliasName: g.aliasName }));
      const started = await server.call('POST', `${BASE}/${configId}/rewrap`, { token: org.token });
      const job = await waitForJob(server, org.token, started.body.id);
      expect(job.state).toBe('failed');
      expect(job.errors[0].keyArn).toBe(g.aliasArn);
      expect(job.errors[0].reason).toMatch(/not found/i);
      // Loses nothing: every data key row is as it was, and every value reads with the caches empty.
      expect(await dataKeys()).toEqual(before);
      server.runtime.services.securedData.clearCaches();
      await expectReadable(server, org.token, 'e', 40);
      await expectReadable(server, org.token, 'c', 20);
    });
  });
}
