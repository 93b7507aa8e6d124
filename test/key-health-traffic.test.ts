import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Key health follows reality without waiting for a probe: a passing Save sets it ok, a request
 * that fails on the customer's key moves it to failed within that request, and the first request
 * that works again moves it back. The background probe is a year away here, so every change below
 * comes from the Save or from traffic; plaintext keys stay in memory for 1 s, so a read after that
 * reaches KMS.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const CACHE_S = 1;

describe('key health follows the Save and real traffic', () => {
  let server: TestServer;
  let org: { orgId: string; token: string; key: CustomerKey };
  let configId: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite', { CONVAULT_KEY_PROBE_INTERVAL_S: '31536000', CONVAULT_KEY_CACHE_MAX_AGE_S: String(CACHE_S) });
    org = await orgWithCustomerKey(server, 'Traffic', createOrgWithToken);
    configId = (await server.call('GET', BASE, { token: org.token })).body.entities[0].id;
  });
  afterAll(async () => server?.close());

  const health = async () => (await server.call('GET', `${BASE}/${configId}/health`, { token: org.token })).body;
  const configuration = async () => (await server.call('GET', `${BASE}/${configId}`, { token: org.token })).body;
  const transitions = async () =>
    ((await server.call('GET', '/api/v2/audits?action=keyhealth.transition', { token: org.token })).body.entities as Array<{ details: any }>).map((e) => [
      e.details.from,
      e.details.to,
      e.details.trigger,
    ]);
  const read = (conversationId: string) => server.call('GET', `/api/v2/conversations/${conversationId}/secureddata`, { token: org.token });
  const cacheExpired = () => new Promise((r) => setTimeout(r, CACHE_S * 1000 + 200));

  it('ok after Save without Check now; failed within the failing request; ok again after the key is enabled', async () => {
    // Save ran its Test: ok, and no probe has run (the only event is the Save's).
    const saved = await health();
    expect(saved.status).toBe('ok');
    expect(saved.keys).toEqual([{ keyArn: org.key.keyArn, current: true, state: 'Enabled', status: 'ok', dataKeys: 0 }]);
    expect(await transitions()).toEqual([['unknown', 'ok', 'save']]);

    const conversationId = randomUUID();
    const put = await server.call('PUT', `/api/v2/conversations/${conversationId}/secureddata`, { token: org.token, body: { data: { card: '4111' } } });
    expect(put.status).toBe(200);

    // The customer disables the key; the next read that reaches KMS fails with 424 …
    await org.key.disable();
    await cacheExpired();
    const refused = await read(conversationId);
    expect(refused.status).toBe(424);
    expect(refused.body.errorType).toBe('CustomerKeyUnavailable');

    // … and by the time that answer arrived, health, lastError and the badge's source agree.
    const failed = await health();
    expect(failed.status).toBe('failed');
    expect(failed.lastError).toMatchObject({ code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', awsError: 'DisabledException' });
    expect(failed.lastError.message).toMatch(/disabled.*kms:EnableKey/);
    expect(failed.keys[0]).toMatchObject({ keyArn: org.key.keyArn, current: true, state: 'Disabled', status: 'failed' });
    expect((await configuration()).lastError).toEqual(failed.lastError);

    // More failing requests raise no second event.
    expect((await read(conversationId)).status).toBe(424);
    expect((await server.call('PUT', `/api/v2/conversations/${randomUUID()}/secureddata`, { token: org.token, body: { data: { a: 'b' } } })).status).toBe(424);
    expect(await transitions()).toEqual([
      ['ok', 'failed', 'traffic'],
      ['unknown', 'ok', 'save'],
    ]);

    // Enabled again: the first read that works clears it.
    await org.key.enable();
    const back = await read(conversationId);
    expect(back.status).toBe(200);
    expect(back.body.data).toEqual({ card: '4111' });
    const ok = await health();
    expect(ok.status).toBe('ok');
    expect(ok.lastError).toBeUndefined();
    expect(ok.keys[0]).toMatchObject({ keyArn: org.key.keyArn, current: true, state: 'Enabled', status: 'ok' });
    expect((await configuration()).lastError).toBeUndefined();
    expect((await transitions())[0]).toEqual(['failed', 'ok', 'traffic']);
  });

  it('a throttled KMS seen by traffic is degraded (503), and recovers with the next request that works', async () => {
    const conversationId = randomUUID();
    expect((await server.call('PUT', `/api/v2/conversations/${conversationId}/secureddata`, { token: org.token, body: { data: { a: 'b' } } })).status).toBe(200);
    await cacheExpired();
    const faults = server.runtime.kms.localKms!.faults;
    faults.set({ throttle: { ratio: 1 } });
    try {
      expect((await read(conversationId)).status).toBe(503);
    } finally {
      faults.reset();
    }
    const degraded = await health();
    expect(degraded.status).toBe('degraded');
    expect(degraded.lastError).toMatchObject({ awsError: 'ThrottlingException' });
    expect((await configuration()).lastError).toEqual(degraded.lastError);

    expect((await read(conversationId)).status).toBe(200);
    expect((await health()).status).toBe('ok');
    expect((await transitions()).slice(0, 2)).toEqual([
      ['degraded', 'ok', 'traffic'],
      ['ok', 'degraded', 'traffic'],
    ]);
  });
});
