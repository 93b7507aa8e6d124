import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { NodeSha256 as Sha256 } from '../../test/support/local-kms.js';
import { KmsError } from './errors.js';
import { PrincipalDirectory } from './principals.js';
import { authenticate, parseAuthorization, type SignedRequest } from './request-auth.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

async function signedRequest(accessKeyId: string, secretAccessKey: string, body = '{"KeyId":"alias/x"}', signingDate = new Date(NOW)): Promise<SignedRequest> {
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region: 'eu-west-1', service: 'kms', sha256: Sha256 });
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: '/',
      query: {},
      headers: { host: '127.0.0.1:4599', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.DescribeKey' },
      body,
    },
    { signingDate },
  );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v);
  return { method: 'POST', url: '/', headers, body: Buffer.from(body) };
}

async function failure(p: Promise<unknown>): Promise<KmsError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KmsError);
  return err as KmsError;
}

describe('authenticate', () => {
  const principals = new PrincipalDirectory([
    { accessKeyId: 'AKIAPLATFORMNODE01', secretAccessKey: 'platform-secret', arn: 'arn:aws:iam::444455556666:role/convault', accountId: '444455556666' },
    { accessKeyId: '111122223333', secretAccessKey: 'customer-secret', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
  ]);
  const directory = (id: string) => principals.lookup(id);
  const clock = () => NOW;

  it('refuses a bare 12-digit access key id that was never issued, whatever it signs with', async () => {
    const err = await failure(authenticate(await signedRequest('777788889999', 'anything'), directory, clock));
    expect(err.type).toBe('UnrecognizedClientException');
  });

  it('refuses a signature made with another principal\'s secret', async () => {
    const err = await failure(authenticate(await signedRequest('111122223333', 'platform-secret'), directory, clock));
    expect(err.type).toBe('InvalidSignatureException');
  });

  it('trusts a principal without a secret unverified (only the insecure development mode makes one)', async () => {
    const insecure = () => ({ accessKeyId: '777788889999', arn: 'arn:aws:iam::777788889999:root', accountId: '777788889999' });
    const caller = await authenticate(await signedRequest('777788889999', 'anything'), insecure, clock);
    expect(caller).toMatchObject({ arn: 'arn:aws:iam::777788889999:root', region: 'eu-west-1', signatureVerified: false });
  });

  it('verifies the signature of a principal whose secret is known', async () => {
    const caller = await authenticate(await signedRequest('AKIAPLATFORMNODE01', 'platform-secret'), directory, clock);
    expect(caller).toMatchObject({ arn: 'arn:aws:iam::444455556666:role/convault', accountId: '444455556666', signatureVerified: true });
  });

  it('refuses a wrong secret, a changed body, a stale date', async () => {
    expect((await failure(authenticate(await signedRequest('AKIAPLATFORMNODE01', 'wrong'), directory, clock))).type).toBe('InvalidSignatureException');
    const tampered = await signedRequest('111122223333', 'customer-secret');
    tampered.body = Buffer.from('{"KeyId":"alias/y"}');
    expect((await failure(authenticate(tampered, directory, clock))).type).toBe('InvalidSignatureException');
    const stale = await signedRequest('111122223333', 'customer-secret', '{}', new Date(NOW - 16 * 60_000));
    expect((await failure(authenticate(stale, directory, clock))).message).toMatch(/expired/);
  });

  it('refuses unknown access key ids, missing and malformed headers', async () => {
    expect((await failure(authenticate(await signedRequest('AKIAUNKNOWN0000000', 'x'), directory, clock))).type).toBe('UnrecognizedClientException');
    const none = await signedRequest('111122223333', 'x');
    delete none.headers.authorization;
    expect((await failure(authenticate(none, directory, clock))).type).toBe('MissingAuthenticationTokenException');
    expect(() => parseAuthorization('Bearer abc')).toThrow(/AWS4-HMAC-SHA256/);
  });
});

describe('principals file', () => {
  const write = (content: unknown) => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'principals-')), 'principals.json');
    fs.writeFileSync(file, JSON.stringify(content));
    return file;
  };

  it('maps access key ids to principals; ids not in the file are unknown to it', () => {
    const dir = PrincipalDirectory.fromFile(
      write({ principals: [{ accessKeyId: 'AKIAALICE000000001', secretAccessKey: 's', arn: 'arn:aws:iam::111122223333:user/alice' }] }),
    );
    expect(dir.lookup('AKIAALICE000000001')).toMatchObject({ arn: 'arn:aws:iam::111122223333:user/alice', accountId: '111122223333' });
    expect(dir.lookup('555566667777')).toBeUndefined();
    expect(dir.lookup('AKIANOBODY00000000')).toBeUndefined();
  });

  it('says what is wrong with a bad file', () => {
    expect(() => PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: 'AKIAX0000000000001', arn: 'bob' }] }))).toThrow(/principals\.0\.arn/);
    expect(() => PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: 'AKIAX0000000000001', secretAccessKey: 's' }] }))).toThrow(/needs an "arn"/);
    expect(() => PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: '111122223333' }] }))).toThrow(/needs a "secretAccessKey"/);
    expect(PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: '111122223333' }] }), { requireSecrets: false }).lookup('111122223333')).toMatchObject({
      accountId: '111122223333',
    });
    expect(() => PrincipalDirectory.fromFile('/nonexistent/principals.json')).toThrow(/cannot read/);
  });
});
