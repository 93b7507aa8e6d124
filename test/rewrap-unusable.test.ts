import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { runCli } from './support/process.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * A rewrap whose old key was disabled: the failures come back grouped by reason, with counts, the
 * data key ids (first ten in the job, all from …/errors) and a remediation that ends in "rewrap
 * again"; usage shows the old key Unusable instead of In use; `convault rewrap --wait` draws the
 * failures as failures and exits 1. Enabled again, a second rewrap moves everything.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const DATA_KEYS = 12;

describe('rewrap with an unusable old key', () => {
  let server: TestServer;
  let org: { orgId: string; token: string; key: CustomerKey };
  let configId: string;

  beforeAll(async () => {
    // One conversation per data key: DATA_KEYS writes make DATA_KEYS data keys.
    server = await startTestServer('sqlite', { CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '31536000' });
    org = await orgWithCustomerKey(server, 'Unusable', createOrgWithToken);
    configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
  });
  afterAll(async () => server?.close());

  it('groups the failures, marks the old key Unusable, and the CLI exits 1 with an honest bar', async () => {
    const oldKey = org.key;
    for (let i = 0; i < DATA_KEYS; i++) {
      const res = await server.call('PUT', `/api/v2/conversations/u-${i}/secureddata`, { token: org.token, body: { data: { card: `4111-${i}` } } });
      expect(res.status).toBe(200);
    }
    const newKey = await createCustomerKey(server, { orgIds: [org.orgId] });
    await configureOrgKey(server, org.token, newKey.aliasArn);
    await oldKey.disable();

    // The CLI, run with the server's data dir, finds the server's local KMS through its record.
    const cli = await runCli(['rewrap', '--org', org.orgId, '--wait', '--json'], { CONVAULT_DATA_DIR: server.dataDir });
    expect(cli.code).toBe(1);
    const job = JSON.parse(cli.stdout.trim().split('\n').at(-1)!);
    expect(job).toMatchObject({ state: 'failed', total: DATA_KEYS, done: 0, failed: DATA_KEYS });
    const bar = cli.stderr.split('\n').find((l) => l.startsWith('['))!;
    expect(bar).toMatch(/^\[x{30}\] 0\/12 rewrapped, 12 failed/);
    expect(cli.stderr).toContain(`12 data keys failed (DisabledException): Data keys under ${oldKey.keyArn} could not be moved`);
    expect(cli.stderr).toMatch(/enable it in AWS KMS \(kms:EnableKey\), then rewrap again/);
    expect(cli.stderr).toMatch(new RegExp(`data keys: ([0-9a-f-]{36}, ){9}[0-9a-f-]{36} and 2 more \\(all: GET /api/v2/jobs/${job.id}/errors\\)`));
    expect(cli.stderr).not.toMatch(/test again/);

    // The API: one group, the first ten ids in the job, all twelve from …/errors.
    const read = await server.call('GET', `/api/v2/jobs/${job.id}`, { token: org.token });
    expect(read.body.errorGroups).toHaveLength(1);
    const [group] = read.body.errorGroups;
    expect(group).toMatchObject({ keyArn: oldKey.keyArn, awsError: 'DisabledException', count: DATA_KEYS });
    expect(group.dataKeyIds).toHaveLength(10);
    expect(group.reason).toMatch(/then rewrap again\.$/);
    expect(read.body.errors).toHaveLength(DATA_KEYS); // one entry per data key, as before, each with its id
    expect(new Set(read.body.errors.map((e: any) => e.dataKeyId)).size).toBe(DATA_KEYS);
    const all = await server.call('GET', `/api/v2/jobs/${job.id}/errors`, { token: org.token });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ jobId: job.id, failed: DATA_KEYS });
    expect(all.body.entities[0].dataKeyIds).toHaveLength(DATA_KEYS);
    expect(all.body.entities[0].dataKeyIds.slice(0, 10)).toEqual(group.dataKeyIds);
    // Another organization cannot see the job's failures.
    const other = await createOrgWithToken(server, 'Other', ['conversation:encryptionKey:view']);
    expect((await server.call('GET', `/api/v2/jobs/${job.id}/errors`, { token: other.token })).status).toBe(404);

    // Usage: the disabled key is Unusable (its data cannot be read), not "In use".
    const usage = (await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token })).body.entities;
    expect(usage.find((r: any) => r.keyArn === newKey.keyArn)).toMatchObject({ current: true, status: 'Current' });
    const oldRow = usage.find((r: any) => r.keyArn === oldKey.keyArn);
    expect(oldRow).toMatchObject({ current: false, dataKeys: DATA_KEYS, safeToRetire: false, status: 'Unusable' });
    expect(oldRow.problem).toMatch(/12 data keys that cannot be read now: the key is Disabled\. Enable it .* then rewrap again/);

    // Fixed as the reason says, and rewrapped again: everything moves, the old key may go.
    await oldKey.enable();
    expect((await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token })).body.entities.find((r: any) => r.keyArn === oldKey.keyArn).status).toBe('InUse');
    const again = await runCli(['rewrap', '--org', org.orgId, '--wait'], { CONVAULT_DATA_DIR: server.dataDir });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/succeeded: 12 of 12 data keys rewrapped, 0 failed/);
    expect(again.stderr).toMatch(/\[#{30}\] 12\/12 rewrapped, 0 failed/);
    const after = (await server.call('GET', `${BASE}/${configId}/usage`, { token: org.token })).body.entities;
    expect(after.find((r: any) => r.keyArn === oldKey.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true, status: 'SafeToRetire' });
  });
});
