import { randomUUID } from 'node:crypto';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { createAuditDal } from '../src/services/audit/audit-dal.js';
import { SEALER_LEASE } from '../src/services/audit/audit-sealer.js';
import { databaseTargets } from './support/databases.js';
import { freePort } from './support/process.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/** /metrics: scraped after real traffic and parsed with a Prometheus text-format parser. */

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

function family(families: PromFamily[], name: string): PromFamily {
  const f = families.find((x) => x.name === name);
  if (!f) throw new Error(`metric ${name} missing; have ${families.map((x) => x.name).join(', ')}`);
  return f;
}

const sumWhere = (f: PromFamily, labels: Record<string, string>) =>
  f.metrics
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0);

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`/metrics on ${target.name}`, () => {
    let server: TestServer;
    let org: { orgId: string; token: string; key: CustomerKey };
    let loopbackPort: number;

    beforeAll(async () => {
      loopbackPort = await freePort();
      server = await startTestServer(target.name, { CONVAULT_METRICS_TOKEN: METRICS_TOKEN, CONVAULT_METRICS_PORT: String(loopbackPort) });
      org = await orgWithCustomerKey(server, 'Metrics org', createOrgWithToken);
    });
    afterAll(async () => server?.close());

    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      return { text, families: parsePrometheusTextFormat(text) };
    };

    it('counts requests, KMS calls, caches, operations, audit and health with bounded labels', async () => {
      const conversations = [randomUUID(), randomUUID()];
      for (const conv of conversations) {
        const path = `/api/v2/conversations/${conv}/secureddata`;
        expect((await server.call('PUT', path, { token: org.token, body: { data: { card: '4111' } } })).status).toBe(200);
        expect((await server.call('GET', path, { token: org.token })).status).toBe(200);
        expect((await server.call('GET', path, { token: org.token })).status).toBe(200);
      }
      // An error with an errorType: a value over the size limit.
      expect((await server.call('PUT', `/api/v2/conversations/${conversations[0]}/secureddata`, { token: org.token, body: { data: { big: 'x'.repeat(40_000) } } })).status).toBe(413);
      expect((await server.call('GET', '/api/v2/organizations/me', { token: null })).status).toBe(401);
      expect((await server.call('GET', `/no/such/route/${randomUUID()}`)).status).toBe(404);

      const { text, families } = await scrape();
      const http = family(families, 'convault_http_requests_total');
      expect(http.type).toBe('COUNTER');
      const latency = family(families, 'convault_http_request_duration_seconds');
      expect(latency.type).toBe('HISTOGRAM');
      expect(Object.keys(latency.metrics[0]!.buckets ?? {})).toContain('+Inf');
      expect(sumWhere(http, { route: '/api/v2/conversations/:conversationId/secureddata', method: 'PUT', status: '200' })).toBe(2);
      expect(sumWhere(http, { route: '/api/v2/conversations/:conversationId/secureddata', method: 'GET', status: '200' })).toBe(4);
      expect(sumWhere(http, { route: '/api/v2/organizations/me', status: '401' })).toBe(1);
      expect(sumWhere(http, { route: 'unmatched', status: '404' })).toBe(1);

      const kms = family(families, 'convault_kms_calls_total');
      expect(sumWhere(kms, { provider: 'local', operation: 'GenerateDataKey', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
      expect(family(families, 'convault_kms_call_duration_seconds').type).toBe('HISTOGRAM');

      // The second GET of each conversation is served from the conversation key cache.
      expect(sumWhere(family(families, 'convault_cache_hits_total'), { cache: 'conversation_keys' })).toBeGreaterThanOrEqual(2);
      expect(sumWhere(family(families, 'convault_cache_hits_total'), { cache: 'configurations' })).toBeGreaterThanOrEqual(1);
      expect(sumWhere(family(families, 'convault_cache_misses_total'), { cache: 'configurations' })).toBeGreaterThanOrEqual(1);
      family(families, 'convault_cache_evictions_total');

      const ops = family(families, 'convault_operations_total');
      expect(sumWhere(ops, { operation: 'securedData.set', outcome: 'success' })).toBe(2);
      expect(sumWhere(ops, { operation: 'securedData.get', outcome: 'success' })).toBe(4);
      expect(sumWhere(ops, { operation: 'securedData.set', outcome: 'MaximumDataSizeExceeded' })).toBe(1);
      expect(ops.metrics.every((m) => m.labels?.org === undefined)).toBe(true);

      expect(Number(family(families, 'convault_audit_events_appended_total').metrics[0]!.value)).toBeGreaterThan(0);
      expect(family(families, 'convault_rewrap_jobs').metrics.map((m) => m.labels?.state).sort()).toEqual(['queued', 'running']);
      expect(family(families, 'convault_rewrap_data_keys').metrics).toHaveLength(2);
      expect(family(families, 'convault_key_health_organizations').metrics).toHaveLength(4);
      expect(family(families, 'convault_webhook_deliveries_total').type).toBe('COUNTER');
      expect(Number(family(families, 'process_resident_memory_bytes').metrics[0]!.value)).toBeGreaterThan(0);
      family(families, 'nodejs_eventloop_lag_seconds');
      if (target.name === 'postgres') {
        const pool = family(families, 'convault_db_pool_connections');
        expect(pool.metrics.map((m) => m.labels?.state).sort()).toEqual(['idle', 'in_use', 'waiting']);
        expect(families.find((f) => f.name === 'convault_sqlite_wal_checkpoints')?.metrics ?? []).toEqual([]);
      } else {
        // The background checkpointer's work: it runs every 100 ms, so by now it has run.
        const checkpoints = family(families, 'convault_sqlite_wal_checkpoints');
        expect(checkpoints.metrics.map((m) => m.labels?.kind).sort()).toEqual(['frames', 'restarts', 'runs']);
        expect(sumWhere(checkpoints, { kind: 'runs' })).toBeGreaterThan(0);
        expect(sumWhere(checkpoints, { kind: 'restarts' })).toBe(0);
      }

      // Bounded labels: no conversation id, token, organization id or key ARN anywhere.
      for (const secret of [...conversations, org.token, org.orgId, org.key.keyArn, org.key.aliasArn]) expect(text).not.toContain(secret);
    });

    it('reports the audit seal lag: it grows while no node seals and falls back once one does', async () => {
      const lag = async () => {
        const f = family((await scrape()).families, 'convault_audit_seal_lag_seconds');
        expect(f.type).toBe('GAUGE');
        return Number(f.metrics[0]!.value);
      };
      // Another node holds the sealer's lease (as one that hangs would, until its lease runs out).
      const leases = createAuditDal(server.runtime.database.db);
      await server.runtime.auditSealer.stop(); // lets a running pass finish and hands the lease back
      expect(await leases.claimLease(SEALER_LEASE, 'stalled-node', Date.now(), 60_000)).toBe(true);
      server.runtime.auditSealer.start();
      try {
        expect((await server.call('PUT', `/api/v2/conversations/${randomUUID()}/secureddata`, { token: org.token, body: { data: { a: '1' } } })).status).toBe(200);
        await new Promise((r) => setTimeout(r, 1500));
        expect(await lag()).toBeGreaterThanOrEqual(1.4);
      } finally {
        await leases.releaseLease(SEALER_LEASE, 'stalled-node');
      }
      // The node's own sealer takes the lease on its next pass (every 200 ms) and seals what waited.
      await expect.poll(lag, { timeout: 10_000, interval: 200 }).toBe(0);
    });

    it('answers 401 in the error shape without the metrics token, or with another token', async () => {
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789abcdef', `Bearer ${server.adminToken}`, METRICS_TOKEN]) {
        const res = await fetch(`${server.url}/metrics`, { headers: authorization ? { authorization } : {} });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ status: 401, code: 'authentication.required', message: expect.any(String), contextId: expect.any(String) });
      }
    });

    it('serves the same text without a token on the loopback metrics port, and nothing else there', async () => {
      const res = await fetch(`http://127.0.0.1:${loopbackPort}/metrics`);
      expect(res.status).toBe(200);
      const families = parsePrometheusTextFormat(await res.text());
      expect(family(families, 'convault_http_requests_total').metrics.length).toBeGreaterThan(0);
      expect((await fetch(`http://127.0.0.1:${loopbackPort}/api/v2/organizations/me`)).status).toBe(404);
    });
  });
}

describe('/metrics without CONVAULT_METRICS_TOKEN', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { CONVAULT_METRICS_ORG_LABEL: 'true' });
  });
  afterAll(async () => server?.close());

  it('does not exist on the API port (404 in the error shape), even with a bearer token', async () => {
    for (const headers of [{}, { authorization: `Bearer ${server.adminToken}` }] as Array<Record<string, string>>) {
      const res = await fetch(`${server.url}/metrics`, { headers });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ status: 404, code: 'not.found', contextId: expect.any(String) });
    }
  });

  it('labels operations with the organization only when CONVAULT_METRICS_ORG_LABEL asks for it', async () => {
    const me = (await server.call('GET', '/api/v2/organizations/me')).body.id as string;
    expect((await server.call('PUT', '/api/v2/conversations/c1/secureddata', { body: { data: { a: '1' } } })).status).toBe(200);
    const text = await server.runtime.metrics.render();
    const ops = family(parsePrometheusTextFormat(text), 'convault_operations_total');
    expect(ops.metrics).toContainEqual({ labels: { operation: 'securedData.set', outcome: 'success', org: me }, value: '1' });
  });
});
