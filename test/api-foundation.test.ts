import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

function expectErrorBody(body: any, status: number) {
  expect(body).toMatchObject({ status, code: expect.any(String), message: expect.any(String), contextId: expect.any(String) });
  expect(Object.keys(body).every((k) => ['message', 'code', 'status', 'errorType', 'contextId', 'details'].includes(k))).toBe(true);
}

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`HTTP API foundation on ${target.name}`, () => {
    let server: TestServer;
    let other: { orgId: string; token: string };
    beforeAll(async () => {
      server = await startTestServer(target.name, { CONVAULT_BODY_LIMIT_BYTES: '2048' });
      other = await createOrgWithToken(server, 'Other org', ['conversation:encryptionKey:view']);
    });
    afterAll(async () => server?.close());

    it('serves health and readiness', async () => {
      expect((await server.call('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
      expect((await server.call('GET', '/readyz', { token: null })).body).toEqual({ status: 'ready' });
    });

    it("answers the caller's organization", async () => {
      const me = await server.call('GET', '/api/v2/organizations/me');
      expect(me.status).toBe(200);
      expect(me.body).toEqual({ id: expect.any(String), name: 'Default organization' });
      const theirs = await server.call('GET', '/api/v2/organizations/me', { token: other.token });
      expect(theirs.body).toEqual({ id: other.orgId, name: 'Other org' });
    });

    it("lists the caller's own permissions", async () => {
      const mine = await server.call('GET', '/api/v2/organizations/me/permissions', { token: other.token });
      expect(mine.body).toEqual({ permissions: ['conversation:encryptionKey:view'] });
      expect((await server.call('GET', '/api/v2/organizations/me/permissions')).body.permissions).toHaveLength(8);
      expect((await server.call('GET', '/api/v2/organizations/me/permissions', { token: null })).status).toBe(401);
    });

    it('401s without a token, with a malformed header and with an unknown token', async () => {
      for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer cvt_nope' }] as Record<string, string>[]) {
        const res = await server.call('GET', '/api/v2/organizations/me', { token: null, headers });
        expect(res.status).toBe(401);
        expectErrorBody(res.body, 401);
      }
    });

    it('403s with a valid token that lacks the permission, naming it', async () => {
      const res = await server.call('POST', '/api/v2/admin/organizations', { token: other.token, body: { name: 'x' } });
      expect(res.status).toBe(403);
      expectErrorBody(res.body, 403);
      expect(res.body.details.missingPermissions).toEqual(['admin:organization:manage']);
    });

    it("answers 404 for another organization's id, the same as for an unknown id", async () => {
      const mine = (await server.call('GET', '/api/v2/organizations/me')).body.id;
      const cross = await server.call('GET', `/api/v2/organizations/${mine}`, { token: other.token });
      const unknown = await server.call('GET', '/api/v2/organizations/00000000-0000-0000-0000-000000000000', { token: other.token });
      expect(cross.status).toBe(404);
      expect(unknown.status).toBe(404);
      expect(cross.body.message).toBe(unknown.body.message);
      expect(JSON.stringify(cross.body)).not.toContain(mine);
      expect((await server.call('GET', `/api/v2/organizations/${other.orgId}`, { token: other.token })).status).toBe(200);
    });

    it('answers every error in one body shape: unknown route, malformed JSON, validation, too large', async () => {
      const unknownRoute = await server.call('GET', '/no/such/route', { token: null });
      expect(unknownRoute.status).toBe(404);
      expectErrorBody(unknownRoute.body, 404);

      const malformed = await server.call('POST', '/api/v2/admin/organizations', { rawBody: '{"name": "a",}' });
      expect(malformed.status).toBe(400);
      expectErrorBody(malformed.body, 400);
      expect(malformed.body.message).toMatch(/^Malformed JSON body: .*JSON/);

      const empty = await server.call('POST', '/api/v2/admin/organizations', { rawBody: '' , headers: { 'content-type': 'application/json' } });
      expect(empty.status).toBe(400);
      expect(empty.body.message).toMatch(/Malformed JSON body/);

      const proto = await server.call('POST', '/api/v2/admin/organizations', { rawBody: '{"name":"a","__proto__":{"x":1}}' });
      expect(proto.status).toBe(400);

      const invalid = await server.call('POST', '/api/v2/admin/organizations', { body: { name: 42 } });
      expect(invalid.status).toBe(400);
      expectErrorBody(invalid.body, 400);
      expect(invalid.body.details.field).toBe('body.name');

      const missing = await server.call('POST', '/api/v2/admin/organizations', { body: {} });
      expect(missing.body.details.field).toBe('body.name');

      const big = await server.call('POST', '/api/v2/admin/organizations', { body: { name: 'x'.repeat(4000) } });
      expect(big.status).toBe(413);
      expectErrorBody(big.body, 413);
      expect(big.body.errorType).toBe('MaximumDataSizeExceeded');
    });

    it('carries the contextId as x-request-id', async () => {
      const res = await server.call('GET', '/api/v2/organizations/me', { token: null });
      expect(res.headers.get('x-request-id')).toBe(res.body.contextId);
    });

    it('creates tokens whose permissions are checked, and refuses unknown permissions', async () => {
      const bad = await server.call('POST', `/api/v2/admin/organizations/${other.orgId}/tokens`, { body: { permissions: ['root:everything'] } });
      expect(bad.status).toBe(400);
      const missingOrg = await server.call('POST', '/api/v2/admin/organizations/00000000-0000-0000-0000-000000000000/tokens', {
        body: { permissions: ['audit:log:view'] },
      });
      expect(missingOrg.status).toBe(404);
    });

    it('records token creation in the organization\'s audit trail without the token', async () => {
      const org = await createOrgWithToken(server, 'Audited org', ['audit:log:view']);
      const events = await server.call('GET', '/api/v2/audits?action=auth.token.create', { token: org.token });
      expect(events.status).toBe(200);
      expect(events.body.entities).toHaveLength(1);
      const [event] = events.body.entities;
      expect(event.principal).not.toMatch(/^system/);
      expect(event.details.permissions).toEqual(['audit:log:view']);
      expect(org.token.startsWith(event.details.prefix)).toBe(true);
      expect(JSON.stringify(event)).not.toContain(org.token);
      const bootstrapEvents = await server.call('GET', '/api/v2/audits?action=auth.token.create');
      expect(bootstrapEvents.body.entities[0].principal).toBe('system:bootstrap');
    });

    it('publishes an OpenAPI document and a docs UI', async () => {
      const doc = await server.call('GET', '/openapi.json', { token: null });
      expect(doc.status).toBe(200);
      expect(doc.body.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.body.paths)).toContain('/api/v2/organizations/me');
      const ui = await fetch(`${server.url}/docs/`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toMatch(/swagger/i);
    });
  });
}

describe('bootstrap', () => {
  it('creates the organization and admin token once, honouring CONVAULT_BOOTSTRAP_TOKEN', async () => {
    const dataDir = tempDir();
    const token = 'my-chosen-bootstrap-token-0123456789';
    const first = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir, CONVAULT_BOOTSTRAP_TOKEN: token });
    try {
      expect(first.runtime.bootstrap.created).toBe(true);
      expect(first.adminToken).toBe(token);
      expect(fs.statSync(`${dataDir}/admin-token`).mode & 0o777).toBe(0o600);
      expect((await first.call('GET', '/api/v2/organizations/me')).status).toBe(200);
    } finally {
      await first.close();
    }
    const second = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir, CONVAULT_BOOTSTRAP_TOKEN: 'another-token-that-must-be-ignored' });
    try {
      expect(second.runtime.bootstrap.created).toBe(false);
      const orgs = await second.call('GET', '/api/v2/admin/organizations', { token });
      expect(orgs.body.total).toBe(1);
      expect((await second.call('GET', '/api/v2/organizations/me', { token: 'another-token-that-must-be-ignored' })).status).toBe(401);
    } finally {
      await second.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
