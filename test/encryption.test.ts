import { setTimeout as sleep } from 'node:timers/promises';
import { AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { DeleteAliasCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';
import { esdkClientProvider } from '../src/providers/aws-kms/esdk/esdk-kms-client.js';
import { CONTEXT_KEY, customerKmsClient, orgWithCustomerKey, type CustomerKey } from './support/customer-keys.js';
import { createOrgWithToken, createToken, startTestServer, type TestServer } from './support/runtime.js';

/**
 * Encrypt Data / Decrypt Data. Interop both ways with the customer's own AWS Encryption SDK and KMS
 * key. The ESDK path stores nothing but audit events, so it runs on the embedded database only.
 */

const { encrypt: esdkEncrypt, decrypt: esdkDecrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const legacy = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);

function expectError(res: { status: number; body: any }, status: number, errorType: string) {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ status, errorType, code: expect.any(String), message: expect.any(String), contextId: expect.any(String) });
}

describe('Encrypt Data / Decrypt Data', () => {
  let server: TestServer;
  let org: { orgId: string; token: string; key: CustomerKey };
  let other: { orgId: string; token: string; key: CustomerKey };

  /** The customer's back end: its own ESDK with a KMS keyring on its key, under its own account. */
  const customerKeyring = (key: CustomerKey) =>
    new KmsKeyringNode({ generatorKeyId: key.keyArn, clientProvider: esdkClientProvider(() => customerKmsClient(server, key.accountId), createKmsMetrics()) });

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    org = await orgWithCustomerKey(server, 'Encrypting org', createOrgWithToken);
    other = await orgWithCustomerKey(server, 'Other org', createOrgWithToken);
  });
  afterAll(async () => server?.close());

  const encrypt = (data: unknown, token = org.token) => server.call('POST', '/api/v2/conversations/encrypt', { token, body: { data } });
  const decrypt = (encryptedData: unknown, token = org.token) => server.call('POST', '/api/v2/conversations/decrypt', { token, body: { encryptedData } });

  it('round-trips text through the API', async () => {
    for (const text of ['4111 1111 1111 1111', 'ü 💳 中文', 'x'.repeat(32_000)]) {
      const enc = await encrypt(text);
      expect(enc.status).toBe(200);
      expect(Object.keys(enc.body)).toEqual(['encryptedData']);
      expect((await decrypt(enc.body.encryptedData)).body).toEqual({ data: text });
    }
  });

  it("makes messages the customer's own ESDK decrypts with its KMS key: committing non-signing suite, context {ctxKey: orgId}", async () => {
    const enc = await encrypt('for the back end');
    const { plaintext, messageHeader } = await esdkDecrypt(customerKeyring(org.key), Buffer.from(enc.body.encryptedData, 'base64'));
    expect(plaintext.toString('utf8')).toBe('for the back end');
    expect(messageHeader.suiteId).toBe(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY);
    expect(messageHeader.encryptionContext).toEqual({ [CONTEXT_KEY]: org.orgId });
    expect(messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).toEqual([org.key.keyArn]);
  });

  it("decrypts messages the customer's back end made with its ESDK: the committing suite and the signing default", async () => {
    for (const suiteId of [AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY, undefined]) {
      const text = `from the back end (${suiteId ?? 'default suite'})`;
      const { result } = await esdkEncrypt(customerKeyring(org.key), text, {
        encryptionContext: { [CONTEXT_KEY]: org.orgId },
        ...(suiteId ? { suiteId } : {}),
      });
      const res = await decrypt(result.toString('base64'));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ data: text });
    }
  });

  it("refuses a message whose encryption context is not this organization's, before calling KMS", async () => {
    const decryptsBefore = server.runtime.kms.metrics.count('Decrypt');
    const contexts: Array<Record<string, string>> = [{ [CONTEXT_KEY]: other.orgId }, { [CONTEXT_KEY]: org.orgId, extra: 'pair' }, { somethingElse: org.orgId }, {}];
    for (const encryptionContext of contexts) {
      const { result } = await esdkEncrypt(customerKeyring(org.key), 'x', { encryptionContext, suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY });
      const res = await decrypt(result.toString('base64'));
      expectError(res, 400, 'GeneralError');
      expect(res.body.message).toMatch(/not encrypted for this organization/);
    }
    expect(server.runtime.kms.metrics.count('Decrypt')).toBe(decryptsBefore);

    // Another organization's API message, sent by that organization to this one's token, and the reverse.
    const theirs = await encrypt('theirs', other.token);
    expectError(await decrypt(theirs.body.encryptedData), 400, 'GeneralError');
    const mine = await encrypt('mine');
    expectError(await decrypt(mine.body.encryptedData, other.token), 400, 'GeneralError');
  });

  it('refuses altered messages and non-committing (legacy) messages with a typed error', async () => {
    const enc = await encrypt('tamper with me');
    const bytes = Buffer.from(enc.body.encryptedData, 'base64');
    for (const at of [5, bytes.length - 40, bytes.length - 1]) {
      const altered = Buffer.from(bytes);
      altered[at]! ^= 1;
      const res = await decrypt(altered.toString('base64'));
      expect([400]).toContain(res.status);
      expect(res.body.errorType).toBe('GeneralError');
      expect(JSON.stringify(res.body)).not.toContain('tamper with me');
    }
    expectError(await decrypt(bytes.subarray(0, bytes.length - 10).toString('base64')), 400, 'GeneralError');
    expectError(await decrypt('not base64 !!'), 400, 'GeneralError');
    expectError(await decrypt(Buffer.from('hello').toString('base64')), 400, 'GeneralError');

    const { result } = await legacy.encrypt(customerKeyring(org.key), 'old suite', {
      encryptionContext: { [CONTEXT_KEY]: org.orgId },
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    });
    expectError(await decrypt(result.toString('base64')), 400, 'GeneralError');
  });

  it("never blames the org's key for a message whose key ARN was altered: 400, no lastError, no KMS call for a foreign key", async () => {
    const enc = await encrypt('flip my key arn');
    const bytes = Buffer.from(enc.body.encryptedData, 'base64');
    const at = bytes.indexOf(Buffer.from(org.key.keyArn));
    expect(at).toBeGreaterThan(0);
    const configs = async () => (await server.call('GET', '/api/v2/conversations/keyconfigurations', { token: org.token })).body.entities[0];
    // Within the key id (another key of the same account), in the account id, in the region.
    for (const offset of [org.key.keyArn.length - 1, org.key.keyArn.indexOf(org.key.accountId) + 3, 'arn:aws:kms:'.length + 1]) {
      const altered = Buffer.from(bytes);
      altered[at + offset] = altered[at + offset] === 0x61 ? 0x62 : 0x61;
      const before = server.runtime.kms.metrics.count();
      const res = await decrypt(altered.toString('base64'));
      expectError(res, 400, 'GeneralError');
      expect(res.body.message).toMatch(/cannot be decrypted by this organization/);
      expect(server.runtime.kms.metrics.count() - before).toBeLessThanOrEqual(1);
      expect((await configs()).lastError).toBeUndefined();
    }
    expect((await decrypt(enc.body.encryptedData)).body).toEqual({ data: 'flip my key arn' });
  });

  it('answers the errorTypes of the issue for bad input and limits', async () => {
    expectError(await encrypt(''), 400, 'NoDataSupplied');
    expectError(await encrypt(null), 400, 'NoDataSupplied');
    expectError(await server.call('POST', '/api/v2/conversations/encrypt', { token: org.token, body: {} }), 400, 'NoDataSupplied');
    expectError(await decrypt(''), 400, 'NoDataSupplied');
    expectError(await server.call('POST', '/api/v2/conversations/decrypt', { token: org.token, body: {} }), 400, 'NoDataSupplied');
    expectError(await encrypt('x'.repeat(32_001)), 413, 'MaximumDataSizeExceeded');
    expectError(await decrypt('A'.repeat(200_004)), 413, 'MaximumDataSizeExceeded');
    expect((await encrypt(42)).status).toBe(400);
  });

  it('needs conversation:encryption:use', async () => {
    const readOnly = await createToken(server, org.orgId, ['conversation:securedData:view', 'conversation:securedData:edit']);
    const res = await encrypt('x', readOnly);
    expect(res.status).toBe(403);
    expect(res.body.details.missingPermissions).toEqual(['conversation:encryption:use']);
    expect((await decrypt('AAAA', readOnly)).status).toBe(403);
    expect((await encrypt('x', null as unknown as string)).status).toBe(401);
  });

  it('answers CustomerKeyNotConfigured without a customer key (type None)', async () => {
    const plain = await createOrgWithToken(server, 'No CMK', ['conversation:encryption:use']);
    expectError(await encrypt('x', plain.token), 424, 'CustomerKeyNotConfigured');
    const mine = await encrypt('mine');
    expectError(await decrypt(mine.body.encryptedData, plain.token), 424, 'CustomerKeyNotConfigured');
  });

  it('does not call KMS for every message: the caching materials manager reuses data keys per organization', async () => {
    const fresh = await orgWithCustomerKey(server, 'Cached org', createOrgWithToken);
    const generates = server.runtime.kms.metrics.count('GenerateDataKey');
    const decrypts = server.runtime.kms.metrics.count('Decrypt');
    const messages: string[] = [];
    for (let i = 0; i < 30; i++) messages.push((await encrypt(`message ${i}`, fresh.token)).body.encryptedData);
    expect(server.runtime.kms.metrics.count('GenerateDataKey') - generates).toBe(1);
    for (let i = 0; i < 30; i++) expect((await decrypt(messages[i], fresh.token)).body.data).toBe(`message ${i}`);
    expect(server.runtime.kms.metrics.count('Decrypt') - decrypts).toBe(1);
  });

  it('audits encrypt and decrypt with sizes, never contents', async () => {
    const enc = await encrypt('AUDIT-NEVER-SEES-THIS');
    await decrypt(enc.body.encryptedData);
    const res = await server.call('GET', '/api/v2/audits?action=encryption.*', { token: org.token });
    const [last, previous] = res.body.entities;
    expect(last).toMatchObject({ action: 'encryption.decrypt', outcome: 'success', details: { bytes: 21 } });
    expect(previous).toMatchObject({ action: 'encryption.encrypt', outcome: 'success', details: { bytes: 21 } });
    expect(JSON.stringify(res.body)).not.toContain('AUDIT-NEVER-SEES-THIS');
    expect(JSON.stringify(res.body)).not.toContain(enc.body.encryptedData.slice(0, 40));
  });
});

describe('Encrypt Data / Decrypt Data when the customer key cannot be used', () => {
  let server: TestServer;
  let org: { orgId: string; token: string; key: CustomerKey };

  beforeAll(async () => {
    server = await startTestServer('sqlite', { CONVAULT_KEY_CACHE_MAX_AGE_S: '1' });
    org = await orgWithCustomerKey(server, 'Revoking org', createOrgWithToken);
  });
  afterAll(async () => server?.close());

  const encrypt = (data: string) => server.call('POST', '/api/v2/conversations/encrypt', { token: org.token, body: { data } });
  const decrypt = (encryptedData: string) => server.call('POST', '/api/v2/conversations/decrypt', { token: org.token, body: { encryptedData } });

  it('disabled → 424 CustomerKeyUnavailable once the cache max age passed; enabled → works again', async () => {
    const message = (await encrypt('before')).body.encryptedData;
    expect((await decrypt(message)).status).toBe(200);
    await org.key.disable();
    await sleep(1_100);
    expectError(await encrypt('during'), 424, 'CustomerKeyUnavailable');
    expectError(await decrypt(message), 424, 'CustomerKeyUnavailable');
    await org.key.enable();
    expect((await decrypt(message)).body.data).toBe('before');
    expect((await encrypt('after')).status).toBe(200);
  });

  it('alias deleted → 424 CustomerKeyNotFound', async () => {
    await sleep(1_100);
    await org.key.client.send(new DeleteAliasCommand({ AliasName: org.key.aliasName }));
    const res = await encrypt('x');
    expectError(res, 424, 'CustomerKeyNotFound');
    expect(res.body.message).toMatch(/does not exist/);
  });
});
