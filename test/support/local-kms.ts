import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { KMS } from '@aws-sdk/client-kms';
import { SignatureV4 } from '@smithy/signature-v4';
import { createKmsClient } from '../../src/kms/client-factory.js';
import type { LocalKms } from '../../src/localkms/index.js';

/**
 * An SDK client of `accountId` against a local KMS, signing with the access key the local KMS issued
 * for that account (fetched lazily, as the SDK resolves credentials), exactly like a customer's client.
 */
export function localKmsClient(
  kms: Pick<LocalKms, 'url' | 'credentialsFor'>,
  accountId: string,
  opts: { region?: string; maxAttempts?: number; endpoint?: string } = {},
): KMS {
  return createKmsClient({
    endpoint: opts.endpoint ?? kms.url,
    region: opts.region ?? 'us-east-1',
    credentials: () => kms.credentialsFor(accountId),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  });
}

const bytes = (d: string | ArrayBuffer | ArrayBufferView) =>
  typeof d === 'string' ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** The signer's hash interface on node:crypto; the client side signs with its own, independent of the server's. */
export class NodeSha256 {
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

/**
 * A raw JSON 1.1 POST to a local KMS, SigV4-signed with `credentials` the way the SDK signs (for
 * wire-level tests); `override` replaces headers after signing (to break the signature on purpose).
 */
export async function signedKmsPost(
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  target: string | undefined,
  body: string,
  override: Record<string, string> = {},
  region = 'us-east-1',
): Promise<Response> {
  const { host, pathname } = new URL(url);
  const headers: Record<string, string> = { host, 'content-type': 'application/x-amz-json-1.1', ...(target ? { 'x-amz-target': target } : {}) };
  const signer = new SignatureV4({ credentials, region, service: 'kms', sha256: NodeSha256 });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: host, path: pathname || '/', headers, body });
  const sent: Record<string, string> = { ...(signed.headers as Record<string, string>), ...override };
  // node:http rather than fetch: fetch would not send a Host header of our choosing.
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: sent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const headers = Object.entries(res.headers).map(([k, v]) => [k, String(v)] as [string, string]);
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers })));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
