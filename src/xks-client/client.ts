import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../crypto/sha256-hash.js';
import {
  ciphertextDataIntegrityValue,
  decodeBase64Strict,
  normalizeUriPath,
  xksPath,
  XKS_LIMITS,
  XKS_SIGV4_SERVICE,
  type EkmHealthStatus,
  type GetHealthStatusResponse,
  type KeyStatus,
  type RequestMetadata,
  type XksOperation,
} from '../xks-protocol/index.js';
import { classifyTransportError, classifyXksErrorResponse, XksError } from './errors.js';

/**
 * A client of the XKS proxy API: signs each request with SigV4 (@smithy/signature-v4, service
 * `kms-xks-proxy`), always asks Encrypt for a SHA_256 ciphertext data integrity value and refuses
 * a ciphertext whose value does not match, checks every answer's shape and sizes, and turns every
 * failure into an XksError with a kind.
 */

export interface XksClientOptions {
  /** The key store's URI prefix: `https://host[:port][/<path-prefix>]/kms/xks/v1`. */
  url: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Region in the SigV4 credential scope (the specification: the region the caller runs in). */
  region?: string;
  /** PEM CA bundle trusted instead of the system's (a proxy with a private CA). */
  ca?: string | Buffer;
  /** Client certificate and key for mutual TLS. */
  clientCert?: { cert: string | Buffer; key: string | Buffer };
  /** Per-request timeout; default 5000 ms. */
  timeoutMs?: number;
  /** requestMetadata fields sent with every call (e.g. awsPrincipalArn); per-call fields win. */
  requestMetadata?: Partial<RequestMetadata>;
  /** Name resolution for each connection (e.g. one that refuses internal addresses); default dns.lookup. */
  lookup?: LookupFunction;
}

export interface XksKeyMetadata {
  keySpec: string;
  keyUsage: string[];
  keyStatus: KeyStatus;
}

export interface XksCiphertext {
  ciphertext: Buffer;
  initializationVector: Buffer;
  authenticationTag: Buffer;
  ciphertextMetadata?: Buffer;
}

export type XksHealth = GetHealthStatusResponse;

const HEALTH: readonly EkmHealthStatus[] = ['ACTIVE', 'DEGRADED', 'UNAVAILABLE'];

export function createXksClient(opts: XksClientOptions) {
  let base: URL;
  try {
    base = new URL(opts.url);
  } catch {
    throw new RangeError(`XKS proxy URL ${JSON.stringify(opts.url)} is not a URL`);
  }
  const uriPath = normalizeUriPath(base.pathname === '/' ? '' : base.pathname);
  if ((base.protocol !== 'https:' && base.protocol !== 'http:') || !uriPath || base.search || base.hash) {
    throw new RangeError(`XKS proxy URL ${opts.url} must be http(s)://host[:port][/<path-prefix>]/kms/xks/v1`);
  }
  const secure = base.protocol === 'https:';
  const port = base.port ? Number(base.port) : secure ? 443 : 80;
  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const agent = secure
    ? new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.clientCert?.cert, key: opts.clientCert?.key, minVersion: 'TLSv1.2' })
    : new http.Agent({ keepAlive: true });
  const signer = new SignatureV4({
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
    region: opts.region ?? 'us-east-1',
    service: XKS_SIGV4_SERVICE,
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const timeoutMs = opts.timeoutMs ?? 5000;

  function metadata(operation: XksOperation, extra?: Partial<RequestMetadata>): RequestMetadata {
    return { kmsOperation: operation, kmsRequestId: randomUUID(), ...opts.requestMetadata, ...extra };
  }

  async function call(operation: XksOperation, keyId: string | undefined, payload: object): Promise<Record<string, unknown>> {
    const path = xksPath(uriPath!, operation, keyId);
    const body = JSON.stringify(payload);
    const signed = await signer.sign({
      method: 'POST',
      protocol: base.protocol,
      hostname,
      port,
      path,
      query: {},
      headers: { host: base.host, 'content-type': 'application/json' },
      body,
    });
    const { status, text } = await send(path, signed.headers as Record<string, string>, body);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status < 200 || status >= 300) throw classifyXksErrorResponse(status, json);
    if (!json || typeof json !== 'object') throw new XksError('invalid-response', `XKS proxy answered ${operation} with a body that is not a JSON object`, { httpStatus: status });
    return json as Record<string, unknown>;
  }

  function send(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        { method: 'POST', hostname, port, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent, timeout: timeoutMs, ...(opts.lookup ? { lookup: opts.lookup } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.once('error', (err) => reject(classifyTransportError(err)));
        },
      );
      req.once('timeout', () => req.destroy(new XksError('timeout', `XKS proxy did not answer within ${timeoutMs} ms`)));
      req.once('error', (err) => reject(classifyTransportError(err)));
      req.end(body);
    });
  }

  function invalid(operation: XksOperation, what: string): never {
    throw new XksError('invalid-response', `XKS proxy answered ${operation} with ${what}`);
  }

  function bytesField(operation: XksOperation, json: Record<string, unknown>, field: string, optional = false): Buffer | undefined {
    const value = json[field];
    if (value === undefined && optional) return undefined;
    const bytes = typeof value === 'string' ? decodeBase64Strict(value) : undefined;
    if (!bytes) invalid(operation, `${field} missing or not Base64`);
    return bytes;
  }

  return {
    async getHealthStatus(extra?: Partial<RequestMetadata>): Promise<XksHealth> {
      const json = await call('GetHealthStatus', undefined, { requestMetadata: { kmsRequestId: randomUUID(), kmsOperation: 'KmsHealthCheck', ...extra } });
      const fleet = json.ekmFleetDetails;
      if (!Number.isInteger(json.xksProxyFleetSize) || (json.xksProxyFleetSize as number) < 1) invalid('GetHealthStatus', 'no positive integer xksProxyFleetSize');
      if (!Array.isArray(fleet) || fleet.length < 1 || fleet.length > XKS_LIMITS.maxEkmFleetEntries) invalid('GetHealthStatus', 'ekmFleetDetails not 1-10 entries');
      for (const entry of fleet as { healthStatus?: unknown }[]) {
        if (!HEALTH.includes(entry?.healthStatus as EkmHealthStatus)) invalid('GetHealthStatus', `healthStatus ${String(entry?.healthStatus)}`);
      }
      return json as unknown as XksHealth;
    },

    async getKeyMetadata(keyId: string, extra?: Partial<RequestMetadata>): Promise<XksKeyMetadata> {
      const json = await call('GetKeyMetadata', keyId, { requestMetadata: metadata('GetKeyMetadata', extra) });
      const { keySpec, keyUsage, keyStatus } = json;
      if (typeof keySpec !== 'string') invalid('GetKeyMetadata', 'no keySpec');
      if (!Array.isArray(keyUsage) || keyUsage.length > XKS_LIMITS.maxKeyUsageValues || keyUsage.some((u) => typeof u !== 'string')) {
        invalid('GetKeyMetadata', 'keyUsage that is not a list of at most 10 strings');
      }
      if (keyStatus !== 'ENABLED' && keyStatus !== 'DISABLED') invalid('GetKeyMetadata', `keyStatus ${String(keyStatus)}`);
      return { keySpec, keyUsage: keyUsage as string[], keyStatus };
    },

    /** AES-GCM under the external key; the answer is checked against its SHA_256 integrity value before it is returned. */
    async encrypt(keyId: string, input: { plaintext: Buffer; aad?: Buffer; requestMetadata?: Partial<RequestMetadata> }): Promise<XksCiphertext> {
      const json = await call('Encrypt', keyId, {
        requestMetadata: metadata('Encrypt', input.requestMetadata),
        plaintext: input.plaintext.toString('base64'),
        encryptionAlgorithm: 'AES_GCM',
        ...(input.aad ? { additionalAuthenticatedData: input.aad.toString('base64') } : {}),
        ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
      });
      const out: XksCiphertext = {
        ciphertext: bytesField('Encrypt', json, 'ciphertext')!,
        initializationVector: bytesField('Encrypt', json, 'initializationVector')!,
        authenticationTag: bytesField('Encrypt', json, 'authenticationTag')!,
      };
      const ciphertextMetadata = bytesField('Encrypt', json, 'ciphertextMetadata', true);
      if (ciphertextMetadata) out.ciphertextMetadata = ciphertextMetadata;
      const cdiv = bytesField('Encrypt', json, 'ciphertextDataIntegrityValue', true);
      if (out.ciphertext.length !== input.plaintext.length) invalid('Encrypt', `a ciphertext of ${out.ciphertext.length} bytes for ${input.plaintext.length} bytes of plaintext`);
      if (!XKS_LIMITS.ivBytes.includes(out.initializationVector.length)) invalid('Encrypt', `an initializationVector of ${out.initializationVector.length} bytes`);
      if (out.authenticationTag.length !== XKS_LIMITS.tagBytes) invalid('Encrypt', `an authenticationTag of ${out.authenticationTag.length} bytes`);
      if (ciphertextMetadata && ciphertextMetadata.length > XKS_LIMITS.maxCiphertextMetadataBytes) invalid('Encrypt', 'ciphertextMetadata over 20 bytes');
      const expected = ciphertextDataIntegrityValue({
        aad: input.aad,
        ciphertextMetadata,
        iv: out.initializationVector,
        ciphertext: out.ciphertext,
        tag: out.authenticationTag,
      });
      if (!cdiv || cdiv.length !== expected.length || !timingSafeEqual(cdiv, expected)) {
        throw new XksError('integrity', 'The ciphertext the XKS proxy returned does not match its ciphertextDataIntegrityValue (or it sent none): not stored');
      }
      return out;
    },

    async decrypt(keyId: string, input: XksCiphertext & { aad?: Buffer; requestMetadata?: Partial<RequestMetadata> }): Promise<Buffer> {
      const json = await call('Decrypt', keyId, {
        requestMetadata: metadata('Decrypt', input.requestMetadata),
        ciphertext: input.ciphertext.toString('base64'),
        ...(input.ciphertextMetadata ? { ciphertextMetadata: input.ciphertextMetadata.toString('base64') } : {}),
        encryptionAlgorithm: 'AES_GCM',
        ...(input.aad ? { additionalAuthenticatedData: input.aad.toString('base64') } : {}),
        initializationVector: input.initializationVector.toString('base64'),
        authenticationTag: input.authenticationTag.toString('base64'),
      });
      const plaintext = bytesField('Decrypt', json, 'plaintext')!;
      if (plaintext.length !== input.ciphertext.length) invalid('Decrypt', `${plaintext.length} bytes of plaintext for ${input.ciphertext.length} bytes of ciphertext`);
      return plaintext;
    },

    close(): void {
      agent.destroy();
    },
  };
}

export type XksClient = ReturnType<typeof createXksClient>;
