import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenDal } from '../src/services/auth/token-dal.js';
import { hashToken, tokenDisplayPrefix } from '../src/services/auth/token-format.js';
import { createOrgDal } from '../src/services/orgs/org-dal.js';
import { tempDir } from './support/databases.js';
import { runCli } from './support/process.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Tenants cannot reach each other through admin powers, and tokens have a lifecycle: list (no
 * secrets), revoke, expire, rotate — over the API and the CLI, checked on every node.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until `check` holds or 6 s pass (a token cache in front of verification may delay revocation ≤ 5 s). */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + 6_000;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(100);
  }
}

describe('platform operators are not tenants', () => {
  let server: TestServer;
  let tenantA: { orgId: string; token: string };
  let tenantB: { orgId: string; token: string };
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    tenantA = await createOrgWithToken(server, 'Tenant A', ['conversation:securedData:view', 'conversation:securedData:edit']);
    tenantB = await createOrgWithToken(server, 'Tenant B', ['admin:token:manage', 'conversation:securedData:view']);
  });
  afterAll(async () => server?.close());

  it('refuses to give a tenant principal the platform permission (API, own-org API and CLI)', async () => {
    const minted = await server.call('POST', `/api/v2/admin/organizations/${tenantB.orgId}/tokens`, { body: { permissions: ['admin:organization:manage'] } });
    expect(minted.status).toBe(403);
    expect(minted.body).toMatchObject({ code: 'platform.permission', contextId: expect.any(String) });
    const own = await server.call('POST', '/api/v2/tokens', { token: tenantB.token, body: { permissions: ['admin:organization:manage'] } });
    expect(own.status).toBe(403);
    const cli = await runCli(['tokens', 'create', '--org', tenantB.orgId, '--permissions', 'admin:organization:manage'], { CONVAULT_DATA_DIR: server.dataDir });
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/platform permission/);
  });

  it("a tenant's token admin cannot mint tokens in another organization nor create organizations", async () => {
    const cross = await server.call('POST', `/api/v2/admin/organizations/${tenantA.orgId}/tokens`, { token: tenantB.token, body: { permissions: ['conversation:securedData:view'] } });
    expect(cross.status).toBe(403);
    expect((await server.call('POST', '/api/v2/admin/organizations', { token: tenantB.token, body: { name: 'Mine' } })).status).toBe(403);
    expect((await server.call('GET', `/api/v2/admin/organizations/${tenantA.orgId}/tokens`, { token: tenantB.token })).status).toBe(403);
    // Within its own org it may grant only what it holds itself.
    const escalate = await server.call('POST', '/api/v2/tokens', { token: tenantB.token, body: { permissions: ['conversation:securedData:edit'] } });
    expect(escalate.status).toBe(403);
  });

  it('ignores the platform permission on a tenant principal written by an earlier build', async () => {
    const db = server.runtime.database.db;
    const principalId = 'legacy-admin-of-b';
    await createOrgDal(db).insertPrincipal({ id: principalId, org_id: tenantB.orgId, name: 'legacy', kind: 'client', permissions: JSON.stringify(['admin:organization:manage', 'conversation:securedData:view']), created_at: Date.now() });
    const token = 'cvt_legacy-tenant-admin-token-0123456789';
    await createTokenDal(db).insertToken({ id: 'legacy-token', org_id: tenantB.orgId, principal_id: principalId, token_hash: hashToken(token), prefix: tokenDisplayPrefix(token), created_at: Date.now(), revoked_at: null, expires_at: null });
    const cross = await server.call('POST', `/api/v2/admin/organizations/${tenantA.orgId}/tokens`, { token, body: { permissions: ['conversation:securedData:view'] } });
    expect(cross.status).toBe(403);
    expect((await server.call('GET', `/api/v2/conversations/c-1/secureddata`, { token })).status).not.toBe(401);
    expect((await server.call('GET', '/api/v2/organizations/me/permissions', { token })).body.permissions).toEqual(['conversation:securedData:view']);
  });

  it("audits the platform's token minting in both the acting and the target organization", async () => {
    const minted = await server.call('POST', `/api/v2/admin/organizations/${tenantA.orgId}/tokens`, { body: { name: 'ops-minted', permissions: ['audit:log:view'] } });
    expect(minted.status).toBe(201);
    const inTarget = await server.call('GET', '/api/v2/audits?action=auth.token.create', { token: minted.body.token });
    expect(inTarget.body.entities.map((e: any) => e.target)).toContain(minted.body.id);
    const inActing = await server.call('GET', '/api/v2/audits?action=admin.auth.token.create');
    expect(inActing.body.entities).toContainEqual(expect.objectContaining({ target: minted.body.id, details: expect.objectContaining({ organizationId: tenantA.orgId }) }));
    expect(JSON.stringify(inActing.body)).not.toContain(minted.body.token);
  });
});

describe('token lifecycle', () => {
  const dataDir = tempDir('convault-tokens-');
  let nodeA: TestServer;
  let nodeB: TestServer;
  let org: { orgId: string; token: string };
  const me = (server: TestServer, token: string) => server.call('GET', '/api/v2/organizations/me', { token }).then((r) => r.status);

  beforeAll(async () => {
    // Two nodes on one database (the SQLite file of one data dir).
    nodeA = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
    nodeB = await startTestServer('sqlite', { CONVAULT_DATA_DIR: dataDir });
    org = await createOrgWithToken(nodeA, 'Lifecycle org', ['admin:token:manage', 'audit:log:view']);
  });
  afterAll(async () => {
    await nodeB?.close();
    await nodeA?.close();
  });

  it('creates with an id, lists without secrets', async () => {
    const created = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, body: { name: 'Zoë’s reporting bot ✓', permissions: ['audit:log:view'] } });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toMatchObject({ id: expect.any(String), token: expect.stringMatching(/^cvt_/), permissions: ['audit:log:view'] });
    const list = await nodeA.call('GET', '/api/v2/tokens', { token: org.token });
    expect(list.status).toBe(200);
    expect(list.body.entities).toContainEqual(expect.objectContaining({ id: created.body.id, name: 'Zoë’s reporting bot ✓', state: 'active', prefix: created.body.prefix }));
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    expect(list.body.entities.every((t: any) => t.token === undefined && t.orgId === org.orgId)).toBe(true);
  });

  it('revokes: refused at once on this node and within the cache bound on the other; audited', async () => {
    const created = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, body: { permissions: ['audit:log:view'] } });
    expect(await me(nodeB, created.body.token)).toBe(200);
    const revoked = await nodeA.call('DELETE', `/api/v2/tokens/${created.body.id}`, { token: org.token });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.body.id, state: 'revoked', revokedAt: expect.any(String) });
    expect(await eventually(async () => (await me(nodeA, created.body.token)) === 401)).toBe(true);
    expect(await eventually(async () => (await me(nodeB, created.body.token)) === 401)).toBe(true);
    const audit = await nodeA.call('GET', '/api/v2/audits?action=auth.token.revoke', { token: org.token });
    expect(audit.body.entities.map((e: any) => e.target)).toContain(created.body.id);
    // Another organization's token id is unknown here.
    const other = await createOrgWithToken(nodeA, 'Other org', ['admin:token:manage']);
    expect((await nodeA.call('DELETE', `/api/v2/tokens/${created.body.id}`, { token: other.token })).status).toBe(404);
  });

  it('expires at expiresAt on every node, and refuses loose or past instants', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const created = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, body: { permissions: ['audit:log:view'], expiresAt } });
    expect(created.status).toBe(201);
    expect(created.body.expiresAt).toBe(expiresAt);
    expect(await me(nodeB, created.body.token)).toBe(200);
    await sleep(1600);
    expect(await eventually(async () => (await me(nodeA, created.body.token)) === 401 && (await me(nodeB, created.body.token)) === 401)).toBe(true);
    const listed = (await nodeA.call('GET', '/api/v2/tokens', { token: org.token })).body.entities.find((t: any) => t.id === created.body.id);
    expect(listed.state).toBe('expired');
    for (const bad of ['2030-02-30T00:00:00Z', '2030-01-01T00:00:00', '0', '2001-01-01T00:00:00Z']) {
      const res = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, body: { permissions: ['audit:log:view'], expiresAt: bad } });
      expect(res.status, bad).toBe(400);
      expect(res.body.details.field).toBe('expiresAt');
    }
  });

  it('rotates: a new secret for the same principal, the old one revoked', async () => {
    const created = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, body: { name: 'rotating', permissions: ['audit:log:view'] } });
    const rotated = await nodeA.call('POST', `/api/v2/tokens/${created.body.id}/rotate`, { token: org.token });
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ principalId: created.body.principalId, permissions: ['audit:log:view'] });
    expect(rotated.body.id).not.toBe(created.body.id);
    expect(await me(nodeA, rotated.body.token)).toBe(200);
    expect(await eventually(async () => (await me(nodeB, created.body.token)) === 401)).toBe(true);
    expect((await nodeA.call('POST', `/api/v2/tokens/${created.body.id}/rotate`, { token: org.token })).status).toBe(409);
    const unknown = await nodeA.call('POST', '/api/v2/tokens/no-such-token/rotate', { token: org.token, body: { expiresAt: '2030-01-01T00:00:00Z' } });
    expect(unknown.status).toBe(404);
  });

  it('validates names: length, printable, well-formed Unicode', async () => {
    for (const [name, raw] of [
      ['', undefined],
      ['x'.repeat(201), undefined],
      ['bell\u0007', undefined],
      ['right-to-left \u202e override', undefined],
      [' padded', undefined],
      [undefined, '{"name":"lone \\ud800 surrogate","permissions":["audit:log:view"]}'],
    ] as const) {
      const res = await nodeA.call('POST', '/api/v2/tokens', { token: org.token, ...(raw ? { rawBody: raw } : { body: { name, permissions: ['audit:log:view'] } }) });
      expect(res.status, JSON.stringify(name ?? raw)).toBe(400);
      expect(res.body.details.field).toBe('name');
    }
  });

  it('CLI: create --json has the id; list --json has no secrets; rotate and revoke by id', async () => {
    const env = { CONVAULT_DATA_DIR: dataDir };
    const created = await runCli(['tokens', 'create', '--org', org.orgId, '--permissions', 'audit:log:view', '--name', 'cli-made', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout);
    expect(token).toMatchObject({ id: expect.any(String), token: expect.stringMatching(/^cvt_/) });
    const listed = await runCli(['tokens', 'list', '--org', org.orgId, '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ id: token.id, name: 'cli-made', state: 'active' }));
    expect(listed.stdout).not.toContain(token.token);
    const rotated = await runCli(['tokens', 'rotate', '--org', org.orgId, '--id', token.id, '--json'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const next = JSON.parse(rotated.stdout);
    expect(await eventually(async () => (await me(nodeA, token.token)) === 401)).toBe(true);
    expect(await me(nodeA, next.token)).toBe(200);
    const revoked = await runCli(['tokens', 'revoke', '--org', org.orgId, '--id', next.id], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await eventually(async () => (await me(nodeB, next.token)) === 401)).toBe(true);
    const badName = await runCli(['tokens', 'create', '--org', org.orgId, '--permissions', 'audit:log:view', '--name', 'tab\there'], env);
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toMatch(/name must hold printable characters/);
  });
});

describe('failed-authentication limiter', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { CONVAULT_AUTH_FAILURES_PER_MIN: '3' });
  });
  afterAll(async () => server?.close());

  it('answers 429 with Retry-After once an address has failed too often (encoded paths count too), even with a valid token', async () => {
    expect((await server.call('GET', '/api/v2/organizations/me', { token: 'cvt_wrong-1' })).status).toBe(401);
    expect((await server.call('GET', '/%61pi/v2/organizations/me', { token: 'cvt_wrong-2' })).status).toBe(401);
    expect((await server.call('GET', '/api/v2/organizations/me', { token: null })).status).toBe(401);
    const limited = await server.call('GET', '/api/v2/organizations/me', { token: 'cvt_wrong-4' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body).toMatchObject({ status: 429, errorType: 'RateLimited', contextId: expect.any(String) });
    expect((await server.call('GET', '/api/v2/organizations/me')).status).toBe(429);
    expect((await server.call('GET', '/healthz', { token: null })).status).toBe(200);
  });
});
