import { EncryptCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIALS_PATH, FAULTS_PATH } from '../src/localkms/index.js';
import { createCustomerKey, CUSTOMER_ACCOUNT, CONTEXT_KEY, PLATFORM_ACCOUNT } from './support/customer-keys.js';
import { signedKmsPost } from './support/local-kms.js';
import { startTestServer, type TestServer } from './support/runtime.js';

/**
 * The embedded local KMS of `convault serve` authenticates every caller, as AWS does: a local user who
 * can reach its port (and read the database) cannot act as the platform or as a customer account.
 */

let server: TestServer;
let kmsUrl: string;
let blob: string;
const ORG = 'org-under-attack';

beforeAll(async () => {
  server = await startTestServer('sqlite');
  kmsUrl = server.runtime.kms.endpoint!;
  const key = await createCustomerKey(server, { orgIds: [ORG] });
  const enc = await key.client.send(new EncryptCommand({ KeyId: key.keyArn, Plaintext: Buffer.from('tenant secret'), EncryptionContext: { [CONTEXT_KEY]: ORG } }));
  blob = Buffer.from(enc.CiphertextBlob!).toString('base64');
});

afterAll(async () => {
  await server?.close();
});

const decryptBody = () => JSON.stringify({ CiphertextBlob: blob, EncryptionContext: { [CONTEXT_KEY]: ORG } });

async function kmsError(res: Response): Promise<{ status: number; type: string }> {
  const body = (await res.json()) as { __type: string };
  return { status: res.status, type: body.__type };
}

describe('the embedded local KMS authenticates its callers', () => {
  it('refuses a Decrypt signed with a made-up secret for the platform account id', async () => {
    const res = await signedKmsPost(kmsUrl, { accessKeyId: PLATFORM_ACCOUNT, secretAccessKey: 'anything' }, 'TrentService.Decrypt', decryptBody());
    expect(await kmsError(res)).toEqual({ status: 400, type: 'UnrecognizedClientException' });
  });

  it("refuses a Decrypt under the platform's access key id signed with another principal's secret", async () => {
    const localKms = server.runtime.kms.localKms!;
    const platform = await localKms.credentialsFor(PLATFORM_ACCOUNT);
    const customer = await localKms.credentialsFor(CUSTOMER_ACCOUNT);
    expect(platform.accessKeyId).not.toBe(customer.accessKeyId);
    const res = await signedKmsPost(kmsUrl, { accessKeyId: platform.accessKeyId, secretAccessKey: customer.secretAccessKey }, 'TrentService.Decrypt', decryptBody());
    expect(await kmsError(res)).toEqual({ status: 400, type: 'InvalidSignatureException' });
  });

  it('refuses an unsigned request and one whose signature does not cover the body sent', async () => {
    const customer = await server.runtime.kms.localKms!.credentialsFor(CUSTOMER_ACCOUNT);
    const unsigned = await fetch(kmsUrl, { method: 'POST', headers: { 'x-amz-target': 'TrentService.ListKeys', 'content-type': 'application/x-amz-json-1.1' }, body: '{}' });
    expect(await kmsError(unsigned)).toEqual({ status: 400, type: 'MissingAuthenticationTokenException' });
    const res = await signedKmsPost(kmsUrl, customer, 'TrentService.ListKeys', '{}', { 'x-amz-target': 'TrentService.DisableKey' });
    expect(await kmsError(res)).toEqual({ status: 400, type: 'InvalidSignatureException' });
  });

  it('answers the correctly signed request of the key owner', async () => {
    const customer = await server.runtime.kms.localKms!.credentialsFor(CUSTOMER_ACCOUNT);
    const res = await signedKmsPost(kmsUrl, customer, 'TrentService.Decrypt', decryptBody());
    expect(res.status).toBe(200);
    expect(Buffer.from(((await res.json()) as { Plaintext: string }).Plaintext, 'base64').toString()).toBe('tenant secret');
  });

  it('refuses requests addressed to a host name that is not its own (DNS rebinding)', async () => {
    const customer = await server.runtime.kms.localKms!.credentialsFor(CUSTOMER_ACCOUNT);
    const rebound = await signedKmsPost(kmsUrl, customer, 'TrentService.ListKeys', '{}', { host: 'attacker.example:80' });
    expect(rebound.status).toBe(403);
    const port = new URL(kmsUrl).port;
    for (const name of ['localhost', '127.0.0.1', '[::1]']) {
      const ok = await signedKmsPost(kmsUrl, customer, 'TrentService.ListKeys', '{}', { host: `${name}:${port}` });
      expect(ok.status, name).not.toBe(403);
    }
  });

  it('has no fault endpoint unless configured, and issues credentials only to the holder of the admin secret', async () => {
    expect((await fetch(`${kmsUrl}${FAULTS_PATH}`, { method: 'PUT', body: '{"outage":"unavailable"}' })).status).toBe(404);
    expect(server.runtime.kms.localKms!.faults.outage).toBe('none');
    const anonymous = await fetch(`${kmsUrl}${CREDENTIALS_PATH}`, { method: 'POST', body: JSON.stringify({ accountId: PLATFORM_ACCOUNT }) });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toMatch(/secretAccessKey/);
  });
});
