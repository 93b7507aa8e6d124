import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { KmsError } from './errors.js';
import { PrincipalDirectory } from './principals.js';
import { authenticate, parseAuthorization, type SignedRequest } from './request-auth.js';

const bytes = (d: string | ArrayBuffer | ArrayBufferView) =>
  typeof d === 'string' ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** The client side signs with its own hash, independent of the server's. */
class Sha256 {
  private h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(d: string | ArrayBuffer | ArrayBufferView) {
    this.h.update(bytes(d));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

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
  const directory = new PrincipalDirectory([
    { accessKeyId: 'AKIAPLATFORMNODE01', secretAccessKey: 'platform-secret', arn: 'arn:aws:iam::444455556666:role/convault', accountId: '444455556666' },
    { accessKeyId: '111122223333', secretAccessKey: 'customer-secret', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' },
  ]);
  const clock = () => NOW;

  it('takes a bare 12-digit access key id as that account root, unverified, with the scope region', async () => {
    const caller = await authenticate(await signedRequest('777788889999', 'anything'), directory, clock);
    expect(caller).toMatchObject({ arn: 'arn:aws:iam::777788889999:root', accountId: '777788889999', region: 'eu-west-1', signatureVerified: false });
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

  it('maps access key ids to principals; bare account ids need no entry', () => {
    const dir = PrincipalDirectory.fromFile(
      write({ principals: [{ accessKeyId: 'AKIAALICE000000001', secretAccessKey: 's', arn: 'arn:aws:iam::111122223333:user/alice' }] }),
    );
    expect(dir.lookup('AKIAALICE000000001')).toMatchObject({ arn: 'arn:aws:iam::111122223333:user/alice', accountId: '111122223333' });
    expect(dir.lookup('555566667777')).toMatchObject({ arn: 'arn:aws:iam::555566667777:root' });
    expect(dir.lookup('AKIANOBODY00000000')).toBeUndefined();
  });

  it('says what is wrong with a bad file', () => {
    expect(() => PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: 'AKIAX0000000000001', arn: 'bob' }] }))).toThrow(/principals\.0\.arn/);
    expect(() => PrincipalDirectory.fromFile(write({ principals: [{ accessKeyId: 'AKIAX0000000000001' }] }))).toThrow(/needs an "arn"/);
    expect(() => PrincipalDirectory.fromFile('/nonexistent/principals.json')).toThrow(/cannot read/);
  });
});
