import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyConfigDal } from '../src/services/keyconfig/keyconfig-dal.js';
import { PLATFORM_ACCOUNT, REGION } from './support/customer-keys.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/** The platform's own keys are never an organization's key: refused at Test, Save, probe and use. */

const BASE = '/api/v2/conversations/keyconfigurations';
const PLATFORM_ALIAS = `arn:aws:kms:${REGION}:${PLATFORM_ACCOUNT}:alias/convault-platform-key`;

describe('platform keys are never customer keys', () => {
  let server: TestServer;
  let org: { orgId: string; token: string };
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    org = await createOrgWithToken(server, 'Sly org', [
      'conversation:encryptionKey:view',
      'conversation:encryptionKey:edit',
      'conversation:securedData:edit',
      'conversation:encryption:use',
    ]);
  });
  afterAll(async () => server?.close());

  it('refuses the platform key alias at Test, with a clear message and no KMS call', async () => {
    const calls = server.runtime.kms.metrics.count();
    const res = await server.call('POST', `${BASE}/validate`, { token: org.token, body: { keyConfigurationType: 'KmsSymmetric', url: PLATFORM_ALIAS } });
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    expect(res.body.steps).toEqual([expect.objectContaining({ step: 'ArnSyntax', ok: false })]);
    expect(res.body.lastError.message).toMatch(/platform's own AWS account/);
    expect(server.runtime.kms.metrics.count()).toBe(calls);
  });

  it('refuses it at Save (create and update)', async () => {
    const created = await server.call('POST', BASE, { token: org.token, body: { keyConfigurationType: 'KmsSymmetric', url: PLATFORM_ALIAS } });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ errorType: 'InvalidKeyConfiguration', details: { field: 'url' } });
    const none = await server.call('POST', BASE, { token: org.token, body: { keyConfigurationType: 'None' } });
    expect(none.status).toBe(201);
    const updated = await server.call('PUT', `${BASE}/${none.body.id}`, { token: org.token, body: { keyConfigurationType: 'KmsSymmetric', url: PLATFORM_ALIAS, version: none.body.version } });
    expect(updated.status).toBe(400);
  });

  it('refuses to use it when an earlier build saved it: no data under the platform key as "the org\'s key"', async () => {
    const dal = createKeyConfigDal(server.runtime.database.db);
    const now = Date.now();
    await server.runtime.database.db.updateTable('key_configurations').set({ type: 'KmsSymmetric', url: PLATFORM_ALIAS, version: 7, updated_at: now }).where('org_id', '=', org.orgId).execute();
    expect((await dal.findByOrg(org.orgId))?.url).toBe(PLATFORM_ALIAS);
    // Past the configuration refresh, so no node still holds the earlier None configuration.
    await new Promise((r) => setTimeout(r, 2100));
    const put = await server.call('PUT', '/api/v2/conversations/c-1/secureddata', { token: org.token, body: { data: { card: '4111' } } });
    expect(put.status).toBe(424);
    expect(put.body).toMatchObject({ errorType: 'InvalidKeyConfiguration', message: expect.stringMatching(/platform's own AWS account/) });
    const enc = await server.call('POST', '/api/v2/conversations/encrypt', { token: org.token, body: { data: 'x' } });
    expect(enc.status).toBe(424);
    expect(enc.body.errorType).toBe('InvalidKeyConfiguration');
  });
});
