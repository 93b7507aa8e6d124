import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditService, type AuditService } from '../src/services/audit/audit-service.js';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

function expectErrorBody(body: any, status: number) {
  expect(body).toMatchObject({ status, code: expect.any(String), message: expect.any(String), contextId: expect.any(String) });
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`GET /api/v2/audits on ${target.name}`, () => {
    let server: TestServer;
    let audit: AuditService;
    let acme: { orgId: string; token: string };
    let other: { orgId: string; token: string };
    const T0 = Date.UTC(2026, 0, 31, 12, 0, 0);

    beforeAll(async () => {
      server = await startTestServer(target.name);
      acme = await createOrgWithToken(server, 'Acme', ['audit:log:view']);
      other = await createOrgWithToken(server, 'Other', ['audit:log:view']);
      // Events one minute apart from T0, recorded in-process on the server's own database.
      let now = T0 - 60_000;
      audit = createAuditService({ db: server.runtime.database.db, clock: () => (now += 60_000) });
      const actions = ['keyconfig.test', 'keyconfig.save', 'secureddata.read'];
      for (let i = 0; i < 9; i++) {
        await audit.record({ orgId: acme.orgId, principal: 'p-acme', action: actions[i % 3]!, target: `t-${i}`, outcome: i === 4 ? 'failure' : 'success', details: { i } });
      }
      await audit.record({ orgId: other.orgId, principal: 'p-other', action: 'keyconfig.save', outcome: 'success' });
      // The server's sealer would chain them within its interval; one pass now makes the seqs certain.
      await server.runtime.auditSealer.sealPending();
    });
    afterAll(async () => server?.close());

    it("lists the caller's organization's events newest first, with selfUri", async () => {
      const res = await server.call('GET', '/api/v2/audits', { token: acme.token });
      expect(res.status).toBe(200);
      expect(res.body.selfUri).toBe('/api/v2/audits');
      expect(res.body.nextCursor).toBeUndefined();
      expect(res.body.unsealed).toEqual({ count: 0, oldestAt: null, oldestAgeMs: null });
      // seq 1 is the creation of the test's token (auth.token.create); the recorded events follow.
      expect(res.body.entities.map((e: any) => e.seq)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      expect(res.body.entities[9].action).toBe('auth.token.create');
      expect(res.body.entities[4]).toEqual({
        id: expect.any(String),
        orgId: acme.orgId,
        seq: 6,
        at: new Date(T0 + 4 * 60_000).toISOString(),
        principal: 'p-acme',
        action: 'keyconfig.save',
        target: 't-4',
        outcome: 'failure',
        details: { i: 4 },
        prevHash: res.body.entities[5].hash,
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      const theirs = await server.call('GET', '/api/v2/audits', { token: other.token });
      expect(theirs.body.entities).toEqual([
        expect.objectContaining({ orgId: other.orgId, seq: 2, target: null, details: {} }),
        expect.objectContaining({ orgId: other.orgId, seq: 1, action: 'auth.token.create' }),
      ]);
    });

    it('pages with limit and cursor', async () => {
      const seqs: number[] = [];
      let path = '/api/v2/audits?limit=4';
      for (;;) {
        const res = await server.call('GET', path, { token: acme.token });
        expect(res.status).toBe(200);
        expect(res.body.selfUri).toBe(path);
        seqs.push(...res.body.entities.map((e: any) => e.seq));
        if (!res.body.nextCursor) break;
        path = `/api/v2/audits?limit=4&cursor=${encodeURIComponent(res.body.nextCursor)}`;
      }
      expect(seqs).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    });

    it("gives another organization nothing of Acme's through Acme's cursor", async () => {
      const page = await server.call('GET', '/api/v2/audits?limit=2', { token: acme.token });
      const cross = await server.call('GET', `/api/v2/audits?cursor=${page.body.nextCursor}`, { token: other.token });
      expect(cross.status).toBe(200);
      expect(cross.body.entities.every((e: any) => e.orgId === other.orgId)).toBe(true);
      expect(JSON.stringify(cross.body)).not.toContain(acme.orgId);
    });

    it('filters by from (inclusive), to (exclusive) and action', async () => {
      const from = new Date(T0 + 2 * 60_000).toISOString();
      const to = new Date(T0 + 5 * 60_000).toISOString();
      const window = await server.call('GET', `/api/v2/audits?from=${from}&to=${to}`, { token: acme.token });
      expect(window.body.entities.map((e: any) => e.seq)).toEqual([6, 5, 4]);
      const day = await server.call('GET', '/api/v2/audits?from=2026-01-31&to=2026-02-01', { token: acme.token });
      expect(day.body.entities).toHaveLength(9);
      const before = await server.call('GET', '/api/v2/audits?to=2026-01-31', { token: acme.token });
      expect(before.body.entities).toEqual([]);
      const saves = await server.call('GET', '/api/v2/audits?action=keyconfig.save', { token: acme.token });
      expect(saves.body.entities.map((e: any) => e.seq)).toEqual([9, 6, 3]);
      const keyconfig = await server.call('GET', '/api/v2/audits?action=keyconfig.*&limit=5', { token: acme.token });
      expect(keyconfig.body.entities.map((e: any) => e.action)).toEqual(['keyconfig.save', 'keyconfig.test', 'keyconfig.save', 'keyconfig.test', 'keyconfig.save']);
      expect(keyconfig.body.nextCursor).toEqual(expect.any(String));
    });

    it('shows events not sealed yet (seq and hashes null) and counts them, then sealed', async () => {
      const late = await createOrgWithToken(server, 'Late', ['audit:log:view']);
      await server.runtime.auditSealer.sealPending();
      await server.runtime.auditSealer.stop();
      try {
        await audit.record({ orgId: late.orgId, principal: 'p-late', action: 'keyconfig.save', target: 'kc', outcome: 'success' });
        const pending = await server.call('GET', '/api/v2/audits', { token: late.token });
        expect(pending.body.entities[0]).toMatchObject({ action: 'keyconfig.save', seq: null, prevHash: null, hash: null });
        expect(pending.body.entities[1]).toMatchObject({ action: 'auth.token.create', seq: 1, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
        expect(pending.body.unsealed).toEqual({ count: 1, oldestAt: pending.body.entities[0].at, oldestAgeMs: expect.any(Number) });
      } finally {
        server.runtime.auditSealer.start();
      }
      await server.runtime.auditSealer.sealPending();
      const sealed = await server.call('GET', '/api/v2/audits', { token: late.token });
      expect(sealed.body.entities[0]).toMatchObject({ action: 'keyconfig.save', seq: 2, prevHash: sealed.body.entities[1].hash });
      expect(sealed.body.unsealed.count).toBe(0);
    });

    it('401s without a valid token', async () => {
      const res = await server.call('GET', '/api/v2/audits', { token: null });
      expect(res.status).toBe(401);
      expectErrorBody(res.body, 401);
      expect((await server.call('GET', '/api/v2/audits', { token: 'cvt_unknown' })).status).toBe(401);
    });

    it('403s without audit:log:view, naming it', async () => {
      const token = await createToken(server, acme.orgId, ['conversation:encryptionKey:view']);
      const res = await server.call('GET', '/api/v2/audits', { token });
      expect(res.status).toBe(403);
      expectErrorBody(res.body, 403);
      expect(res.body.details.missingPermissions).toEqual(['audit:log:view']);
    });

    it('400s on a bad from, to, limit, cursor or action, naming the field', async () => {
      const cases: Array<[string, string]> = [
        ['from=yesterday', 'from'],
        ['from=2026-02-30', 'from'],
        ['to=2026-01-31T12:00:00', 'to'],
        ['from=2026-02-01&to=2026-01-01', 'to'],
        ['limit=0', 'limit'],
        ['limit=201', 'limit'],
        ['limit=many', 'limit'],
        ['cursor=%21%21', 'cursor'],
        ['action=Key%20Config', 'action'],
      ];
      for (const [query, field] of cases) {
        const res = await server.call('GET', `/api/v2/audits?${query}`, { token: acme.token });
        expect(res.status, query).toBe(400);
        expectErrorBody(res.body, 400);
        expect(res.body.details.field, query).toBe(field);
        expect(res.body.message, query).toContain(`Invalid ${field}`);
      }
    });

    it('is documented in the OpenAPI document', async () => {
      const doc = await server.call('GET', '/openapi.json', { token: null });
      const op = doc.body.paths['/api/v2/audits'].get;
      expect(op.parameters.map((p: any) => p.name).sort()).toEqual(['action', 'cursor', 'from', 'limit', 'to']);
    });
  });
}
