import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../crypto/sha256-hash.js';
import { XKS_MAX_CLOCK_SKEW_MS, XKS_SIGV4_SERVICE } from '../xks-protocol/index.js';
import { XksProxyError } from './errors.js';

/**
 * SigV4 verification as the specification's Appendix A describes it: the access key id names the
 * secret, the secret belongs to exactly one key store (URI path), the signature covers at least
 * host and x-amz-date, the timestamp is within 5 minutes, and the recomputed signature matches in
 * constant time. Every failure is AuthenticationFailedException; the message says which check
 * failed but never whether an access key id exists under another key store.
 */

export interface SignedRequest {
  method: string;
  pathname: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type SecretLookup = (accessKeyId: string, uriPath: string) => Promise<string | undefined>;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$/;

function refuse(message: string): never {
  throw new XksProxyError('AuthenticationFailedException', message);
}

export async function verifyXksSignature(req: SignedRequest, uriPath: string, lookup: SecretLookup, now = Date.now()): Promise<string> {
  const header = oneHeader(req.headers.authorization);
  if (!header) refuse('Missing Authorization header: XKS requests are signed with AWS SigV4');
  const m = AUTHORIZATION.exec(header.trim());
  if (!m) refuse('Authorization header is not AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/kms-xks-proxy/aws4_request, SignedHeaders=..., Signature=...');
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = m as unknown as string[];
  if (service !== XKS_SIGV4_SERVICE) refuse(`Credential scope names service ${service}; XKS requests are signed for ${XKS_SIGV4_SERVICE}`);
  const signedHeaders = signedHeaderList!.split(';');
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) refuse('SignedHeaders must include host and x-amz-date');

  const amzDate = oneHeader(req.headers['x-amz-date']);
  const signingDate = amzDate === undefined ? undefined : parseAmzDate(amzDate);
  if (!signingDate || !amzDate!.startsWith(scopeDate!)) refuse('X-Amz-Date is missing, malformed, or not the credential scope date');
  if (Math.abs(now - signingDate.getTime()) > XKS_MAX_CLOCK_SKEW_MS) refuse(`X-Amz-Date ${amzDate} is more than 5 minutes from the proxy's clock`);

  const secret = await lookup(accessKeyId!, uriPath);
  if (secret === undefined) refuse(`Access key id ${accessKeyId} is not a credential of key store ${uriPath}`);

  // A payload hash header replaces the body in the signature, so it has to be the body's hash.
  const payloadHash = oneHeader(req.headers['x-amz-content-sha256']);
  if (payloadHash !== undefined && payloadHash !== createHash('sha256').update(req.body).digest('hex')) {
    refuse('x-amz-content-sha256 does not match the request body');
  }
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = oneHeader(req.headers[name]);
    if (value === undefined) refuse(`Signed header ${name} is not in the request`);
    headers[name] = value;
  }
  const signer = new SignatureV4({ credentials: { accessKeyId: accessKeyId!, secretAccessKey: secret }, region: region!, service: service!, sha256: NodeSha256, applyChecksum: false });
  const expected = await signer.sign(
    { method: req.method, protocol: 'https:', hostname: headers.host!, path: req.pathname, query: {}, headers, body: req.body },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  const computed = /Signature=([0-9a-f]{64})$/.exec(String(expected.headers.authorization ?? ''))?.[1] ?? '';
  if (computed.length !== signature!.length || !timingSafeEqual(Buffer.from(computed), Buffer.from(signature!))) {
    refuse('The request signature does not match: check the secret access key of this access key id');
  }
  return accessKeyId!;
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

function oneHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
