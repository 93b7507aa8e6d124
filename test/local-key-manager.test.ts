import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openXksProxy, type XksCredentials, type XksProxy, type XksServer } from '../src/xks/index.js';
import { configureOrgKey, createCustomerKey, ORG_ADMIN_PERMISSIONS, orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets, tempDir } from './support/databases.js';
import { createOrgWithToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * LocalKeyManager end to end through the HTTP API: the organization's key lives behind the
 * reference XKS proxy (in process, real HTTP and SigV4), on every database. Configure, Test, Save,
 * secured data, health, usage, rewrap AWS → XKS → AWS and XKS → XKS, and the secret nowhere.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const PERMISSIONS = ORG_ADMIN_PERMISSIONS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const target of databaseTargets) {
  describe.skipIf(!target.available)(`LocalKeyManager (XKS proxy) on ${target.name}`, () => {
    let server: TestServer;
    let proxy: XksProxy;
    let proxyServer: XksServer;
    let proxyPort: number;
    let store: XksCredentials;
    /** Every response body of this suite, as text: the secret must be in none of them. */
    const answers: string[] = [];
    /** Secrets of other key stores used along the way: in no answer either. */
    const otherSecrets: string[] = [];

    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await server.call(method, path, { token, body });
      answers.push(JSON.stringify(res.body));
      return res;
    };
    const lkm = (over: Record<string, unknown> = {}) => ({
      keyConfigurationType: 'LocalKeyManager',
      url: `${proxyServer.url}${store.uriPrefix}`,
      keyId: 'org-key',
      apiId: store.accessKeyId,
      apiKey: store.secretAccessKey,
      ...over,
    });
    const reference = (keyId = 'org-key') => `${proxyServer.url}${store.uriPrefix}/keys/${keyId}`;

    async function configure(token: string, body: Record<string, unknown>) {
      const list = await call('GET', BASE, token);
      const current = list.body.entities[0];
      return current ? call('PUT', `${BASE}/${current.id}`, token, { ...body, version: current.version }) : call('POST', BASE, token, body);
    }

    async function rewrapToEnd(token: string, configId: string) {
      const started = await call('POST', `${BASE}/${configId}/rewrap`, token);
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      for (let i = 0; i < 200; i++) {
        const job = await call('GET', `/api/v2/jobs/${started.body.id}`, token);
        if (job.body.state !== 'queued' && job.body.state !== 'running') return job.body;
        await sleep(100);
      }
      throw new Error('the rewrap job did not end');
    }

    async function writeValues(token: string, n: number, tag: string) {
      const written: Array<{ conv: string; value: string }> = [];
      for (let i = 0; i < n; i++) {
        const conv = randomUUID();
        const value = `${tag}-${i}-4111 1111 1111 1111`;
        const put = await call('PUT', `/api/v2/conversations/${conv}/secureddata`, token, { data: { card: value } });
        expect(put.status, JSON.stringify(put.body)).toBe(200);
        written.push({ conv, value });
      }
      return written;
    }

    async function expectReadable(token: string, written: Array<{ conv: string; value: string }>) {
      for (const w of written) {
        const get = await call('GET', `/api/v2/conversations/${w.conv}/secureddata`, token);
        expect(get.status, JSON.stringify(get.body)).toBe(200);
        expect(get.body.data.card).toBe(w.value);
      }
    }

    beforeAll(async () => {
      proxy = await openXksProxy({ dataDir: tempDir('convault-lkm-proxy-') });
      proxyServer = await proxy.serve({ host: '127.0.0.1', port: 0 });
      proxyPort = Number(new URL(proxyServer.url).port);
      store = await proxy.credentials.credentialsFor('/acme');
      await proxy.keys.createKey('org-key', 'encrypt,decrypt');
      await proxy.keys.createKey('second-key', 'encrypt,decrypt');
      await proxy.keys.createKey('rewrap-key', 'encrypt,decrypt');
      server = await startTestServer(target.name, {
        CONVAULT_XKS_ALLOW_HTTP_LOOPBACK: 'true',
        // Revocation at the proxy takes effect within a second; a rotated configuration within 200 ms.
        CONVAULT_KEY_CACHE_MAX_AGE_S: '1',
        CONVAULT_CONFIG_REFRESH_MS: '200',
        CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '2',
      });
    });
    afterAll(async () => {
      await server?.close();
      await proxyServer?.close();
      await proxy?.close();
    });

    it('lists LocalKeyManager among the types, with its fields and which are secret', async () => {
      const org = await createOrgWithToken(server, 'Types', PERMISSIONS);
      const res = await call('GET', `${BASE}/types`, org.token);
      expect(res.status).toBe(200);
      const lkmType = res.body.entities.find((t: any) => t.keyConfigurationType === 'LocalKeyManager');
      expect(lkmType).toMatchObject({ customerOwned: true, supportsHealthProbe: true, supportsEncryptData: false, supportsServerSideRewrap: false });
      expect(lkmType.fields.filter((f: any) => f.secret).map((f: any) => f.name)).toEqual(['apiKey', 'clientKey']);
    });

    it('Test runs the XKS steps, Save stores it, GET masks the secret; secured data is written and read under it', async () => {
      const org = await createOrgWithToken(server, 'Bank', PERMISSIONS);
      const tested = await call('POST', `${BASE}/validate`, org.token, lkm());
      expect(tested.status).toBe(200);
      expect(tested.body.ok).toBe(true);
      expect(tested.body.steps.map((s: any) => s.step)).toEqual(['GetHealthStatus', 'GetKeyMetadata', 'WrapDataKey', 'UnwrapDataKey', 'CompareDataKey']);
      expect(tested.body.apiKey).toBe('********');
      expect(tested.body.keyArn).toBe(reference());

      const created = await call('POST', BASE, org.token, lkm());
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toMatchObject({ keyConfigurationType: 'LocalKeyManager', url: `${proxyServer.url}/acme/kms/xks/v1`, keyId: 'org-key', apiId: store.accessKeyId, apiKey: '********', keyArn: reference(), version: 1 });
      const got = await call('GET', `${BASE}/${created.body.id}`, org.token);
      expect(got.body.apiKey).toBe('********');
      expect(got.body).not.toHaveProperty('clientKey');
      const history = await call('GET', `${BASE}/${created.body.id}/history`, org.token);
      expect(history.body.entities[0]).toMatchObject({ keyConfigurationType: 'LocalKeyManager', apiKey: '********' });

      const written = await writeValues(org.token, 3, 'bank');
      const get = await call('GET', `/api/v2/conversations/${written[0]!.conv}/secureddata`, org.token);
      expect(get.body).toMatchObject({ keyArn: reference(), keyConfigurationVersion: 1 });
      await expectReadable(org.token, written);

      // Stored: the secret only sealed (never in the fields, never as plaintext bytes).
      const row = await server.runtime.database.db.selectFrom('key_configurations').selectAll().where('org_id', '=', org.orgId).executeTakeFirstOrThrow();
      expect(row.fields).not.toContain(store.secretAccessKey);
      expect(Buffer.from(row.sealed_secrets!).includes(Buffer.from(store.secretAccessKey))).toBe(false);

      // Usage inventory: the XKS key is current and wraps the org's data keys.
      const usage = await call('GET', `${BASE}/${created.body.id}/usage`, org.token);
      expect(usage.body.entities[0]).toMatchObject({ keyArn: reference(), current: true, status: 'Current', values: 3 });

      // Health: a probe through the provider is ok.
      const probe = await call('POST', `${BASE}/${created.body.id}/health/probe`, org.token);
      expect(probe.status).toBe(200);
      expect(probe.body.status).toBe('ok');
    });

    it('refuses what the URL policy, the registry and the proxy refuse', async () => {
      const org = await createOrgWithToken(server, 'Refusals', PERMISSIONS);
      for (const url of ['http://169.254.169.254/kms/xks/v1', 'https://metadata.google.internal/kms/xks/v1', 'https://10.0.0.5/kms/xks/v1', 'ftp://example.com/kms/xks/v1']) {
        const res = await call('POST', BASE, org.token, lkm({ url }));
        expect(res.status, url).toBe(400);
        expect(res.body).toMatchObject({ errorType: 'InvalidKeyConfiguration', details: { field: 'url' } });
        // Test answers a report with the refused configuration as its only step, and calls nothing.
        const tested = await call('POST', `${BASE}/validate`, org.token, lkm({ url }));
        expect(tested.body).toMatchObject({ ok: false, steps: [{ step: 'Configuration', ok: false }] });
      }
      const noSecret = await call('POST', BASE, org.token, lkm({ apiKey: undefined }));
      expect(noSecret.status).toBe(400);
      expect(noSecret.body.details).toEqual({ field: 'apiKey' });
      const badKeyId = await call('POST', BASE, org.token, lkm({ keyId: '../x' }));
      expect(badKeyId.body.details).toEqual({ field: 'keyId' });

      // A wrong secret: the proxy refuses the signature; nothing is saved.
      const wrong = await call('POST', BASE, org.token, lkm({ apiKey: 'A'.repeat(43) }));
      expect(wrong.status).toBe(422);
      expect(wrong.body.details.report.lastError).toMatchObject({ failureKind: 'BadCredentials', providerError: 'AuthenticationFailedException' });
      expect((await call('GET', BASE, org.token)).body.total).toBe(0);
      const missing = await call('POST', `${BASE}/validate`, org.token, lkm({ keyId: 'no-such-key' }));
      expect(missing.body.lastError).toMatchObject({ errorType: 'CustomerKeyNotFound', failureKind: 'NotFound' });
    });

    it('a PUT without the secret keeps it, a PUT with a new one replaces it (a wrong one is refused by the Test)', async () => {
      const org = await createOrgWithToken(server, 'Rotation', PERMISSIONS);
      const created = await call('POST', BASE, org.token, lkm());
      const kept = await call('PUT', `${BASE}/${created.body.id}`, org.token, { ...lkm({ apiKey: undefined }), version: 1 });
      expect(kept.status, JSON.stringify(kept.body)).toBe(200);
      const masked = await call('PUT', `${BASE}/${created.body.id}`, org.token, { ...lkm({ apiKey: '********' }), version: 2 });
      expect(masked.status).toBe(200);
      const wrong = await call('PUT', `${BASE}/${created.body.id}`, org.token, { ...lkm({ apiKey: 'B'.repeat(43) }), version: 3 });
      expect(wrong.status).toBe(422);
      const rotated = await call('PUT', `${BASE}/${created.body.id}`, org.token, { ...lkm({ apiKey: store.secretAccessKey }), version: 3 });
      expect(rotated.status).toBe(200);
      expect(rotated.body.version).toBe(4);
      await expectReadable(org.token, await writeValues(org.token, 1, 'rotation'));
    });

    it('an https proxy: refused without its CA (TLS verified), tested, saved and used with a CA bundle of the configuration', async () => {
      const dir = tempDir('convault-lkm-tls-');
      const f = (name: string) => path.join(dir, name);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const tls = await proxy.serve({ host: '127.0.0.1', port: 0, tls: { cert: fs.readFileSync(f('server.pem')), key: fs.readFileSync(f('server.key')) } });
      try {
        const org = await createOrgWithToken(server, 'Tls', PERMISSIONS);
        const url = `${tls.url}${store.uriPrefix}`;
        expect(url.startsWith('https://')).toBe(true);
        const untrusted = await call('POST', `${BASE}/validate`, org.token, lkm({ url }));
        expect(untrusted.body).toMatchObject({ ok: false, lastError: { failureKind: 'Misconfigured', errorType: 'InvalidKeyConfiguration' } });
        const caBundle = fs.readFileSync(f('server.pem'), 'utf8');
        const created = await call('POST', BASE, org.token, lkm({ url, caBundle }));
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        expect(created.body.caBundle).toBe(caBundle);
        await expectReadable(org.token, await writeValues(org.token, 1, 'tls'));
        // The audit event names the bundle, not its body.
        const events = await server.runtime.database.db.selectFrom('audit_events').select('details').where('org_id', '=', org.orgId).where('action', '=', 'keyconfig.create').execute();
        expect(events[0]!.details).toContain('"caBundle":"(PEM)"');
      } finally {
        await tls.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('credentials rotated at the proxy: a PUT with the new pair, the old one revoked, and every value still reads (also from an earlier version)', async () => {
      const rotating = await proxy.credentials.credentialsFor('/rotating');
      const org = await createOrgWithToken(server, 'ProxyRotation', PERMISSIONS);
      const url = `${proxyServer.url}${rotating.uriPrefix}`;
      const created = await call('POST', BASE, org.token, lkm({ url, apiId: rotating.accessKeyId, apiKey: rotating.secretAccessKey }));
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const before = await writeValues(org.token, 2, 'before-rotation');

      const next = await proxy.credentials.rotate('/rotating');
      const put = await call('PUT', `${BASE}/${created.body.id}`, org.token, { ...lkm({ url, apiId: next.accessKeyId, apiKey: next.secretAccessKey }), version: 1 });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body).toMatchObject({ apiId: next.accessKeyId, apiKey: '********', version: 2 });
      const saved = await server.runtime.database.db.selectFrom('audit_events').select('details').where('org_id', '=', org.orgId).where('action', '=', 'keyconfig.save').execute();
      expect(saved.at(-1)!.details).toContain('"secretsSet":["apiKey"]');
      await proxy.credentials.revoke('/rotating', rotating.accessKeyId);
      // Past the configuration refresh and the key cache: every read asks the proxy with the new pair.
      await sleep(1100);
      await expectReadable(org.token, [...before, ...(await writeValues(org.token, 1, 'after-rotation'))]);
      otherSecrets.push(rotating.secretAccessKey, next.secretAccessKey);
    });

    it('refuses Encrypt/Decrypt Data with EncryptDataNotSupported', async () => {
      const org = await createOrgWithToken(server, 'NoEsdk', PERMISSIONS);
      await call('POST', BASE, org.token, lkm());
      const enc = await call('POST', '/api/v2/conversations/encrypt', org.token, { data: 'hello' });
      expect(enc.status).toBe(424);
      expect(enc.body.errorType).toBe('EncryptDataNotSupported');
      const dec = await call('POST', '/api/v2/conversations/decrypt', org.token, { encryptedData: 'AYADeA==' });
      expect(dec.status).toBe(424);
      expect(dec.body.errorType).toBe('EncryptDataNotSupported');
    });

    it('rewraps AWS → XKS → AWS and XKS → XKS: every value readable, the old key safe to retire', async () => {
      const org = await orgWithCustomerKey(server, 'Mover', createOrgWithToken);
      const first = await writeValues(org.token, 5, 'aws');

      // AWS → XKS
      const toXks = await configure(org.token, lkm({ keyId: 'rewrap-key' }));
      expect(toXks.status, JSON.stringify(toXks.body)).toBe(200);
      const second = await writeValues(org.token, 2, 'xks');
      let job = await rewrapToEnd(org.token, org.configId);
      expect(job).toMatchObject({ state: 'succeeded', failed: 0 });
      let usage = (await call('GET', `${BASE}/${org.configId}/usage`, org.token)).body.entities;
      expect(usage.find((r: any) => r.keyArn === org.key.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true, status: 'SafeToRetire' });
      expect(usage.find((r: any) => r.keyArn === reference('rewrap-key'))).toMatchObject({ current: true, status: 'Current' });
      // The AWS key is gone for good: the data is readable only through the proxy now.
      await org.key.disable();
      await sleep(1100);
      await expectReadable(org.token, [...first, ...second]);

      // XKS → XKS (another key at the proxy)
      expect((await configure(org.token, lkm({ keyId: 'second-key' }))).status).toBe(200);
      job = await rewrapToEnd(org.token, org.configId);
      expect(job).toMatchObject({ state: 'succeeded', failed: 0 });
      usage = (await call('GET', `${BASE}/${org.configId}/usage`, org.token)).body.entities;
      expect(usage.find((r: any) => r.keyArn === reference('rewrap-key'))).toMatchObject({ dataKeys: 0, safeToRetire: true });

      // XKS → AWS (a new key of the customer's AWS account)
      const next = await createCustomerKey(server, { orgIds: [org.orgId] });
      await configureOrgKey(server, org.token, next.aliasArn);
      const third = await writeValues(org.token, 2, 'aws-again');
      job = await rewrapToEnd(org.token, org.configId);
      expect(job).toMatchObject({ state: 'succeeded', failed: 0 });
      usage = (await call('GET', `${BASE}/${org.configId}/usage`, org.token)).body.entities;
      expect(usage.find((r: any) => r.keyArn === reference('second-key'))).toMatchObject({ dataKeys: 0, safeToRetire: true, status: 'SafeToRetire' });
      expect(usage.find((r: any) => r.keyArn === next.keyArn)).toMatchObject({ current: true });
      // The proxy's keys are no longer needed: disabled, everything still reads.
      await proxy.keys.setStatus('second-key', 'DISABLED');
      await proxy.keys.setStatus('rewrap-key', 'DISABLED');
      await sleep(1100);
      await expectReadable(org.token, [...first, ...second, ...third]);
      await proxy.keys.setStatus('second-key', 'ENABLED');
      await proxy.keys.setStatus('rewrap-key', 'ENABLED');
    });

    it('a key disabled at the proxy: 424 within the cache max age and health failed; enabled again: readable', async () => {
      const org = await createOrgWithToken(server, 'Revoker', PERMISSIONS);
      await proxy.keys.createKey('revoked-key', 'encrypt,decrypt');
      const created = await call('POST', BASE, org.token, lkm({ keyId: 'revoked-key' }));
      const written = await writeValues(org.token, 1, 'revoke');
      await proxy.keys.setStatus('revoked-key', 'DISABLED');
      await sleep(1100);
      const read = await call('GET', `/api/v2/conversations/${written[0]!.conv}/secureddata`, org.token);
      expect(read.status).toBe(424);
      expect(read.body).toMatchObject({ errorType: 'CustomerKeyUnavailable', code: 'customer.key.error' });
      const probe = await call('POST', `${BASE}/${created.body.id}/health/probe`, org.token);
      expect(probe.body.status).toBe('failed');
      expect(probe.body.lastError.message).toMatch(/disabled/i);
      const config = await call('GET', `${BASE}/${created.body.id}`, org.token);
      expect(config.body.lastError).toMatchObject({ errorType: 'CustomerKeyUnavailable' });

      await proxy.keys.setStatus('revoked-key', 'ENABLED');
      await expectReadable(org.token, written);
    });

    it('the proxy down: 503 and health degraded; back up: readable again', async () => {
      const org = await createOrgWithToken(server, 'Outage', PERMISSIONS);
      const created = await call('POST', BASE, org.token, lkm());
      const written = await writeValues(org.token, 1, 'outage');
      await proxyServer.close();
      try {
        await sleep(1100);
        const read = await call('GET', `/api/v2/conversations/${written[0]!.conv}/secureddata`, org.token);
        expect(read.status).toBe(503);
        expect(read.body).toMatchObject({ errorType: 'CustomerKeyUnavailable', code: 'customer.key.unreachable' });
        const probe = await call('POST', `${BASE}/${created.body.id}/health/probe`, org.token);
        expect(probe.body.status).toBe('degraded');
      } finally {
        proxyServer = await proxy.serve({ host: '127.0.0.1', port: proxyPort });
      }
      await expectReadable(org.token, written);
    });

    it('the secret is in no answer of this suite and in no audit event', async () => {
      expect(answers.length).toBeGreaterThan(50);
      const secrets = [store.secretAccessKey, ...otherSecrets];
      expect(otherSecrets).toHaveLength(2);
      const events = await server.runtime.database.db.selectFrom('audit_events').select(['action', 'details']).execute();
      expect(events.some((e) => e.action === 'keyconfig.create' && e.details.includes('LocalKeyManager'))).toBe(true);
      const history = await server.runtime.database.db.selectFrom('key_configuration_history').select(['test_report', 'fields']).execute();
      const texts = [...answers, ...events.map((e) => e.details), ...history.map((h) => `${h.test_report}${h.fields}`)];
      for (const secret of secrets) for (const text of texts) expect(text.includes(secret)).toBe(false);
    });
  });
}
