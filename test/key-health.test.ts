import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CancelKeyDeletionCommand, DescribeKeyCommand, EnableKeyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { configureOrgKey, createCustomerKey, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Key health probes through the real runtime and its local KMS: statuses and their transitions,
 * the configuration's lastError, the audit trail, signed webhooks, an old key that still protects
 * data scheduled for deletion, permissions. Probes are driven with probeNow or the API (the
 * background interval is a year here, so the timer stays out of the way); the timer itself is
 * exercised once at the end with an interval of 1 s.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const SECRET = 'key-health-test-webhook-secret';

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: any;
  signatureValid: boolean;
}

/** What a customer's receiver does: HMAC-SHA256 over "<timestamp>.<raw body>", compared in constant time, recent timestamps only. */
function verify(rawBody: string, headers: http.IncomingHttpHeaders): boolean {
  const timestamp = String(headers['x-convault-timestamp'] ?? '');
  const signature = String(headers['x-convault-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${rawBody}`).digest('hex'));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function startReceiver() {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ headers: req.headers, body: JSON.parse(raw), signatureValid: verify(raw, req.headers) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/convault-webhook`,
    deliveries,
    forOrg: (orgId: string) => deliveries.filter((d) => d.body.orgId === orgId),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`key health on ${target.name}`, () => {
    let server: TestServer;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let org: { orgId: string; token: string; key: CustomerKey };
    let configId: string;

    beforeAll(async () => {
      receiver = await startReceiver();
      server = await startTestServer(target.name, {
        CONVAULT_KEY_PROBE_INTERVAL_S: '31536000', // a year: the background probe never comes in this suite
        CONVAULT_TEST_RATE_LIMIT_PER_MIN: '6',
        CONVAULT_WEBHOOK_URL: receiver.url,
        CONVAULT_WEBHOOK_SECRET: SECRET,
      });
      org = await orgWithCustomerKey(server, 'Healthy', createOrgWithToken);
      configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
    });
    afterAll(async () => {
      await server?.close();
      await receiver?.close();
    });

    const keyHealth = () => server.runtime.services.keyHealth;
    const health = (token = org.token, id = configId) => server.call('GET', `${BASE}/${id}/health`, { token });
    const probe = (token = org.token, id = configId) => server.call('POST', `${BASE}/${id}/health/probe`, { token });
    const configuration = async () => (await server.call('GET', `${BASE}/${configId}`, { token: org.token })).body;
    const transitions = async (token = org.token) =>
      (await server.call('GET', '/api/v2/audits?action=keyhealth.transition', { token })).body.entities as Array<{ principal: string; target: string; outcome: string; details: any }>;
    const webhooks = async (orgId = org.orgId) => {
      await keyHealth().webhooksIdle();
      return receiver.forOrg(orgId);
    };

    it('is ok right after the Save that ran its Test, without a probe (audited, webhook signed)', async () => {
      const res = await health();
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('ok');
      expect(Date.parse(res.body.checkedAt)).toBeGreaterThan(0);
      expect(res.body.lastError).toBeUndefined();
      expect(res.body.deletionDate).toBeUndefined();
      expect(res.body.keys).toEqual([{ keyArn: org.key.keyArn, current: true, state: 'Enabled', status: 'ok', dataKeys: 0 }]);

      const events = await transitions();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ principal: 'system:key-health', target: configId, outcome: 'success', details: { from: 'unknown', to: 'ok', trigger: 'save' } });

      const sent = await webhooks();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.signatureValid).toBe(true);
      expect(sent[0]!.headers['x-convault-event']).toBe('keyhealth.transition');
      expect(sent[0]!.headers['x-convault-delivery']).toMatch(/^[0-9a-f-]{36}$/);
      expect(sent[0]!.body).toEqual({ event: 'keyhealth.transition', orgId: org.orgId, configurationId: configId, from: 'unknown', to: 'ok', checkedAt: res.body.checkedAt });

      // A probe agrees with the Save.
      expect((await keyHealth().probeNow(org.orgId)).status).toBe('ok');
      // No change, no event: a second probe raises nothing.
      await keyHealth().probeNow(org.orgId);
      expect(await transitions()).toHaveLength(1);
      expect(await webhooks()).toHaveLength(1);
    });

    it('disabled key → failed with remediation, lastError on the configuration, audit event and webhook; enabled → ok and cleared', async () => {
      await org.key.disable();
      const failed = await probe();
      expect(failed.status).toBe(200);
      expect(failed.body.status).toBe('failed');
      expect(failed.body.lastError).toMatchObject({ code: 'customer.key.error', errorType: 'CustomerKeyUnavailable' });
      expect(failed.body.lastError.message).toMatch(/disabled.*kms:EnableKey/);
      expect(failed.body.keys[0]).toMatchObject({ keyArn: org.key.keyArn, current: true, state: 'Disabled', status: 'failed' });
      expect((await health()).body).toEqual(failed.body);

      expect((await configuration()).lastError).toEqual(failed.body.lastError);

      const events = await transitions();
      expect(events[0]).toMatchObject({ principal: 'system:key-health', outcome: 'failure', details: { from: 'ok', to: 'failed', trigger: 'manual' } });
      expect(events[0]!.details.lastError.message).toMatch(/disabled/);
      const sent = await webhooks();
      expect(sent).toHaveLength(2);
      expect(sent[1]!.signatureValid).toBe(true);
      expect(sent[1]!.body).toMatchObject({ from: 'ok', to: 'failed', lastError: failed.body.lastError, checkedAt: failed.body.checkedAt });

      await org.key.enable();
      const ok = await probe();
      expect(ok.body.status).toBe('ok');
      expect(ok.body.lastError).toBeUndefined();
      expect((await configuration()).lastError).toBeUndefined();
      expect((await transitions())[0]).toMatchObject({ outcome: 'success', details: { from: 'failed', to: 'ok' } });
      const after = await webhooks();
      expect(after).toHaveLength(3);
      expect(after[2]!.body).toMatchObject({ from: 'failed', to: 'ok' });
      expect(after[2]!.body.lastError).toBeUndefined();
    });

    it('throttling → degraded (the configuration lastError untouched), then ok again', async () => {
      const faults = server.runtime.kms.localKms!.faults;
      faults.set({ throttle: { ratio: 1 } });
      try {
        const degraded = await keyHealth().probeNow(org.orgId);
        expect(degraded.status).toBe('degraded');
        expect(degraded.lastError).toMatchObject({ awsError: 'ThrottlingException', errorType: 'CustomerKeyUnavailable' });
        expect(degraded.lastError!.message).toMatch(/throttled/i);
      } finally {
        faults.reset();
      }
      expect((await configuration()).lastError).toBeUndefined();
      expect((await transitions())[0]).toMatchObject({ details: { from: 'ok', to: 'degraded' } });
      expect((await keyHealth().probeNow(org.orgId)).status).toBe('ok');
      expect((await webhooks()).slice(-2).map((d) => [d.body.from, d.body.to])).toEqual([
        ['ok', 'degraded'],
        ['degraded', 'ok'],
      ]);
    });

    it('an old key that still protects data, scheduled for deletion → failed with its deletion date', async () => {
      const rotating = await orgWithCustomerKey(server, 'Rotating', createOrgWithToken);
      const oldKey = rotating.key;
      const conversationId = randomUUID();
      const put = await server.call('PUT', `/api/v2/conversations/${conversationId}/secureddata`, { token: rotating.token, body: { data: { a: 'x' } } });
      expect(put.status).toBe(200);

      const newKey = await createCustomerKey(server, { orgIds: [rotating.orgId] });
      const { id } = await configureOrgKey(server, rotating.token, newKey.aliasArn);
      const before = await keyHealth().probeNow(rotating.orgId);
      expect(before.status).toBe('ok');
      expect(before.keys).toEqual([
        { keyArn: newKey.keyArn, current: true, state: 'Enabled', status: 'ok', dataKeys: 0 },
        { keyArn: oldKey.keyArn, current: false, state: 'Enabled', status: 'ok', dataKeys: 1 },
      ]);

      await oldKey.client.send(new ScheduleKeyDeletionCommand({ KeyId: oldKey.keyId, PendingWindowInDays: 7 }));
      const deletionDate = (await oldKey.client.send(new DescribeKeyCommand({ KeyId: oldKey.keyId }))).KeyMetadata!.DeletionDate!.toISOString();
      const res = await probe(rotating.token, id);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('failed');
      expect(res.body.deletionDate).toBe(deletionDate);
      expect(res.body.lastError).toMatchObject({ keyArn: oldKey.keyArn, errorType: 'CustomerKeyUnavailable' });
      expect(res.body.lastError.message).toContain(`scheduled for deletion on ${deletionDate}`);
      expect(res.body.lastError.message).toMatch(/still protects 1 data key .*kms:CancelKeyDeletion/);
      expect(res.body.keys[1]).toEqual({
        keyArn: oldKey.keyArn,
        current: false,
        state: 'PendingDeletion',
        status: 'failed',
        deletionDate,
        dataKeys: 1,
        error: res.body.lastError,
      });
      const event = (await transitions(rotating.token))[0]!;
      expect(event.details).toMatchObject({ from: 'ok', to: 'failed', deletionDate });
      expect((await webhooks(rotating.orgId)).at(-1)!.body).toMatchObject({ to: 'failed', deletionDate });
      expect((await server.call('GET', `${BASE}/${id}`, { token: rotating.token })).body.lastError.keyArn).toBe(oldKey.keyArn);

      // The customer cancels the deletion (AWS leaves the key Disabled) and enables it again.
      await oldKey.client.send(new CancelKeyDeletionCommand({ KeyId: oldKey.keyId }));
      expect((await keyHealth().probeNow(rotating.orgId)).keys?.[1]).toMatchObject({ state: 'Disabled', status: 'failed' });
      await oldKey.client.send(new EnableKeyCommand({ KeyId: oldKey.keyId }));
      const healed = await keyHealth().probeNow(rotating.orgId);
      expect(healed.status).toBe('ok');
      expect(healed.deletionDate).toBeUndefined();
    });

    it('permissions: view reads, edit probes; another organization\'s id is 404; None has no probe', async () => {
      const viewOnly = await createToken(server, org.orgId, ['conversation:encryptionKey:view']);
      const nothing = await createToken(server, org.orgId, ['conversation:securedData:view']);
      expect((await health(viewOnly)).status).toBe(200);
      expect((await probe(viewOnly)).status).toBe(403);
      expect((await health(nothing)).status).toBe(403);
      expect((await server.call('GET', `${BASE}/${configId}/health`, { token: null })).status).toBe(401);

      const other = await orgWithCustomerKey(server, 'Other', createOrgWithToken);
      for (const res of [await health(other.token), await probe(other.token), await health(org.token, randomUUID())]) {
        expect(res.status).toBe(404);
        expect(res.body).toMatchObject({ status: 404, code: 'not.found' });
      }

      const platform = await createOrgWithToken(server, 'Platform only', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
      const none = await configureOrgKey(server, platform.token, null);
      expect((await health(platform.token, none.id)).body).toEqual({ status: 'unknown' });
      const refused = await probe(platform.token, none.id);
      expect(refused.status).toBe(409);
      expect(refused.body.message).toMatch(/None/);
    });

    it('manual probes are rate-limited per organization (each costs the customer KMS requests)', async () => {
      const limited = await orgWithCustomerKey(server, 'Eager', createOrgWithToken);
      const id = (await server.call('GET', BASE, { token: limited.token })).body.entities[0].id;
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await probe(limited.token, id)).status);
      expect(statuses.slice(0, 6)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(statuses[6]).toBe(429);
      // The manual probes are in the audit trail, by whom.
      const probes = (await server.call('GET', '/api/v2/audits?action=keyhealth.probe', { token: limited.token })).body.entities;
      expect(probes).toHaveLength(6);
      expect((await probe(org.token)).status).toBe(200); // another organization's budget is its own
    });
  });
}

describe('key health on a timer (CONVAULT_KEY_PROBE_INTERVAL_S=1)', () => {
  let server: TestServer;
  afterAll(async () => server?.close());

  it('probes in the background: ok after the key is configured, failed once it is disabled', async () => {
    server = await startTestServer('sqlite', { CONVAULT_KEY_PROBE_INTERVAL_S: '1' });
    const org = await orgWithCustomerKey(server, 'Timed', createOrgWithToken);
    const id = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
    const status = async () => (await server.call('GET', `${BASE}/${id}/health`, { token: org.token })).body.status;

    await vi.waitFor(async () => expect(await status()).toBe('ok'), { timeout: 20_000, interval: 100 });
    await org.key.disable();
    await vi.waitFor(async () => expect(await status()).toBe('failed'), { timeout: 20_000, interval: 100 });

    const events = (await server.call('GET', '/api/v2/audits?action=keyhealth.transition', { token: org.token })).body.entities;
    expect(events.map((e: any) => [e.details.from, e.details.to, e.details.trigger])).toEqual([
      ['ok', 'failed', 'schedule'],
      ['unknown', 'ok', 'save'],
    ]);
  });
});
