import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../crypto/sha256-hash.js';
import { KmsError } from './errors.js';
import type { Principal, PrincipalEntry } from './principals.js';

/**
 * Identifies the caller from the SigV4 `Authorization` header: the access key id picks the principal,
 * the credential scope gives the region, and the signature is recomputed with the SDK's own signer
 * and compared in constant time. Only a principal without a secret — which exists solely in the
 * insecure development mode — is trusted unverified.
 */

/** Finds the principal (and its secret) behind an access key id; undefined → unknown caller. */
export type PrincipalResolver = (accessKeyId: string) => Promise<PrincipalEntry | undefined> | PrincipalEntry | undefined;

export interface AuthenticatedCaller extends Principal {
  accessKeyId: string;
  region: string;
  signatureVerified: boolean;
}

export interface SignedRequest {
  method: string;
  /** Path and query as received, e.g. `/`. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$/;
/** AWS rejects requests whose X-Amz-Date is more than 15 minutes off. */
const MAX_SKEW_MS = 15 * 60 * 1000;

export function parseAuthorization(header: string | undefined): ParsedAuthorization {
  if (!header) throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH.exec(header.trim());
  if (!m) {
    throw new KmsError(
      'IncompleteSignatureException',
      'Authorization header must be AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/kms/aws4_request, SignedHeaders=…, Signature=…',
    );
  }
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
  return { accessKeyId: accessKeyId!, date: date!, region: region!, service: service!, signedHeaders: signedHeaders!.split(';'), signature: signature! };
}

export async function authenticate(
  req: SignedRequest,
  resolve: PrincipalResolver,
  wallClock: () => number = Date.now,
): Promise<AuthenticatedCaller> {
  const auth = parseAuthorization(single(req.headers.authorization));
  if (auth.service !== 'kms') {
    throw new KmsError('InvalidSignatureException', `Credential should be scoped to correct service: 'kms'.`);
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(auth.region)) {
    throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${auth.region}'.`);
  }
  const entry = await resolve(auth.accessKeyId);
  if (!entry) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (entry.secretAccessKey !== undefined) await verifySignature(req, auth, entry.secretAccessKey, wallClock());
  return {
    accessKeyId: auth.accessKeyId,
    arn: entry.arn,
    accountId: entry.accountId,
    region: auth.region,
    signatureVerified: entry.secretAccessKey !== undefined,
  };
}

async function verifySignature(req: SignedRequest, auth: ParsedAuthorization, secretAccessKey: string, now: number): Promise<void> {
  const amzDate = single(req.headers['x-amz-date']);
  const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!amzDate || !signingDate || !amzDate.startsWith(auth.date)) {
    throw new KmsError('IncompleteSignatureException', 'X-Amz-Date is missing or does not match the credential scope date.');
  }
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) {
    throw new KmsError('InvalidSignatureException', `Signature expired: ${amzDate} is more than 15 minutes from the server's time.`);
  }
  // A signed payload hash header stands in for the body in the signature, so it must be the body's.
  const payloadHash = single(req.headers['x-amz-content-sha256']);
  if (payloadHash !== undefined && payloadHash !== createHash('sha256').update(req.body).digest('hex')) {
    throw new KmsError('InvalidSignatureException', 'The x-amz-content-sha256 header does not match the request body.');
  }
  // Rebuild the request from exactly the headers the client signed, then sign it ourselves.
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = single(req.headers[name]);
    if (value === undefined) throw new KmsError('InvalidSignatureException', `Signed header ${name} is missing from the request.`);
    headers[name] = value;
  }
  const url = new URL(req.url, 'http://localhost');
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(key);
    query[key] = all.length === 1 ? all[0]! : all;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey },
    region: auth.region,
    service: auth.service,
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: headers.host ?? 'localhost', path: url.pathname, query, headers, body: req.body },
    { signingDate, signableHeaders: new Set(auth.signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
  const ok = expected.length === auth.signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature));
  if (!ok) {
    throw new KmsError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
