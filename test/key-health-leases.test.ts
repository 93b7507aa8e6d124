import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import type { KmsGateway } from '../src/kms/kms-gateway.js';
import { createKeyLayer } from '../src/server/key-layer.js';
import { createAuditService } from '../src/services/audit/audit-service.js';
import { createKeyHealthDal } from '../src/services/key-health/key-health-dal.js';
import { createKeyHealthService, type KeyHealthService } from '../src/services/key-health/key-health-service.js';
import { createKeyConfigDal } from '../src/services/keyconfig/keyconfig-dal.js';
import { createRateLimiter } from '../src/services/rate-limiter.js';
import { openDatabase, type DatabaseHandle } from '../src/store/database.js';
import type { Database } from '../src/store/schema.js';
import { CONTEXT_KEY, configureOrgKey, createCustomerKey } from './support/customer-keys.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Two nodes on one database: two key health services, each on its own database handle (its own
 * connection pool), driven scheduler pass by scheduler pass with one shared clock. Whatever the
 * interleaving, each organization is probed exactly once per period, and a status change is
 * audited once.
 */

const INTERVAL_MS = 60_000;
const ORGS = 5;

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`key health leases: two nodes on one ${target.name} database`, () => {
    let server: TestServer;
    let second: DatabaseHandle<Database>;
    let now = 0;
    const orgIds: string[] = [];
    const tokensByOrg = new Map<string, string>();
    const nodes: Array<{ service: KeyHealthService; probes: Map<string, number> }> = [];

    /** A node: its own handle, and a key layer whose gateway counts the probes (GenerateDataKey calls) per org. */
    function node(db: Kysely<Database>, nodeId: string) {
      const probes = new Map<string, number>();
      const gw = server.runtime.kms.gateway;
      const keyConfigDal = createKeyConfigDal(db);
      const counting: KmsGateway = {
        ...gw,
        generateDataKey: (keyId, context) => {
          const orgId = context[CONTEXT_KEY]!;
          probes.set(orgId, (probes.get(orgId) ?? 0) + 1);
          return gw.generateDataKey(keyId, context);
        },
      };
      const keyLayer = createKeyLayer({
        db,
        gateway: counting,
        platformKeyArn: server.runtime.kms.platformKeyArn,
        settings: { platformAccountId: '444455556666', encryptionContextKey: CONTEXT_KEY, allowedRegions: ['us-east-1'], defaultRegion: 'us-east-1', refreshMs: 2000, xksUrlPolicy: { allowHttpLoopback: false, allowPrivateNetworks: false } },
      });
      const service = createKeyHealthService({
        dal: createKeyHealthDal(db),
        keyConfigDal,
        keyConfigs: { recordLastError: (orgId, error) => keyConfigDal.setLastError(orgId, error ? JSON.stringify(error) : null) },
        keys: keyLayer.keys,
        audit: createAuditService({ db }),
        probeLimiter: createRateLimiter({ limit: 10, windowMs: 60_000 }),
        settings: {
          intervalMs: INTERVAL_MS,
          platformKeyArn: server.runtime.kms.platformKeyArn,
          nodeId,
          concurrency: 2,
        },
        clock: () => now,
        random: () => 0.5, // first probe half an interval after the row is made; periods exactly the interval
      });
      return { service, probes };
    }

    const total = (orgId: string) => nodes.reduce((n, x) => n + (x.probes.get(orgId) ?? 0), 0);
    const totals = () => orgIds.map(total);
    /** Several passes of both nodes at once, interleaved however the databases schedule them. */
    const passes = () => Promise.all([0, 1, 2].flatMap(() => nodes.map((n) => n.service.probeDue())));

    beforeAll(async () => {
      server = await startTestServer(target.name, { CONVAULT_KEY_PROBE_INTERVAL_S: '31536000' });
      await server.runtime.services.keyHealth.stop(); // the runtime's own node stays out of this
      for (let i = 0; i < ORGS; i++) {
        const org = await createOrgWithToken(server, `Leased ${i}`, ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit', 'audit:log:view']);
        orgIds.push(org.orgId);
        tokensByOrg.set(org.orgId, org.token);
      }
      const key = await createCustomerKey(server, { orgIds });
      second = await openDatabase<Database>(server.databaseUrl ? { url: server.databaseUrl, dataDir: server.dataDir } : { dataDir: server.dataDir });
      nodes.push(node(server.runtime.database.db, 'node-a'), node(second.db, 'node-b'));
      // Every org configured through the API (its Test runs, so the key works for each).
      for (const orgId of orgIds) await configureOrgKey(server, tokensByOrg.get(orgId)!, key.aliasArn);
      now = Date.now();
      // Each Save set its org's health ok (the one unknown → ok event) and scheduled the next probe
      // one period on, by the runtime's clock and interval: put it on this suite's, half an interval on.
      await server.runtime.database.db.updateTable('key_health').set({ next_probe_at: now + INTERVAL_MS / 2 }).execute();
    });
    afterAll(async () => {
      for (const n of nodes) await n.service.stop();
      await second?.close();
      await server?.close();
    });

    it('each organization is probed once per period, whichever node gets there first', async () => {
      await passes(); // first probes are due half an interval later
      expect(totals()).toEqual([0, 0, 0, 0, 0]);

      now += INTERVAL_MS;
      await passes();
      expect(totals()).toEqual([1, 1, 1, 1, 1]);
      await passes(); // same period: nothing more
      expect(totals()).toEqual([1, 1, 1, 1, 1]);

      now += INTERVAL_MS / 2;
      await passes(); // half a period later: still nothing
      expect(totals()).toEqual([1, 1, 1, 1, 1]);

      now += INTERVAL_MS / 2;
      await passes();
      expect(totals()).toEqual([2, 2, 2, 2, 2]);

      // Every org went unknown → ok exactly once, whichever node probed it.
      for (const orgId of orgIds) {
        const events = (await server.call('GET', '/api/v2/audits?action=keyhealth.transition', { token: tokensByOrg.get(orgId)! })).body.entities;
        expect(events.map((e: any) => [e.details.from, e.details.to])).toEqual([['unknown', 'ok']]);
      }
    });

    it('a period claimed by a node that then died is not probed again until its lease runs out', async () => {
      const orgId = orgIds[0]!;
      const dal = createKeyHealthDal(second.db);
      now += INTERVAL_MS;
      const row = (await dal.find(orgId))!;
      // The "dead" node claims the due period (lease: ten intervals) and never probes or releases it.
      const claim = { expectedNextProbeAt: Number(row.next_probe_at), nextProbeAt: now + INTERVAL_MS, owner: 'node-dead', leaseUntil: now + 10 * INTERVAL_MS, now };
      expect(await dal.claim(orgId, claim)).toBe(true);
      const before = totals();
      await passes();
      expect(totals()).toEqual(before.map((n, i) => (i === 0 ? n : n + 1))); // the others went on

      now += INTERVAL_MS; // its next period is due, but the dead node's lease is still live
      await passes();
      expect(total(orgId)).toBe(before[0]);

      now += 9 * INTERVAL_MS; // the lease ran out: probed again, once
      await passes();
      expect(total(orgId)).toBe(before[0]! + 1);
    });

    it('a node acting on a stale read of the schedule cannot claim a period another node has probed', async () => {
      const dalB = createKeyHealthDal(second.db);
      now += 2 * INTERVAL_MS;
      const stale = await dalB.findDue(now, 100);
      expect(stale.map((d) => d.org_id).sort()).toEqual([...orgIds].sort());
      const before = totals();
      await nodes[0]!.service.probeDue(); // node A probes (and releases) every due org
      expect(totals()).toEqual(before.map((n) => n + 1));
      for (const d of stale) {
        expect(await dalB.claim(d.org_id, { expectedNextProbeAt: d.next_probe_at, nextProbeAt: now + INTERVAL_MS, owner: 'node-b', leaseUntil: now + 1000, now })).toBe(false);
      }
    });

    it('two nodes probing the same org at the same moment write one transition', async () => {
      const late = await createOrgWithToken(server, 'Simultaneous', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit', 'audit:log:view']);
      const key = await createCustomerKey(server, { orgIds: [late.orgId] });
      await configureOrgKey(server, late.token, key.aliasArn);
      const results = await Promise.all([...nodes, ...nodes].map((n) => n.service.probeNow(late.orgId)));
      expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
      const events = (await server.call('GET', '/api/v2/audits?action=keyhealth.transition', { token: late.token })).body.entities;
      expect(events).toHaveLength(1);
      expect(events[0].details).toMatchObject({ from: 'unknown', to: 'ok' });
    });
  });
}
