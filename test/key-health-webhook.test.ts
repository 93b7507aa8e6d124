import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditService } from '../src/services/audit/audit-service.js';
import { createKeyHealthDal } from '../src/services/key-health/key-health-dal.js';
import { createKeyHealthService } from '../src/services/key-health/key-health-service.js';
import { createKeyHealthWebhooks } from '../src/services/key-health/key-health-webhooks.js';
import type { HealthLog } from '../src/services/key-health/types.js';
import { createRateLimiter } from '../src/services/rate-limiter.js';
import { createKeyConfigDal } from '../src/services/keyconfig/keyconfig-dal.js';
import { CONTEXT_KEY, orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Webhook retries end to end: a receiver on 127.0.0.1 that fails twice and then accepts gets the
 * transition on the third attempt; one that never accepts gets a bounded number of attempts, after
 * which the failure is logged and audited (and nothing is thrown into the probe). Backoff is a few
 * milliseconds here (a key health service of the test's own, on the server's database); the
 * runtime's wiring of CONVAULT_WEBHOOK_URL/SECRET is covered by key-health.test.ts.
 */

const SECRET = 'key-health-retry-webhook-secret';

function validSignature(rawBody: string, headers: http.IncomingHttpHeaders): boolean {
  const timestamp = String(headers['x-convault-timestamp'] ?? '');
  const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${rawBody}`).digest('hex'));
  const given = Buffer.from(String(headers['x-convault-signature'] ?? ''));
  return /^\d+$/.test(timestamp) && given.length === expected.length && timingSafeEqual(given, expected);
}

/** Answers the n-th request with statuses[n] (the last one repeats). */
async function startReceiver(statuses: number[]) {
  const requests: Array<{ headers: http.IncomingHttpHeaders; raw: string; valid: boolean }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      requests.push({ headers: req.headers, raw, valid: validSignature(raw, req.headers) });
      res.writeHead(statuses[Math.min(requests.length - 1, statuses.length - 1)]!).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?key=query-secret`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('webhook configuration', () => {
  it('refuses to start with CONVAULT_WEBHOOK_URL but no CONVAULT_WEBHOOK_SECRET, in one line', async () => {
    const dataDir = tempDir();
    try {
      await expect(startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir, CONVAULT_WEBHOOK_URL: 'http://127.0.0.1:9/hook' })).rejects.toThrow(
        /^CONVAULT_WEBHOOK_URL is set but CONVAULT_WEBHOOK_SECRET is not: [^\n]+$/,
      );
      expect(fs.existsSync(`${dataDir}/convault.db`)).toBe(false); // refused before anything started
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`webhook retries on ${target.name}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(target.name, { CONVAULT_KEY_PROBE_INTERVAL_S: '31536000' });
    });
    afterAll(async () => server?.close());

    function serviceWithWebhook(url: string, attempts: number) {
      const db = server.runtime.database.db;
      const keyConfigDal = createKeyConfigDal(db);
      const logged: Array<{ level: string; obj: any; msg: string }> = [];
      const log: HealthLog = {
        info: (obj, msg) => void logged.push({ level: 'info', obj, msg }),
        warn: (obj, msg) => void logged.push({ level: 'warn', obj, msg }),
        error: (obj, msg) => void logged.push({ level: 'error', obj, msg }),
      };
      const audit = createAuditService({ db });
      const webhooks = createKeyHealthWebhooks(db, {
        url,
        secret: SECRET,
        retry: { attempts, baseDelayMs: 5, maxDelayMs: 40, timeoutMs: 5000 },
        pollMs: 20,
        nodeId: `test-${Math.random()}`,
        audit,
        log,
      });
      const service = createKeyHealthService({
        dal: createKeyHealthDal(db),
        keyConfigDal,
        keyConfigs: server.runtime.services.keyConfigs,
        keys: server.runtime.keyLayer.keys,
        audit,
        probeLimiter: createRateLimiter({ limit: 10, windowMs: 60_000 }),
        webhooks,
        settings: {
          intervalMs: 31_536_000_000,
          platformKeyArn: server.runtime.kms.platformKeyArn,
        },
        log,
      });
      return { service, logged };
    }

    /** An org with a configured key and no health yet: the Save's ok went through the runtime's node, not this service's. */
    async function unprobedOrg(name: string) {
      const org = await orgWithCustomerKey(server, name, createOrgWithToken);
      await server.runtime.database.db.deleteFrom('key_health').where('org_id', '=', org.orgId).execute();
      return org;
    }

    const webhookAudits = async (token: string) => (await server.call('GET', '/api/v2/audits?action=keyhealth.webhook', { token })).body.entities;

    it('a receiver that fails twice is retried, then gets the signed transition', async () => {
      const receiver = await startReceiver([500, 503, 204]);
      const { service, logged } = serviceWithWebhook(receiver.url, 4);
      try {
        const org = await unprobedOrg('Retried');
        expect((await service.probeNow(org.orgId)).status).toBe('ok'); // returns before the webhook is delivered
        await service.webhooksIdle();
        expect(receiver.requests).toHaveLength(3);
        expect(receiver.requests.every((r) => r.valid)).toBe(true);
        expect(new Set(receiver.requests.map((r) => r.headers['x-convault-delivery'])).size).toBe(1);
        expect(JSON.parse(receiver.requests[2]!.raw)).toMatchObject({ event: 'keyhealth.transition', orgId: org.orgId, from: 'unknown', to: 'ok' });
        expect(logged.filter((l) => l.level === 'warn').map((l) => l.obj.reason)).toEqual(['HTTP 500', 'HTTP 503']);
        expect(logged.some((l) => l.level === 'error')).toBe(false);
        expect(await webhookAudits(org.token)).toEqual([]);
      } finally {
        await service.stop();
        await receiver.close();
      }
    });

    it('a receiver that never accepts: bounded attempts, then logged and audited, never thrown', async () => {
      const receiver = await startReceiver([500]);
      const { service, logged } = serviceWithWebhook(receiver.url, 3);
      try {
        const org = await unprobedOrg('Unreachable receiver');
        expect((await service.probeNow(org.orgId)).status).toBe('ok');
        await service.webhooksIdle();
        expect(receiver.requests).toHaveLength(3);
        const errors = logged.filter((l) => l.level === 'error');
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatchObject({ msg: 'key health webhook not delivered', obj: { attempts: 3, reason: 'HTTP 500', orgId: org.orgId } });
        expect(JSON.stringify(logged)).not.toContain('query-secret');
        const audits = await webhookAudits(org.token);
        expect(audits).toHaveLength(1);
        expect(audits[0]).toMatchObject({
          principal: 'system:key-health',
          outcome: 'failure',
          details: { attempts: 3, reason: 'HTTP 500', from: 'unknown', to: 'ok', webhook: receiver.url.split('?')[0] },
        });
        expect(JSON.stringify(audits[0])).not.toContain('query-secret');
      } finally {
        await service.stop();
        await receiver.close();
      }
    });
  });
}

/** Waits until `check` returns a truthy value (polling), or fails after `ms`. */
async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`failed webhook deliveries on ${target.name}: visible and retryable`, () => {
    let server: TestServer;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    beforeAll(async () => {
      receiver = await startReceiver([500, 204]);
      server = await startTestServer(target.name, {
        CONVAULT_KEY_PROBE_INTERVAL_S: '31536000',
        CONVAULT_WEBHOOK_URL: receiver.url,
        CONVAULT_WEBHOOK_SECRET: SECRET,
        CONVAULT_WEBHOOK_MAX_ATTEMPTS: '1',
      });
    });
    afterAll(async () => {
      await server?.close();
      await receiver?.close();
    });

    it('a delivery given up is listed as failed, counted in /metrics, audited; retry sends it again with the same id', async () => {
      const org = await orgWithCustomerKey(server, 'Failing receiver', createOrgWithToken);
      const other = await orgWithCustomerKey(server, 'Other org', createOrgWithToken);
      const base = `/api/v2/conversations/keyconfigurations/${org.configId}/health`;
      expect((await server.call('POST', `${base}/probe`, { token: org.token })).status).toBe(200);

      const failed = await eventually(async () => {
        const res = await server.call('GET', `${base}/webhooks?state=failed`, { token: org.token });
        expect(res.status).toBe(200);
        return res.body.entities.length === 1 && res.body.entities[0];
      });
      expect(failed).toMatchObject({ event: 'keyhealth.transition', state: 'failed', attempts: 1, lastError: 'HTTP 500', payload: { orgId: org.orgId, from: 'unknown', to: 'ok' } });
      expect(await server.runtime.metrics.render()).toMatch(/^convault_webhook_outbox\{state="failed"\} 1$/m);
      expect(await server.runtime.metrics.render()).toMatch(/^convault_webhook_deliveries_total\{outcome="failed"\} 1$/m);
      const audits = (await server.call('GET', '/api/v2/audits?action=keyhealth.webhook', { token: org.token })).body.entities;
      expect(audits).toHaveLength(1);
      expect(audits[0]).toMatchObject({ outcome: 'failure', details: { deliveryId: failed.id, attempts: 1, reason: 'HTTP 500' } });

      // Another organization sees neither the delivery nor the configuration.
      expect((await server.call('POST', `${base}/webhooks/${failed.id}/retry`, { token: other.token })).status).toBe(404);
      expect((await server.call('GET', `${base}/webhooks`, { token: other.token })).status).toBe(404);
      expect((await server.call('GET', `${base}/webhooks?state=bogus`, { token: org.token })).status).toBe(400);

      const retried = await server.call('POST', `${base}/webhooks/${failed.id}/retry`, { token: org.token });
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({ id: failed.id, state: 'pending', attempts: 0 });
      const delivered = await eventually(async () => {
        const res = await server.call('GET', `${base}/webhooks`, { token: org.token });
        return res.body.entities[0]?.state === 'delivered' && res.body.entities[0];
      });
      expect(delivered).toMatchObject({ id: failed.id, attempts: 1, deliveredAt: expect.any(String) });
      // The receiver also hears the other organization's own transition (its Save sets health ok); this
      // delivery reached it exactly twice, with one id: the attempt given up and the retry.
      expect(receiver.requests.filter((r) => r.headers['x-convault-delivery'] === failed.id)).toHaveLength(2);
      expect(receiver.requests.every((r) => r.valid)).toBe(true);
      // Only a failed delivery can be retried.
      const again = await server.call('POST', `${base}/webhooks/${failed.id}/retry`, { token: org.token });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ status: 409, code: 'conflict', contextId: expect.any(String) });
      expect(await server.runtime.metrics.render()).toMatch(/^convault_webhook_outbox\{state="failed"\} 0$/m);
    });
  });
}
