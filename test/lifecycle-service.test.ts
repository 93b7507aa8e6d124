import { randomUUID } from 'node:crypto';
import { CancelKeyDeletionCommand, DeleteAliasCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../src/services/auth/auth-service.js';
import { AppError } from '../src/services/errors.js';
import { createLifecycleDal } from '../src/services/lifecycle/lifecycle-dal.js';
import type { RewrapDeps } from '../src/services/lifecycle/rewrap-job.js';
import { createKeyLayer } from '../src/server/key-layer.js';
import type { KmsGateway } from '../src/kms/kms-gateway.js';
import { KmsCallError } from '../src/kms/kms-failure.js';
import { createRewrapService } from '../src/services/lifecycle/rewrap-service.js';
import { CONTEXT_KEY, CUSTOMER_ACCOUNT, configureOrgKey, createCustomerKey, orgWithCustomerKey, PLATFORM_ACCOUNT, REGION, retargetAlias, type CustomerKey } from './support/customer-keys.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';
import { rejection } from './support/rejection.js';

/**
 * The key lifecycle services in process on one SQLite runtime: the usage table's status of every key
 * (Current, InUse, SafeToRetire, Unusable with why), the shred's refusals, and the rewrap service's
 * job handling (one job at a time, other organizations' jobs unseen, cancel, a target whose
 * DescribeKey is denied, reasons that say what to fix).
 */

const BASE = '/api/v2/conversations/keyconfigurations';
let server: TestServer;

beforeAll(async () => {
  // One conversation per data key; no background key probes.
  server = await startTestServer('sqlite', { CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '86400' });
});
afterAll(async () => server?.close());

const services = () => server.runtime.services;
const caller = (orgId: string): Caller => ({ orgId, principalId: 'admin-1', principalName: 'Admin One', permissions: new Set() });

async function write(token: string, prefix: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await server.call('PUT', `/api/v2/conversations/${prefix}-${i}/secureddata`, { token, body: { data: { v: `${prefix}-${i}` } } });
    if (res.status !== 200) throw new Error(`write failed: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 3)); // distinct creation times, so oldest and newest differ
  }
}

async function finished(orgId: string, jobId: string) {
  for (let i = 0; i < 600; i++) {
    const job = await services().rewrap.get(caller(orgId), jobId);
    if (!['queued', 'running'].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${jobId} did not end`);
}

const appError = (p: Promise<unknown>) => rejection(p, AppError);

/** The usage rows of the organization's key configuration, through the service. */
async function usageOf(org: { orgId: string; configId: string }) {
  return (await services().lifecycle.usage(caller(org.orgId), org.configId)).entities;
}

/** A Save made on another node, as this node's database sees it: this node's cache still has the old key. */
async function saveOnAnotherNode(org: { orgId: string }, key: CustomerKey): Promise<void> {
  await server.runtime.database.db
    .updateTable('key_configurations')
    .set((eb) => ({ url: key.aliasArn, key_arn: key.keyArn, version: eb('version', '+', 1) }))
    .where('org_id', '=', org.orgId)
    .execute();
}

/** A new customer key, saved as the organization's key: what a rotation does. */
async function rotateTo(org: { orgId: string; token: string }): Promise<CustomerKey> {
  const key = await createCustomerKey(server, { orgIds: [org.orgId] });
  await configureOrgKey(server, org.token, key.aliasArn);
  return key;
}


let counter = 0;
async function newOrg() {
  counter++;
  return orgWithCustomerKey(server, `Org ${counter}`, createOrgWithToken);
}

describe('key usage', () => {
  it('tells the current key, a key still in use, an unusable one and why, and a key safe to retire', async () => {
    const org = await newOrg();
    const a = org.key;
    await write(org.token, 'a', 2);
    const b = await rotateTo(org);
    await write(org.token, 'b', 1);

    const rows = await usageOf(org);
    expect(rows.map((r) => [r.keyArn, r.status, r.current, r.safeToRetire, r.dataKeys])).toEqual([
      [b.keyArn, 'Current', true, false, 1],
      [a.keyArn, 'InUse', false, false, 2],
    ]);
    expect(rows[1]!.problem).toBeUndefined();
    expect(rows[1]!.conversations).toBe(2);
    expect(rows[1]!.values).toBe(2);
    expect(Date.parse(rows[1]!.oldest!)).toBeLessThan(Date.parse(rows[1]!.newest!));

    await a.disable();
    expect((await usageOf(org))[1]).toMatchObject({
      status: 'Unusable',
      problem: 'It still wraps 2 data keys that cannot be read now: the key is Disabled. Enable it again where it is kept. The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then rewrap again.',
    });
    await a.enable();
    await a.client.send(new ScheduleKeyDeletionCommand({ KeyId: a.keyId, PendingWindowInDays: 7 }));
    expect((await usageOf(org))[1]!.problem).toBe(
      'It still wraps 2 data keys that cannot be read now: the key is pending deletion. Cancel the deletion (kms:CancelKeyDeletion) and enable it, then rewrap again; once it is deleted that data is lost.',
    );
    await a.client.send(new CancelKeyDeletionCommand({ KeyId: a.keyId }));
    await a.enable();

    // The platform may no longer use or describe the key: without a refusal from the last rewrap nothing
    // says it is unusable. The rewrap's ReEncrypt is refused, so is the Decrypt it falls back to.
    await a.grantPlatform([]);
    expect((await usageOf(org))[1]).toMatchObject({ status: 'InUse' });
    const job = await services().rewrap.start(caller(org.orgId));
    const failedJob = await finished(org.orgId, job.id);
    expect(failedJob).toMatchObject({ state: 'failed', failed: 2, done: 0, total: 2 });
    const reason = failedJob.errorGroups[0]!.reason;
    expect(reason).toBe(
      `Data keys under ${a.keyArn} could not be moved (AccessDeniedException on Decrypt). Access denied: the key policy must allow account 444455556666 to call kms:GenerateDataKey* and kms:Decrypt with kms:EncryptionContext:convault-organization-id = ${org.orgId}. Copy the statement from GET /api/v2/conversations/keyconfigurations/keypolicy into the key policy. Then rewrap again: those data keys stay under their old key until a rewrap moves them.`,
    );
    expect((await usageOf(org))[1]).toMatchObject({ status: 'Unusable', problem: `It still wraps 2 data keys that cannot be read now: the last rewrap was refused. ${reason}` });

    // A KMS that does not answer says nothing either way: the key is in use, the current key the saved one.
    const faults = server.runtime.kms.localKms!.faults;
    faults.set({ outage: 'unavailable' });
    await faults.settled();
    try {
      const during = await usageOf(org);
      expect(during.map((r) => [r.keyArn, r.status])).toEqual([
        [b.keyArn, 'Current'],
        [a.keyArn, 'InUse'],
      ]);
    } finally {
      faults.reset();
      await faults.settled();
    }

    // Granted again, the rewrap moves everything: the old key is safe to retire.
    await a.grantPlatform([org.orgId]);
    const again = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(again).toMatchObject({ state: 'succeeded', total: 2, done: 2, failed: 0, errorGroups: [], targetKeyArn: b.keyArn });
    expect((await usageOf(org)).map((r) => [r.keyArn, r.status, r.safeToRetire, r.dataKeys])).toEqual([
      [b.keyArn, 'Current', false, 3],
      [a.keyArn, 'SafeToRetire', true, 0],
    ]);
  });

  it('shows a Save made a moment ago on another node as the current key', async () => {
    const org = await newOrg();
    await write(org.token, 'k', 1);
    expect((await usageOf(org)).find((r) => r.current)?.keyArn).toBe(org.key.keyArn);
    // Another node's Save, as this node's database sees it; this node still has the old key cached.
    const b = await createCustomerKey(server, { orgIds: [org.orgId] });
    await saveOnAnotherNode(org, b);
    expect((await usageOf(org)).map((r) => [r.keyArn, r.status])).toEqual([
      [b.keyArn, 'Current'],
      [org.key.keyArn, 'InUse'],
    ]);
  });

  it('lists the keys that are not current newest data first, and blames a rewrap refusal only on the key it was for', async () => {
    const org = await newOrg();
    const a = org.key;
    await write(org.token, 'a', 1);
    const b = await rotateTo(org);
    await write(org.token, 'b', 1);
    const c = await rotateTo(org);
    expect((await usageOf(org)).map((r) => [r.keyArn, r.status])).toEqual([
      [c.keyArn, 'Current'],
      [b.keyArn, 'InUse'],
      [a.keyArn, 'InUse'],
    ]);

    // The last rewrap was refused by a alone (b's data moved); b then wraps new data and is denied too.
    await a.grantPlatform([]);
    const job = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(job.errorGroups.map((g) => g.keyArn)).toEqual([a.keyArn]);
    await configureOrgKey(server, org.token, b.aliasArn);
    await write(org.token, 'b2', 1);
    await configureOrgKey(server, org.token, c.aliasArn);
    await b.grantPlatform([]);
    const rows = await usageOf(org);
    expect(rows.map((r) => [r.keyArn, r.status])).toEqual([
      [c.keyArn, 'Current'],
      [b.keyArn, 'InUse'],
      [a.keyArn, 'Unusable'],
    ]);
    expect(rows[2]!.problem).toContain(`the last rewrap was refused. Data keys under ${a.keyArn}`);
    await a.grantPlatform([org.orgId]);
    await b.grantPlatform([org.orgId]);
  });

  it('says a key that no longer exists wraps data that cannot be read (one data key)', async () => {
    const org = await newOrg();
    await write(org.token, 'x', 1);
    const b = await rotateTo(org);
    // The data key's old key is gone from KMS (deleted after its waiting period).
    const gone = org.key.keyArn.replace(/key\/.*$/, 'key/00000000-0000-0000-0000-000000000000');
    await server.runtime.database.db.updateTable('org_data_keys').set({ key_arn: gone }).where('org_id', '=', org.orgId).where('key_arn', '=', org.key.keyArn).execute();
    const rows = await usageOf(org);
    expect(rows.find((r) => r.keyArn === gone)).toMatchObject({ status: 'Unusable', dataKeys: 1, problem: 'It still wraps 1 data key that cannot be read now: the key no longer exists at its provider.' });
    // The key configured before stays listed, with nothing under it: after every key that still wraps data.
    expect(rows.find((r) => r.keyArn === org.key.keyArn)).toMatchObject({ status: 'SafeToRetire', dataKeys: 0, oldest: null, newest: null });
    expect(rows.map((r) => r.keyArn)).toEqual([b.keyArn, gone, org.key.keyArn]);
  });

  it('says data keys under a key no saved configuration of the organization names cannot be opened', async () => {
    const org = await newOrg();
    await write(org.token, 'u', 2);
    const b = await rotateTo(org);
    // An XKS key reference whose configuration is in neither the current row nor the history.
    const unknown = 'https://xks.example.com/kms/xks/v1/keys/never-saved';
    await server.runtime.database.db.updateTable('org_data_keys').set({ key_arn: unknown }).where('org_id', '=', org.orgId).where('key_arn', '=', org.key.keyArn).execute();
    const rows = await usageOf(org);
    expect(rows.find((r) => r.keyArn === unknown)).toMatchObject({
      status: 'Unusable',
      dataKeys: 2,
      problem: `It still wraps 2 data keys that cannot be read now: No saved key configuration of this organization names ${unknown}; the data keys it wraps cannot be opened.`,
    });
    // A rewrap cannot even build an adapter for them: the reason is the lookup's own message.
    const job = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(job).toMatchObject({ state: 'failed', failed: 2, done: 0 });
    expect(job.errorGroups.map((g) => [g.keyArn, g.count, g.reason])).toEqual([
      [unknown, 2, `Data keys under ${unknown} could not be moved (UnknownKeyReference on Rewrap). No saved key configuration of this organization names ${unknown}; the data keys it wraps cannot be opened. Fix that, then rewrap again.`],
    ]);
  });

  it('shows the current key before any data, and follows an alias retargeted in KMS before any save', async () => {
    const org = await newOrg();
    expect(await usageOf(org)).toEqual([
      { keyArn: org.key.keyArn, current: true, dataKeys: 0, conversations: 0, values: 0, oldest: null, newest: null, safeToRetire: false, status: 'Current' },
    ]);
    const next = await createCustomerKey(server, { orgIds: [org.orgId] });
    await retargetAlias(org.key, next.keyId);
    expect((await usageOf(org)).map((r) => [r.keyArn, r.status])).toEqual([
      [next.keyArn, 'Current'],
      [org.key.keyArn, 'SafeToRetire'],
    ]);
  });

  it("answers 404 for another organization's configuration", async () => {
    const org = await newOrg();
    const other = await newOrg();
    for (const call of [
      () => services().lifecycle.usage(caller(other.orgId), org.configId),
      () => services().lifecycle.assertConfiguration(caller(other.orgId), org.configId),
      () => services().lifecycle.shredWindow(caller(other.orgId), org.configId, { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', confirm: `Org ${counter}` }),
    ]) {
      expect(await appError(call())).toMatchObject({ status: 404, message: 'Key configuration was not found.' });
    }
    await expect(services().lifecycle.assertConfiguration(caller(org.orgId), org.configId)).resolves.toBeUndefined();
  });
});

describe('shred', () => {
  it('refuses an empty or reversed window and a confirmation that is not the exact organization name', async () => {
    const org = await newOrg();
    const shred = (body: { from: string; to: string; confirm: string }) => services().lifecycle.shredWindow(caller(org.orgId), org.configId, body);
    const name = `Org ${counter}`;
    const same = await appError(shred({ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z', confirm: name }));
    expect(same).toMatchObject({ status: 400, message: 'to must be after from.', details: { field: 'to' } });
    const wrong = await appError(shred({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', confirm: name.toLowerCase() }));
    expect(wrong).toMatchObject({ status: 400, message: 'confirm must be exactly the name of your organization: shredding cannot be undone.', details: { field: 'confirm' } });
    expect(await appError(shred({ from: '2026-01-01', to: '2026-01-02T00:00:00Z', confirm: name }))).toMatchObject({ status: 400, details: { field: 'from' } });
    expect(await appError(shred({ from: '2026-01-01T00:00:00Z', to: 'tomorrow', confirm: name }))).toMatchObject({ status: 400, details: { field: 'to' } });
    const result = await shred({ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:00:00.001Z', confirm: name });
    expect(result).toEqual({ from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:00:00.001Z', dataKeys: 0, conversations: 0, values: 0 });
    const audit = await services().audit.list(org.orgId, { action: 'lifecycle.shred' });
    expect(audit.entities[0]).toMatchObject({ principal: 'admin-1', target: org.configId, outcome: 'success', details: { principalName: 'Admin One', ...result } });
  });
});

describe('rewrap jobs', () => {
  it('runs one job per organization at a time, hides it from other organizations, and cancels it', async () => {
    const org = await newOrg();
    const other = await newOrg();
    await write(org.token, 'r', 3);
    const b = await rotateTo(org);

    const faults = server.runtime.kms.localKms!.faults;
    const gate = faults.hold('ReEncrypt');
    let job;
    try {
      job = await services().rewrap.start(caller(org.orgId));
      expect(job).toMatchObject({ type: 'rewrap', state: 'queued', done: 0, failed: 0, total: null, targetKeyId: b.aliasArn, errors: [], errorGroups: [] });
      await gate.waitFor(1);
      const second = await services().rewrap.start(caller(org.orgId));
      expect(second.id).toBe(job.id);
      expect(second.state).toBe('running');

      for (const call of [() => services().rewrap.get(caller(other.orgId), job!.id), () => services().rewrap.errors(caller(other.orgId), job!.id), () => services().rewrap.cancel(caller(other.orgId), job!.id)]) {
        expect(await appError(call())).toMatchObject({ status: 404, message: 'Job was not found.' });
      }
      const cancelled = await services().rewrap.cancel(caller(org.orgId), job.id);
      expect(cancelled.id).toBe(job.id);
    } finally {
      gate.release();
    }
    const ended = await finished(org.orgId, job.id);
    expect(ended.state).toBe('cancelled');
    expect(await services().rewrap.errors(caller(org.orgId), job.id)).toEqual({ jobId: job.id, failed: 0, entities: [] });
    const audit = (await services().audit.list(org.orgId, { action: 'lifecycle.rewrap.*' })).entities.reverse();
    expect(audit.map((e) => [e.action, e.outcome])).toEqual([
      ['lifecycle.rewrap.started', 'success'],
      ['lifecycle.rewrap.cancel', 'success'],
      ['lifecycle.rewrap.finished', 'failure'],
    ]);
    expect(audit[0]!.details).toEqual({ principalName: 'Admin One', targetKeyId: b.aliasArn, keyConfigurationType: 'KmsSymmetric' });
    expect(audit[1]!.details).toEqual({ principalName: 'Admin One' });
    expect(audit[2]!.details).toMatchObject({ state: 'cancelled', total: 3, targetKeyArn: b.keyArn });

    // A new start after the cancel is a new job that finishes the work.
    const next = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(next.id).not.toBe(job.id);
    expect(next).toMatchObject({ state: 'succeeded', failed: 0 });
    expect(next.done).toBe(next.total);
    const last = (await services().audit.list(org.orgId, { action: 'lifecycle.rewrap.finished' })).entities[0]!;
    expect(last).toMatchObject({ principal: 'system:rewrap', target: next.id, outcome: 'success', details: { state: 'succeeded', failed: 0 } });
  });

  it('moves data keys to a target whose DescribeKey the key policy denies, resolving it with an Encrypt', async () => {
    const org = await newOrg();
    await write(org.token, 'd', 2);
    const b = await rotateTo(org);
    // Only the usage statement: no DescribeKey for the platform.
    const { PutKeyPolicyCommand } = await import('@aws-sdk/client-kms');
    const { customerKeyPolicy } = await import('../src/kms/key-policy.js');
    const policy = customerKeyPolicy({ customerAccountId: b.accountId, platformAccountId: '444455556666', encryptionContextKey: 'convault-organization-id', orgIds: [org.orgId] });
    policy.Statement = policy.Statement.filter((s) => s.Sid !== 'AllowConvaultPlatformDescribeKey');
    await b.client.send(new PutKeyPolicyCommand({ KeyId: b.keyId, PolicyName: 'default', Policy: JSON.stringify(policy) }));
    const job = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(job).toMatchObject({ state: 'succeeded', total: 2, done: 2, targetKeyArn: b.keyArn });
  });

  it('fails the data keys whose old key is disabled, saying what to fix, and moves nothing', async () => {
    const org = await newOrg();
    await write(org.token, 't', 1);
    const b: CustomerKey = await createCustomerKey(server, { orgIds: [org.orgId] });
    await configureOrgKey(server, org.token, b.aliasArn);
    await org.key.disable();
    const job = await finished(org.orgId, (await services().rewrap.start(caller(org.orgId))).id);
    expect(job.state).toBe('failed');
    expect(job.total).toBe(1);
    expect(job.done).toBe(0);
    expect(job.failed).toBe(1);
    expect(job.errorGroups).toEqual([
      {
        keyArn: org.key.keyArn,
        awsError: 'DisabledException',
        reason: `Data keys under ${org.key.keyArn} could not be moved (DisabledException on ReEncrypt). The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then rewrap again.`,
        count: 1,
        dataKeyIds: [expect.any(String)],
      },
    ]);
    await org.key.enable();
  });
});

/** Last in this file: it stops the runtime's own rewrap service, so only the nodes made here run jobs. */
describe('rewrap jobs across nodes', () => {
  /** A rewrap node of its own on the runtime's database and KMS; one data key at a time unless told otherwise. */
  const node = (
    nodeId: string,
    opts: {
      logger?: { error(obj: object, msg: string): void };
      settings?: { concurrency: number; batchSize: number };
      gateway?: KmsGateway;
      /** The job's database access, wrapped to watch or steer it. */
      dal?: RewrapDeps['dal'];
      clock?: () => number;
      forgetDataKeys?: (ids: Iterable<string>) => void;
    } = {},
  ) =>
    createRewrapService({
      dal: opts.dal ?? createLifecycleDal(server.runtime.database.db),
      // Its own key layer over another gateway when one is given (to watch the KMS calls it makes).
      keys: opts.gateway
        ? createKeyLayer({
            db: server.runtime.database.db,
            gateway: opts.gateway,
            platformKeyArn: server.runtime.kms.platformKeyArn,
            settings: { platformAccountId: PLATFORM_ACCOUNT, encryptionContextKey: CONTEXT_KEY, allowedRegions: [REGION], defaultRegion: REGION, refreshMs: 2_000, xksUrlPolicy: { allowHttpLoopback: false, allowPrivateNetworks: false } },
          }).keys
        : server.runtime.keyLayer.keys,
      keyConfigs: services().keyConfigs,
      audit: services().audit,
      forgetDataKeys: opts.forgetDataKeys ?? (() => undefined),
      ...(opts.clock ? { clock: opts.clock } : {}),
      settings: { concurrency: 1, batchSize: 1, ...opts.settings, leaseMs: 60_000, platformAccountId: PLATFORM_ACCOUNT, defaultRegion: REGION, encryptionContextKey: CONTEXT_KEY },
      nodeId,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  const jobRow = (orgId: string, targetKeyId: string) => ({
    id: randomUUID(),
    org_id: orgId,
    type: 'rewrap' as const,
    state: 'queued' as const,
    target_key_id: targetKeyId,
    target_key_arn: null,
    total: null,
    done: 0,
    failed: 0,
    errors: '[]',
    created_at: Date.now(),
    created_by: 'cli',
    started_at: null,
    finished_at: null,
    lease_owner: null,
    lease_expires_at: null,
    cancel_requested: 0,
  });
  const row = (id: string) => server.runtime.database.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const dal = () => createLifecycleDal(server.runtime.database.db);

  beforeAll(async () => services().rewrap.stop());

  it('a stopping node hands its job back with its progress; another node resumes it and keeps its total', async () => {
    const org = await newOrg();
    await write(org.token, 'n', 3);
    const b = await rotateTo(org);
    const first = node('node-first');
    const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
    let jobId: string;
    let run: Promise<unknown>;
    try {
      jobId = (await first.start(caller(org.orgId))).id;
      run = first.runHere(org.orgId, jobId);
      await gate.waitFor(1);
      const stopped = first.stop();
      gate.release();
      await stopped;
      // stop() resolves once the job has handed its lease back, not before.
      expect(await row(jobId)).toMatchObject({ state: 'running', lease_owner: null, lease_expires_at: null, total: 3, done: 1, failed: 0 });
    } finally {
      gate.release();
    }
    expect(await run).toBe('abandoned');

    const second = node('node-second');
    expect(await second.runHere(org.orgId, jobId)).toBe('succeeded');
    expect(await row(jobId)).toMatchObject({ state: 'succeeded', total: 3, done: 3, lease_owner: null });
    // An ended job is not run again, by this node or any other.
    expect(await second.runHere(org.orgId, jobId)).toBe('not-claimed');
    await second.stop();
  });

  it('jobs nobody holds (started from the CLI) are picked up by a sweep; a stopped node sweeps nothing', async () => {
    const org = await newOrg();
    await write(org.token, 's', 1);
    const b = await rotateTo(org);

    const stopped = node('node-stopped');
    await stopped.stop();
    const queued = jobRow(org.orgId, b.aliasArn);
    await dal().insertJob(queued);
    await stopped.sweep();
    await new Promise((r) => setTimeout(r, 100));
    expect(await row(queued.id)).toMatchObject({ state: 'queued', lease_owner: null });

    const sweeping = node('node-sweeping');
    sweeping.startSweeper(50);
    try {
      for (let i = 0; i < 400 && (await row(queued.id)).state !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await row(queued.id)).toMatchObject({ state: 'succeeded', total: 1, done: 1 });
    } finally {
      await sweeping.stop();
    }
  });

  it('cancelling a job nobody runs ends it at once', async () => {
    const org = await newOrg();
    const queued = jobRow(org.orgId, org.key.aliasArn);
    await dal().insertJob(queued);
    const cancelled = await node('node-any').cancel(caller(org.orgId), queued.id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.finishedAt).toBeDefined();
  });

  it('fails a job whose target key is gone, saying why, and logs it', async () => {
    const org = await newOrg();
    await write(org.token, 'g', 1);
    const b = await rotateTo(org);
    await b.client.send(new DeleteAliasCommand({ AliasName: b.aliasName }));
    const logged: string[] = [];
    const gone = node('node-target-gone', { logger: { error: (obj, msg) => void logged.push(`${msg} ${JSON.stringify(obj)}`) } });
    try {
      const job = await gone.start(caller(org.orgId));
      expect(await gone.runHere(org.orgId, job.id)).toBe('failed');
      const ended = await gone.get(caller(org.orgId), job.id);
      expect(ended).toMatchObject({ state: 'failed', done: 0, failed: 0 });
      expect(ended.errorGroups).toEqual([{ keyArn: b.aliasArn, reason: expect.stringMatching(/not found|does not exist/i), count: 0, dataKeyIds: [] }]);
      expect(ended.errors).toEqual([{ dataKeyId: '', keyArn: b.aliasArn, reason: ended.errorGroups[0]!.reason }]);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(new RegExp(`^rewrap job failed .*"jobId":"${job.id}"`));
    } finally {
      await gone.stop();
    }
  });

  it('a node without a logger ends a job whose target is gone as failed, and never wraps with a target it could not describe', async () => {
    const org = await newOrg();
    await write(org.token, 'q', 1);
    const b = await rotateTo(org);
    await b.client.send(new DeleteAliasCommand({ AliasName: b.aliasName }));
    const wraps = () => server.runtime.kms.metrics.snapshot().filter((e) => e.operation === 'Encrypt' || e.operation === 'GenerateDataKey').reduce((n, e) => n + e.count, 0);
    const before = wraps();
    // Only a DescribeKey refused as AccessDenied is worth a throwaway Encrypt; "not found" ends the job.
    const silent = node('node-silent');
    try {
      const job = await silent.start(caller(org.orgId));
      expect(await silent.runHere(org.orgId, job.id)).toBe('failed');
      expect((await silent.get(caller(org.orgId), job.id)).errorGroups[0]!.reason).toMatch(/not found|does not exist/i);
    } finally {
      await silent.stop();
    }
    expect(wraps()).toBe(before);
  });

  it("tells the node's caches exactly which data keys it moved", async () => {
    const org = await newOrg();
    await write(org.token, 'f', 3);
    const ids = (await server.runtime.database.db.selectFrom('org_data_keys').select('id').where('org_id', '=', org.orgId).execute()).map((r) => r.id);
    const b = await rotateTo(org);
    const forgotten: string[] = [];
    const worker = node('node-forgetting', { settings: { concurrency: 2, batchSize: 2 }, forgetDataKeys: (moved) => void forgotten.push(...moved) });
    try {
      const job = await worker.start(caller(org.orgId));
      expect(await worker.runHere(org.orgId, job.id)).toBe('succeeded');
    } finally {
      await worker.stop();
    }
    expect(ids).toHaveLength(3);
    expect([...new Set(forgotten)].sort()).toEqual([...ids].sort());
  });

  it('two starts at one moment on two nodes make one job, started once', async () => {
    const org = await newOrg();
    await write(org.token, 'c', 1);
    const b = await rotateTo(org);
    const [x, y] = [node('node-x'), node('node-y')];
    // Held at its first ReEncrypt, the job is still active when both starts read and insert.
    const gate = server.runtime.kms.localKms!.faults.hold('ReEncrypt');
    let jobId = '';
    try {
      const [jx, jy] = await Promise.all([x.start(caller(org.orgId)), y.start(caller(org.orgId))]);
      jobId = jx.id;
      expect(jy.id).toBe(jx.id);
      const jobs = await server.runtime.database.db.selectFrom('jobs').select('id').where('org_id', '=', org.orgId).execute();
      expect(jobs.map((j) => j.id)).toEqual([jx.id]);
      const started = await server.runtime.database.db.selectFrom('audit_events').select('target').where('org_id', '=', org.orgId).where('action', '=', 'lifecycle.rewrap.started').execute();
      expect(started.map((e) => e.target)).toEqual([jx.id]);
    } finally {
      gate.release();
    }
    expect(await finished(org.orgId, jobId)).toMatchObject({ state: 'succeeded', done: 1 });
  });

  it('a rewrap started right after a Save on another node targets the saved key', async () => {
    const org = await newOrg();
    await write(org.token, 'r', 1);
    // This node has the configuration cached (the write above read it).
    const b = await createCustomerKey(server, { orgIds: [org.orgId] });
    await saveOnAnotherNode(org, b);
    const worker = node('node-fresh');
    try {
      const job = await worker.start(caller(org.orgId));
      expect(job).toMatchObject({ targetKeyId: b.aliasArn });
      expect(await worker.runHere(org.orgId, job.id)).toBe('succeeded');
    } finally {
      await worker.stop();
    }
  });

  describe('progress inside a long batch', () => {
    /** A rewrap of 6 data keys in one batch, one at a time, under a clock that moves `step` ms per reading. */
    async function longBatch(step: number, cancelAfterSwaps?: number) {
      const org = await newOrg();
      await write(org.token, 'l', 6);
      const b = await rotateTo(org);
      let now = Date.now();
      const clock = () => (now += step);
      const real = dal();
      const beats: Array<{ done: number; leaseUntil: number; at: number; cancelRequested: boolean }> = [];
      let swaps = 0;
      let jobId = '';
      const watched: RewrapDeps['dal'] = {
        ...real,
        async heartbeat(...args) {
          const at = now;
          const result = await real.heartbeat(...args);
          beats.push({ done: args[3].done, leaseUntil: args[4], at, cancelRequested: result.cancelRequested });
          return result;
        },
        async swapWrappedKey(...args) {
          const swapped = await real.swapWrappedKey(...args);
          if (++swaps === cancelAfterSwaps) await real.requestCancel(org.orgId, jobId, Date.now());
          return swapped;
        },
      };
      const worker = node('node-long-batch', { settings: { concurrency: 1, batchSize: 6 }, dal: watched, clock });
      try {
        jobId = (await worker.start(caller(org.orgId))).id;
        const state = await worker.runHere(org.orgId, jobId);
        return { state, beats, job: await worker.get(caller(org.orgId), jobId) };
      } finally {
        await worker.stop();
      }
    }

    it('is written at most every 250 ms of the job clock: never while the clock stands still', async () => {
      const { state, beats } = await longBatch(0);
      expect(state).toBe('succeeded');
      // The claim's beat and the one after the batch: nothing in between.
      expect(beats.map((b) => b.done)).toEqual([0, 6]);
    });

    it('is written inside the batch when the clock moves, each time with a lease ahead of that clock', async () => {
      const { state, beats } = await longBatch(400);
      expect(state).toBe('succeeded');
      const inside = beats.slice(1, -1);
      expect(inside.length).toBeGreaterThanOrEqual(2);
      // After each data key once the clock moved on: the last one may come after the sixth.
      expect(inside.every((b) => b.done > 0)).toBe(true);
      expect(inside.filter((b) => b.done < 6).length).toBeGreaterThanOrEqual(2);
      for (const b of beats) expect(b.leaseUntil).toBeGreaterThan(b.at);
      expect(beats.map((b) => b.done)).toEqual([...beats.map((b) => b.done)].sort((x, y) => x - y));
    });

    it('a cancel seen at a beat inside the batch stops the batch there', async () => {
      const { state, beats, job } = await longBatch(400, 2);
      expect(state).toBe('cancelled');
      expect(beats.some((b) => b.cancelRequested && b.done < 6)).toBe(true);
      expect(job.done).toBeLessThan(6);
    });
  });

  it('rides out a KMS that is unreachable for a moment instead of failing the data key', async () => {
    const org = await newOrg();
    await write(org.token, 'u', 2);
    const b = await rotateTo(org);
    const faults = server.runtime.kms.localKms!.faults;
    const unreachable = () => server.runtime.kms.metrics.snapshot().filter((e) => e.operation === 'ReEncrypt' && e.outcome !== 'ok').reduce((n, e) => n + e.count, 0);
    const before = unreachable();
    const gate = faults.hold('ReEncrypt');
    const outageNode = node('node-outage');
    try {
      const job = await outageNode.start(caller(org.orgId));
      const run = outageNode.runHere(org.orgId, job.id);
      await gate.waitFor(1); // the target is resolved and the first data key is inside KMS
      faults.set({ outage: 'unavailable', outageForMs: 300 });
      await faults.settled();
      gate.release();
      expect(await run).toBe('succeeded');
      expect(await outageNode.get(caller(org.orgId), job.id)).toMatchObject({ state: 'succeeded', total: 2, done: 2, failed: 0 });
      expect(unreachable()).toBeGreaterThan(before); // a call did fail, and was retried
    } finally {
      gate.release();
      faults.reset();
      await faults.settled();
      await outageNode.stop();
    }
  });
  it('gives a KMS that stays unreachable six retries (about 10 s) before it counts the data key failed', async () => {
    const org = await newOrg();
    await write(org.token, 'w', 1);
    await rotateTo(org);
    // The connection refused on every ReEncrypt of this node only: the runtime's own breaker and KMS stay as they are.
    let attempts = 0;
    const counting = node('node-retries', {
      gateway: {
        ...server.runtime.kms.gateway,
        reEncrypt: async () => {
          attempts++;
          throw new KmsCallError('Unreachable', 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:4566', 'ReEncrypt');
        },
      },
    });
    try {
      const job = await counting.start(caller(org.orgId));
      expect(await counting.runHere(org.orgId, job.id)).toBe('failed');
      expect(attempts).toBe(1 + 6);
      expect(await counting.get(caller(org.orgId), job.id)).toMatchObject({ done: 0, failed: 1 });
    } finally {
      await counting.stop();
    }
  }, 30_000);

  it('holds the lease from the claim on, through the target lookup and after every batch', async () => {
    const org = await newOrg();
    await write(org.token, 'l', 2);
    const b = await rotateTo(org);
    const faults = server.runtime.kms.localKms!.faults;
    const holder = node('node-holder');
    const other = node('node-other');
    const describe = faults.hold('DescribeKey');
    let first: ReturnType<typeof faults.hold> | undefined;
    let second: ReturnType<typeof faults.hold> | undefined;
    try {
      const jobId = (await holder.start(caller(org.orgId))).id;
      const run = holder.runHere(org.orgId, jobId);
      await describe.waitFor(1); // claimed, resolving its target
      expect(await other.runHere(org.orgId, jobId)).toBe('not-claimed');
      first = faults.hold('ReEncrypt');
      describe.release();
      await first.waitFor(1);
      first.release();
      second = faults.hold('ReEncrypt');
      // The first batch (one data key) is done and its heartbeat written; the second one is held.
      await second.waitFor(1);
      expect(await other.runHere(org.orgId, jobId)).toBe('not-claimed');
      second.release();
      expect(await run).toBe('succeeded');
    } finally {
      describe.release();
      first?.release();
      second?.release();
      await holder.stop();
      await other.stop();
    }
  });

  it('keeps at most `concurrency` KMS calls of a job in flight', async () => {
    const org = await newOrg();
    await write(org.token, 'c', 4);
    const b = await rotateTo(org);
    const faults = server.runtime.kms.localKms!.faults;
    const two = node('node-two', { settings: { concurrency: 2, batchSize: 10 } });
    const gate = faults.hold('ReEncrypt');
    try {
      const jobId = (await two.start(caller(org.orgId))).id;
      await gate.waitFor(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(gate.arrived).toBe(2);
      gate.release();
      expect(await two.runHere(org.orgId, jobId)).toBe('succeeded');
    } finally {
      gate.release();
      await two.stop();
    }
  });

  it('without kms:ReEncrypt* switches to Decrypt + Encrypt after one refusal, and zeroes every plaintext it handled', async () => {
    const org = await newOrg();
    await write(org.token, 'p', 3);
    const b = await createCustomerKey(server, { orgIds: [org.orgId], reEncrypt: false });
    await configureOrgKey(server, org.token, b.aliasArn);
    const calls = () => {
      const out: Record<string, number> = {};
      for (const e of server.runtime.kms.metrics.snapshot()) out[`${e.operation}|${e.outcome}`] = e.count;
      return out;
    };
    const before = calls();
    const gateway = server.runtime.kms.gateway;
    const plaintexts: Buffer[] = [];
    const watching = node('node-watching', {
      settings: { concurrency: 1, batchSize: 10 },
      gateway: {
        ...gateway,
        decrypt: async (blob, context, keyId) => {
          const out = await gateway.decrypt(blob, context, keyId);
          plaintexts.push(out.plaintext);
          return out;
        },
      },
    });
    try {
      const jobId = (await watching.start(caller(org.orgId))).id;
      expect(await watching.runHere(org.orgId, jobId)).toBe('succeeded');
    } finally {
      await watching.stop();
    }
    const after = calls();
    const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    expect(delta('ReEncrypt|AccessDeniedException')).toBe(1);
    expect(delta('Decrypt|ok')).toBe(3);
    expect(delta('Encrypt|ok')).toBe(3);
    expect(plaintexts).toHaveLength(3);
    for (const p of plaintexts) expect(p.equals(Buffer.alloc(32))).toBe(true);
  });

  it('groups failures by old key and reason; a key gone from KMS is named with its account and region', async () => {
    const org = await newOrg();
    await write(org.token, 'a', 2);
    const second = await rotateTo(org);
    await write(org.token, 'b', 1);
    const target = await rotateTo(org);
    await org.key.disable();
    // The second key's data key names a key that no longer exists in KMS.
    const gone = second.keyArn.replace(/key\/.*$/, 'key/00000000-0000-0000-0000-000000000000');
    await server.runtime.database.db.updateTable('org_data_keys').set({ key_arn: gone }).where('org_id', '=', org.orgId).where('key_arn', '=', second.keyArn).execute();
    const worker = node('node-groups');
    try {
      const jobId = (await worker.start(caller(org.orgId))).id;
      expect(await worker.runHere(org.orgId, jobId)).toBe('failed');
      // In the order the data keys (random ids) were met.
      const groups = (await worker.errors(caller(org.orgId), jobId)).entities.sort((x, y) => Number(x.keyArn === gone) - Number(y.keyArn === gone));
      expect(groups.map((g) => [g.keyArn, g.awsError, g.count])).toEqual([
        [org.key.keyArn, 'DisabledException', 2],
        [gone, 'NotFoundException', 1],
      ]);
      expect(groups[1]!.reason).toContain(`does not exist in account ${CUSTOMER_ACCOUNT}, region ${REGION}`);
    } finally {
      await worker.stop();
      await org.key.enable();
    }
  });

  it('a throttled rewrap says nothing about whether a key is usable', async () => {
    const org = await newOrg();
    await write(org.token, 't', 1);
    const b = await rotateTo(org);
    const faults = server.runtime.kms.localKms!.faults;
    const worker = node('node-throttled');
    try {
      faults.set({ throttle: { ratio: 1, operations: ['ReEncrypt'] } });
      const jobId = (await worker.start(caller(org.orgId))).id;
      expect(await worker.runHere(org.orgId, jobId)).toBe('failed');
      expect((await worker.errors(caller(org.orgId), jobId)).entities[0]).toMatchObject({ keyArn: org.key.keyArn, awsError: 'ThrottlingException' });
    } finally {
      faults.reset();
      await worker.stop();
    }
    // The platform may no longer describe the old key; the last rewrap's only failure was a throttle.
    await org.key.grantPlatform([]);
    const rows = await usageOf(org);
    expect(rows.find((r) => r.keyArn === org.key.keyArn)).toMatchObject({ status: 'InUse' });
  });
});
