import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseTargets } from './support/databases.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';
import { CancelKeyDeletionCommand, PutKeyPolicyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { CUSTOMER_ACCOUNT, createCustomerKey, type CustomerKey } from './support/customer-keys.js';

const BASE = '/api/v2/conversations/keyconfigurations';
const FORM = 'arn:aws:kms:{region}:{accountId}:alias/{your-alias}';

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`key configuration API on ${target.name}`, () => {
    let server: TestServer;
    let orgId: string;
    let good: CustomerKey;

    beforeAll(async () => {
      server = await startTestServer(target.name);
      orgId = (await server.call('GET', '/api/v2/organizations/me')).body.id;
      good = await createCustomerKey(server, { orgIds: [orgId] });
    });
    afterAll(async () => server?.close());

    const validate = (body: object, token?: string) => server.call('POST', `${BASE}/validate`, { body, token });

    it('starts with no configuration', async () => {
      const list = await server.call('GET', BASE);
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ total: 0, entities: [], selfUri: BASE });
    });

    it('Test passes every step for a key whose policy grants this organization, and saves nothing', async () => {
      const res = await validate({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn });
      expect(res.status).toBe(200);
      expect(res.body.ok).toBe(true);
      expect(res.body.keyArn).toBe(good.keyArn);
      expect(res.body.url).toBe(good.aliasArn);
      expect(res.body.keyConfigurationType).toBe('KmsSymmetric');
      expect(res.body.lastError).toBeUndefined();
      expect(res.body.steps.map((s: any) => [s.step, s.ok])).toEqual([
        ['ArnSyntax', true],
        ['DescribeKey', true],
        ['GenerateDataKey', true],
        ['EncryptTestData', true],
        ['DecryptDataKey', true],
        ['DecryptTestData', true],
      ]);
      for (const step of res.body.steps) expect(step.ms).toBeGreaterThanOrEqual(0);
      expect((await server.call('GET', BASE)).body.total).toBe(0);
    });

    it('Test reports an invalid ARN at the syntax step with the expected form', async () => {
      const res = await validate({ keyConfigurationType: 'KmsSymmetric', url: `arn:aws:kms:us-east-1:${CUSTOMER_ACCOUNT}:key/abc` });
      expect(res.status).toBe(200);
      expect(res.body.ok).toBe(false);
      expect(res.body.steps).toHaveLength(1);
      expect(res.body.steps[0]).toMatchObject({ step: 'ArnSyntax', ok: false });
      expect(res.body.lastError.message).toContain('create an alias');
      expect(res.body.lastError.message).toContain(FORM);
    });

    it('Test fails at GenerateDataKey with the remediation when the policy lacks the organization condition', async () => {
      const noPlatform = await createCustomerKey(server, { orgIds: [] });
      const res = await validate({ keyConfigurationType: 'KmsSymmetric', url: noPlatform.aliasArn });
      expect(res.body.ok).toBe(false);
      const describe = res.body.steps.find((s: any) => s.step === 'DescribeKey');
      expect(describe).toMatchObject({ ok: false, advisory: true });
      const failed = res.body.steps.at(-1);
      expect(failed.step).toBe('GenerateDataKey');
      expect(failed.error.awsError).toBe('AccessDeniedException');
      expect(failed.error.errorType).toBe('CustomerKeyUnavailable');
      expect(failed.error.message).toContain(`kms:EncryptionContext:convault-organization-id = ${orgId}`);
      expect(failed.error.message).toContain('444455556666');
      expect(res.body.lastError).toEqual(failed.error);
    });

    it('Test fails for a key whose policy names another organization, and passes once the policy is fixed', async () => {
      const other = await createCustomerKey(server, { orgIds: ['some-other-org-id'] });
      const res = await validate({ keyConfigurationType: 'KmsSymmetric', url: other.aliasArn });
      expect(res.body.ok).toBe(false);
      expect(res.body.steps.find((s: any) => s.step === 'DescribeKey').ok).toBe(true);
      expect(res.body.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false });

      await other.grantPlatform([orgId]);
      expect((await validate({ keyConfigurationType: 'KmsSymmetric', url: other.aliasArn })).body.ok).toBe(true);
    });

    it("Test names the key (ARN, state, spec, usage) only after a round trip under the caller's own context", async () => {
      const passed = await validate({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn });
      expect(passed.body.steps.find((s: any) => s.step === 'DescribeKey').detail).toBe(`${good.keyArn} is Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT`);
      expect(passed.body.steps.find((s: any) => s.step === 'GenerateDataKey').detail).toBe(`data key generated under ${good.keyArn}`);

      // Another organization's key: its policy admits the platform for that organization only, so
      // DescribeKey (which carries no encryption context) works, the round trip does not.
      const theirs = await createCustomerKey(server, { orgIds: ['the-other-organization'] });
      const probed = await validate({ keyConfigurationType: 'KmsSymmetric', url: theirs.aliasArn });
      expect(probed.body.ok).toBe(false);
      expect(probed.body.steps.map((s: any) => [s.step, s.ok])).toEqual([
        ['ArnSyntax', true],
        ['DescribeKey', true],
        ['GenerateDataKey', false],
      ]);
      expect(probed.body.steps.find((s: any) => s.step === 'DescribeKey').detail).toBeUndefined();
      expect(probed.body.lastError.awsError).toBe('AccessDeniedException');
      expect(probed.body.keyArn).toBeUndefined();
      const text = JSON.stringify(probed.body);
      for (const leak of [theirs.keyArn, theirs.keyId, 'Enabled', 'SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT']) expect(text).not.toContain(leak);

      // Disabled, it still tells the prober nothing more than the access denial.
      await theirs.disable();
      const disabled = await validate({ keyConfigurationType: 'KmsSymmetric', url: theirs.aliasArn });
      expect(disabled.body.lastError.awsError).toBe('AccessDeniedException');
      expect(JSON.stringify(disabled.body)).not.toMatch(/disabled|Disabled/);
    });

    it('Test explains a disabled key, a key pending deletion and a missing alias', async () => {
      const key = await createCustomerKey(server, { orgIds: [orgId] });
      await key.disable();
      const disabled = await validate({ keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
      expect(disabled.body.ok).toBe(false);
      // KMS's own answer to this organization's GenerateDataKey says what is wrong; the key's metadata stays out of a failed Test.
      expect(disabled.body.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false, error: { awsError: 'DisabledException' } });
      expect(disabled.body.lastError.message).toMatch(/disabled: enable it/);
      expect(JSON.stringify(disabled.body)).not.toContain(key.keyId);

      await key.enable();
      await key.client.send(new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 }));
      const pending = await validate({ keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
      expect(pending.body.ok).toBe(false);
      expect(pending.body.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false, error: { awsError: 'KMSInvalidStateException' } });
      expect(pending.body.lastError.message).toMatch(/pending deletion.*CancelKeyDeletion/);
      expect(JSON.stringify(pending.body)).not.toMatch(/\d{4}-\d\d-\d\dT/);
      await key.client.send(new CancelKeyDeletionCommand({ KeyId: key.keyId }));

      const missing = await validate({ keyConfigurationType: 'KmsSymmetric', url: `arn:aws:kms:us-east-1:${CUSTOMER_ACCOUNT}:alias/does-not-exist` });
      expect(missing.body.ok).toBe(false);
      expect(missing.body.lastError.errorType).toBe('CustomerKeyNotFound');
      expect(missing.body.lastError.message).toMatch(/does not exist in account 111122223333, region us-east-1/);
    });

    it('refuses invalid ARNs on save with 400 naming the field and showing the form', async () => {
      // A region the deployment does not allow: the form is right, so the message names the allowed region instead.
      const region = await server.call('POST', BASE, { body: { keyConfigurationType: 'KmsSymmetric', url: 'arn:aws:kms:eu-west-3:111122223333:alias/x' } });
      expect(region.status).toBe(400);
      expect(region.body.details.field).toBe('url');
      expect(region.body.message).toBe('Region eu-west-3 is not allowed for this deployment: use a key in us-east-1.');
      for (const url of [
        'not-an-arn',
        'arn:aws:kms:us-east-1:123:alias/x',
        'arn:aws:kms:us-east-1:111122223333:alias/aws/ebs',
        `arn:aws:kms:us-east-1:111122223333:key/${good.keyId}`,
      ]) {
        const res = await server.call('POST', BASE, { body: { keyConfigurationType: 'KmsSymmetric', url } });
        expect(res.status, url).toBe(400);
        expect(res.body.details.field).toBe('url');
        expect(res.body.message).toContain(FORM);
      }
      const badType = await server.call('POST', BASE, { body: { keyConfigurationType: 'Rot13', url: good.aliasArn } });
      expect(badType.status).toBe(400);
      expect(badType.body.details.field).toBe('body.keyConfigurationType');
    });

    it('refuses to save a configuration whose Test fails (422 with the report), and stores nothing', async () => {
      const noPlatform = await createCustomerKey(server, { orgIds: [] });
      const res = await server.call('POST', BASE, { body: { keyConfigurationType: 'KmsSymmetric', url: noPlatform.aliasArn } });
      expect(res.status).toBe(422);
      expect(res.body.errorType).toBe('CustomerKeyUnavailable');
      expect(res.body.details.report.ok).toBe(false);
      expect(res.body.details.report.steps.at(-1).step).toBe('GenerateDataKey');
      expect((await server.call('GET', BASE)).body.total).toBe(0);
    });

    let configId: string;

    it('creates, refuses a second POST, saves with version checks, switches to None, and keeps the history', async () => {
      const created = await server.call('POST', BASE, { body: { keyConfigurationType: 'KmsSymmetric', url: good.aliasArn } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn, keyArn: good.keyArn, version: 1 });
      expect(created.body.selfUri).toBe(`${BASE}/${created.body.id}`);
      expect(created.body.updatedBy.name).toBe('admin');
      configId = created.body.id;

      const second = await server.call('POST', BASE, { body: { keyConfigurationType: 'KmsSymmetric', url: good.aliasArn } });
      expect(second.status).toBe(409);

      const rotated = await createCustomerKey(server, { orgIds: [orgId] });
      const stale = await server.call('PUT', `${BASE}/${configId}`, { body: { keyConfigurationType: 'KmsSymmetric', url: rotated.aliasArn, version: 0 } });
      expect(stale.status).toBe(409);
      expect(stale.body.message).toMatch(/changed by someone else/);
      const noVersion = await server.call('PUT', `${BASE}/${configId}`, { body: { keyConfigurationType: 'KmsSymmetric', url: rotated.aliasArn } });
      expect(noVersion.status).toBe(400);
      expect(noVersion.body.details.field).toBe('version');

      const saved = await server.call('PUT', `${BASE}/${configId}`, { body: { keyConfigurationType: 'KmsSymmetric', url: rotated.aliasArn, version: 1 } });
      expect(saved.status).toBe(200);
      expect(saved.body).toMatchObject({ version: 2, url: rotated.aliasArn, keyArn: rotated.keyArn });
      expect(await server.runtime.services.keyConfigs.resolveActiveKey(orgId)).toEqual({ type: 'KmsSymmetric', keyId: rotated.aliasArn, version: 2 });

      const none = await server.call('PUT', `${BASE}/${configId}`, { body: { keyConfigurationType: 'None', url: rotated.aliasArn, version: 2 } });
      expect(none.status).toBe(200);
      expect(none.body).toMatchObject({ keyConfigurationType: 'None', url: '', version: 3 });
      expect(none.body.keyArn).toBeUndefined();
      const active = await server.runtime.services.keyConfigs.resolveActiveKey(orgId);
      expect(active).toEqual({ type: 'None', keyId: server.runtime.kms.platformKeyArn, version: 3 });

      expect((await server.call('GET', `${BASE}/${configId}`)).body.version).toBe(3);
      const history = await server.call('GET', `${BASE}/${configId}/history`);
      expect(history.body.total).toBe(3);
      expect(history.body.entities.map((h: any) => [h.version, h.keyConfigurationType, h.keyArn ?? null])).toEqual([
        [3, 'None', null],
        [2, 'KmsSymmetric', rotated.keyArn],
        [1, 'KmsSymmetric', good.keyArn],
      ]);
      expect(history.body.entities[1].testReport.ok).toBe(true);
    });

    it('writes audit events for test, save and None with old and new values', async () => {
      const saves = await server.call('GET', '/api/v2/audits?action=keyconfig.save');
      expect(saves.status).toBe(200);
      const ok = saves.body.entities.find((e: any) => e.outcome === 'success');
      expect(ok.details.old.version).toBe(1);
      expect(ok.details.new.version).toBe(2);
      expect(ok.details.test.ok).toBe(true);
      const none = await server.call('GET', '/api/v2/audits?action=keyconfig.none');
      expect(none.body.entities[0].details.new.keyConfigurationType).toBe('None');
      const tests = await server.call('GET', '/api/v2/audits?action=keyconfig.test');
      expect(tests.body.entities.length).toBeGreaterThan(3);
      expect(JSON.stringify(tests.body)).not.toMatch(/Plaintext|plaintext"/);
    });

    it('serves the key policy statement; with it Test passes, without it Test fails at GenerateDataKey', async () => {
      const res = await server.call('GET', `${BASE}/keypolicy`);
      expect(res.status).toBe(200);
      expect(res.body.organizationId).toBe(orgId);
      const [use, describe] = res.body.statement;
      expect(use.Principal.AWS).toBe('arn:aws:iam::444455556666:root');
      expect(use.Action).toEqual(['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']);
      expect(use.Condition.StringEquals['kms:EncryptionContext:convault-organization-id']).toBe(orgId);
      expect(describe.Action).toBe('kms:DescribeKey');

      // The customer pastes the served statements into the policy of a key that had only the default policy.
      const key = await createCustomerKey(server, { orgIds: [] });
      expect((await validate({ keyConfigurationType: 'KmsSymmetric', url: key.aliasArn })).body.ok).toBe(false);
      const policy = {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${CUSTOMER_ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
          ...res.body.statement,
        ],
      };
      await key.client.send(new PutKeyPolicyCommand({ KeyId: key.keyId, PolicyName: 'default', Policy: JSON.stringify(policy) }));
      expect((await validate({ keyConfigurationType: 'KmsSymmetric', url: key.aliasArn })).body.ok).toBe(true);
      await key.grantPlatform([]);
      const after = await validate({ keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
      expect(after.body.ok).toBe(false);
      expect(after.body.steps.at(-1).step).toBe('GenerateDataKey');
    });

    it('enforces permissions and hides other organizations', async () => {
      const viewer = await createToken(server, orgId, ['conversation:encryptionKey:view']);
      expect((await server.call('GET', `${BASE}/${configId}`, { token: viewer })).status).toBe(200);
      expect((await server.call('PUT', `${BASE}/${configId}`, { token: viewer, body: { keyConfigurationType: 'None', version: 3 } })).status).toBe(403);
      expect((await validate({ keyConfigurationType: 'None' }, viewer)).status).toBe(403);
      expect((await server.call('POST', BASE, { token: viewer, body: { keyConfigurationType: 'None' } })).status).toBe(403);

      const nobody = await createToken(server, orgId, ['audit:log:view']);
      expect((await server.call('GET', BASE, { token: nobody })).status).toBe(403);
      expect((await server.call('GET', `${BASE}/keypolicy`, { token: nobody })).status).toBe(403);

      const other = await createOrgWithToken(server, 'Other', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
      for (const path of [`${BASE}/${configId}`, `${BASE}/${configId}/history`]) {
        const res = await server.call('GET', path, { token: other.token });
        expect(res.status).toBe(404);
        expect(JSON.stringify(res.body)).not.toContain(orgId);
      }
      const put = await server.call('PUT', `${BASE}/${configId}`, { token: other.token, body: { keyConfigurationType: 'None', version: 3 } });
      expect(put.status).toBe(404);
      expect((await server.call('GET', BASE, { token: other.token })).body.total).toBe(0);
      // The other organization's Test of this organization's key is refused by the key policy.
      const theirTest = await validate({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn }, other.token);
      expect(theirTest.body.ok).toBe(false);
      expect(theirTest.body.steps.at(-1).error.awsError).toBe('AccessDeniedException');
    });

    it('reports throttling and a KMS outage with their remediation', async () => {
      const faults = server.runtime.kms.localKms!.faults;
      faults.set({ throttle: { ratio: 1 } });
      try {
        const throttled = await validate({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn });
        expect(throttled.body.ok).toBe(false);
        expect(throttled.body.lastError.awsError).toBe('ThrottlingException');
        expect(throttled.body.lastError.message).toMatch(/throttled/);
      } finally {
        faults.set({ throttle: { ratio: 0 } });
      }
      faults.set({ outage: 'unavailable' });
      try {
        const down = await validate({ keyConfigurationType: 'KmsSymmetric', url: good.aliasArn });
        expect(down.body.ok).toBe(false);
        expect(down.body.lastError.errorType).toBe('CustomerKeyUnavailable');
        expect(down.body.lastError.message).toMatch(/could not be reached/);
      } finally {
        faults.set({ outage: 'none' });
      }
    });

    it('two saves of one version at the same moment: one 200, one 409, one history row', async () => {
      const org = await createOrgWithToken(server, 'Racers', ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit']);
      const [first, second, third] = await Promise.all([0, 1, 2].map(() => createCustomerKey(server, { orgIds: [org.orgId] })));
      const created = await server.call('POST', BASE, { token: org.token, body: { keyConfigurationType: 'KmsSymmetric', url: first!.aliasArn } });
      expect(created.status).toBe(201);
      const id = created.body.id;

      // Both saves pass the version check and reach the key test before either writes.
      const gate = server.runtime.kms.localKms!.faults.hold('DescribeKey');
      let results;
      try {
        const saves = [second!, third!].map((key) =>
          server.call('PUT', `${BASE}/${id}`, { token: org.token, body: { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, version: 1 } }),
        );
        await gate.waitFor(2);
        gate.release();
        results = await Promise.all(saves);
      } finally {
        gate.release();
      }
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const loser = results.find((r) => r.status === 409)!;
      expect(loser.body.message).toMatch(/changed by someone else/);
      const winner = results.find((r) => r.status === 200)!;
      expect(winner.body.version).toBe(2);
      const history = await server.call('GET', `${BASE}/${id}/history`, { token: org.token });
      expect(history.body.entities.map((h: any) => h.version)).toEqual([2, 1]);
      expect((await server.call('GET', `${BASE}/${id}`, { token: org.token })).body).toMatchObject({ version: 2, url: winner.body.url });
    });
  });
}

describe('Test rate limit', () => {
  it('answers 429 with Retry-After past the per-organization limit, not counting syntax-only failures', async () => {
    const server = await startTestServer('sqlite', { CONVAULT_TEST_RATE_LIMIT_PER_MIN: '2' });
    try {
      const body = { keyConfigurationType: 'None' };
      expect((await server.call('POST', `${BASE}/validate`, { body: { keyConfigurationType: 'KmsSymmetric', url: 'nope' } })).status).toBe(200);
      expect((await server.call('POST', `${BASE}/validate`, { body })).status).toBe(200);
      expect((await server.call('POST', `${BASE}/validate`, { body })).status).toBe(200);
      const limited = await server.call('POST', `${BASE}/validate`, { body });
      expect(limited.status).toBe(429);
      expect(limited.body.errorType).toBe('RateLimited');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const other = await createOrgWithToken(server, 'Other', ['conversation:encryptionKey:edit']);
      expect((await server.call('POST', `${BASE}/validate`, { body, token: other.token })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
