import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openXksProxy, type XksCredentials, type XksProxy, type XksServer } from '../src/xks/index.js';
import { createXksClient, isXksError, KIND_OF_ERROR_NAME, classifyXksErrorResponse, type XksClient, type XksFailureKind } from '../src/xks-client/index.js';
import { XKS_ERROR_STATUS, type XksErrorName } from '../src/xks-protocol/index.js';
import { tempDir } from './support/databases.js';
import { freePort } from './support/process.js';
import { KMS_KEY_ARN, PRINCIPAL, rawXks, requestMetadata } from './support/xks.js';

/**
 * The reference XKS proxy against the specification: status codes and error names, 405 on GET,
 * sizes, CDIV, AAD binding, SigV4 both ways, key status and usage. The proxy runs in-process on a
 * free port; every call goes over HTTP, through the client library or as a raw signed request.
 */

let dataDir: string;
let proxy: XksProxy;
let server: XksServer;
let acme: XksCredentials;
let other: XksCredentials;
let client: XksClient;
const logs: Record<string, unknown>[] = [];

const ACME = '/acme/kms/xks/v1';
const keyPath = (keyId: string, op: string, uriPath = ACME) => `${uriPath}/keys/${keyId}/${op}`;

function clientFor(creds: XksCredentials, uriPath = creds.uriPrefix, overrides: Partial<XksCredentials> = {}): XksClient {
  return createXksClient({
    url: `${server.url}${uriPath}`,
    accessKeyId: overrides.accessKeyId ?? creds.accessKeyId,
    secretAccessKey: overrides.secretAccessKey ?? creds.secretAccessKey,
    requestMetadata: { awsPrincipalArn: PRINCIPAL, kmsKeyArn: KMS_KEY_ARN },
  });
}

async function expectKind(promise: Promise<unknown>, kind: XksFailureKind, errorName?: XksErrorName): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isXksError(err), String(err)).toBe(true);
  expect((err as { kind: string }).kind, (err as Error).message).toBe(kind);
  if (errorName) {
    expect((err as { errorName?: string }).errorName).toBe(errorName);
    expect((err as { httpStatus?: number }).httpStatus).toBe(XKS_ERROR_STATUS[errorName]);
  }
}

const signedBy = (creds: XksCredentials) => ({ credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey } });

beforeAll(async () => {
  dataDir = tempDir('convault-xks-');
  proxy = await openXksProxy({ dataDir });
  server = await proxy.serve({ host: '127.0.0.1', port: 0, log: (e) => logs.push(e as unknown as Record<string, unknown>) });
  acme = await proxy.credentials.credentialsFor('/acme');
  other = await proxy.credentials.credentialsFor('/other/kms/xks/v1');
  for (const [id, usage] of [
    ['k-both', 'encrypt,decrypt'],
    ['k-enc', 'encrypt'],
    ['k-dec', 'decrypt'],
    ['k-none', 'none'],
    ['k-disabled', 'encrypt,decrypt'],
  ] as const) {
    await proxy.keys.createKey(id, usage);
  }
  await proxy.keys.setStatus('k-disabled', 'DISABLED');
  client = clientFor(acme);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  await proxy?.close();
});

describe('credentials', () => {
  it('issues one set per key store, in the formats the specification requires, the same on every later call', async () => {
    expect(acme.uriPrefix).toBe(ACME);
    for (const c of [acme, other]) {
      expect(c.accessKeyId).toMatch(/^[A-Z2-7]{20,30}$/);
      expect(c.secretAccessKey).toMatch(/^[A-Za-z0-9/+=]{43,64}$/);
    }
    expect(other.accessKeyId).not.toBe(acme.accessKeyId);
    expect(await proxy.credentials.credentialsFor('acme/kms/xks/v1')).toEqual(acme);
  });

  it('keeps secrets and key material out of xks.db in the clear, under a 0600 root key file', () => {
    const db = fs.readFileSync(path.join(dataDir, 'xks.db'));
    const wal = fs.existsSync(path.join(dataDir, 'xks.db-wal')) ? fs.readFileSync(path.join(dataDir, 'xks.db-wal')) : Buffer.alloc(0);
    for (const bytes of [db, wal]) {
      expect(bytes.includes(Buffer.from(acme.secretAccessKey))).toBe(false);
      expect(bytes.includes(Buffer.from(other.secretAccessKey))).toBe(false);
    }
    expect(fs.statSync(path.join(dataDir, 'xks-root.key')).mode & 0o777).toBe(0o600);
  });
});

describe('GetHealthStatus', () => {
  it('answers with the fleet and a deep ACTIVE check', async () => {
    const health = await client.getHealthStatus();
    expect(health.xksProxyFleetSize).toBe(1);
    expect(health.xksProxyVendor).toBe('convault');
    expect(health.ekmFleetDetails).toEqual([{ id: 'xks.db', model: expect.stringContaining('convault'), healthStatus: 'ACTIVE' }]);
  });
});

describe('GetKeyMetadata', () => {
  it('reports spec, usage and status', async () => {
    expect(await client.getKeyMetadata('k-both')).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
    expect(await client.getKeyMetadata('k-enc')).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT'], keyStatus: 'ENABLED' });
    expect(await client.getKeyMetadata('k-none')).toEqual({ keySpec: 'AES_256', keyUsage: [], keyStatus: 'ENABLED' });
    expect((await client.getKeyMetadata('k-disabled')).keyStatus).toBe('DISABLED');
  });

  it('404 KeyNotFoundException for a key the proxy does not hold', async () => {
    await expectKind(client.getKeyMetadata('no-such-key'), 'key-not-found', 'KeyNotFoundException');
  });
});

describe('Encrypt and Decrypt', () => {
  it('round-trips with the AAD bound: another AAD, no AAD, or a changed tag is InvalidCiphertextException', async () => {
    const plaintext = Buffer.from('a 32-byte data key, say........!');
    const aad = Buffer.from('org=o-1;dataKey=dk-1');
    const sealed = await client.encrypt('k-both', { plaintext, aad });
    expect(sealed.ciphertext).toHaveLength(plaintext.length);
    expect(sealed.initializationVector).toHaveLength(12);
    expect(sealed.authenticationTag).toHaveLength(16);
    expect(await client.decrypt('k-both', { ...sealed, aad })).toEqual(plaintext);

    await expectKind(client.decrypt('k-both', { ...sealed, aad: Buffer.from('org=o-2;dataKey=dk-1') }), 'invalid-ciphertext', 'InvalidCiphertextException');
    await expectKind(client.decrypt('k-both', { ...sealed }), 'invalid-ciphertext', 'InvalidCiphertextException');
    const tag = Buffer.from(sealed.authenticationTag);
    tag[0] ^= 1;
    await expectKind(client.decrypt('k-both', { ...sealed, authenticationTag: tag, aad }), 'invalid-ciphertext', 'InvalidCiphertextException');
    // Metadata the proxy never produced, or the AAD moved into it, does not authenticate either.
    await expectKind(client.decrypt('k-both', { ...sealed, ciphertextMetadata: aad }), 'invalid-ciphertext', 'InvalidCiphertextException');
    // Another key's ciphertext.
    await expectKind(client.decrypt('k-dec', { ...sealed, aad }), 'invalid-ciphertext', 'InvalidCiphertextException');
  });

  it('returns the CDIV of Appendix C over AAD, IV, ciphertext and tag when asked, and none otherwise', async () => {
    const aad = Buffer.from('context');
    const body = { requestMetadata: requestMetadata('GenerateDataKey'), plaintext: Buffer.from('hello').toString('base64'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad.toString('base64') };
    const withCdiv = await rawXks({ url: server.url, path: keyPath('k-both', 'encrypt'), body: { ...body, ciphertextDataIntegrityValueAlgorithm: 'SHA_256' }, ...signedBy(acme) });
    expect(withCdiv.status).toBe(200);
    expect(withCdiv.headers['content-type']).toBe('application/json');
    const r = withCdiv.json;
    const expected = createHash('sha256')
      .update(aad)
      .update(Buffer.from(r.initializationVector, 'base64'))
      .update(Buffer.from(r.ciphertext, 'base64'))
      .update(Buffer.from(r.authenticationTag, 'base64'))
      .digest('base64');
    expect(r.ciphertextDataIntegrityValue).toBe(expected);
    const without = await rawXks({ url: server.url, path: keyPath('k-both', 'encrypt'), body, ...signedBy(acme) });
    expect(without.status).toBe(200);
    expect(without.json.ciphertextDataIntegrityValue).toBeUndefined();
  });

  it('accepts 4300 bytes of plaintext and 8192 of AAD; one byte more is UnsupportedOperationException', async () => {
    const max = Buffer.alloc(4300, 7);
    const aad = Buffer.alloc(8192, 9);
    const sealed = await client.encrypt('k-both', { plaintext: max, aad });
    expect(await client.decrypt('k-both', { ...sealed, aad })).toEqual(max);
    await expectKind(client.encrypt('k-both', { plaintext: Buffer.alloc(4301) }), 'unsupported', 'UnsupportedOperationException');
    await expectKind(client.encrypt('k-both', { plaintext: Buffer.alloc(1), aad: Buffer.alloc(8193) }), 'unsupported', 'UnsupportedOperationException');
    await expectKind(client.decrypt('k-both', { ...sealed, ciphertext: Buffer.alloc(4301) }), 'unsupported', 'UnsupportedOperationException');
  });

  it('refuses IVs, tags and ciphertext metadata of the wrong size with InvalidCiphertextException', async () => {
    const sealed = await client.encrypt('k-both', { plaintext: Buffer.from('x') });
    await expectKind(client.decrypt('k-both', { ...sealed, initializationVector: Buffer.alloc(13) }), 'invalid-ciphertext', 'InvalidCiphertextException');
    await expectKind(client.decrypt('k-both', { ...sealed, initializationVector: Buffer.alloc(16) }), 'invalid-ciphertext', 'InvalidCiphertextException');
    await expectKind(client.decrypt('k-both', { ...sealed, authenticationTag: Buffer.alloc(15) }), 'invalid-ciphertext', 'InvalidCiphertextException');
    await expectKind(client.decrypt('k-both', { ...sealed, ciphertextMetadata: Buffer.alloc(21) }), 'invalid-ciphertext', 'InvalidCiphertextException');
  });

  it('disabled key: InvalidStateException for Encrypt and Decrypt, working again once enabled', async () => {
    await proxy.keys.setStatus('k-disabled', 'ENABLED');
    const sealed = await client.encrypt('k-disabled', { plaintext: Buffer.from('kept') });
    await proxy.keys.setStatus('k-disabled', 'DISABLED');
    await expectKind(client.encrypt('k-disabled', { plaintext: Buffer.from('x') }), 'invalid-state', 'InvalidStateException');
    await expectKind(client.decrypt('k-disabled', sealed), 'invalid-state', 'InvalidStateException');
    await proxy.keys.setStatus('k-disabled', 'ENABLED');
    expect((await client.decrypt('k-disabled', sealed)).toString()).toBe('kept');
    await proxy.keys.setStatus('k-disabled', 'DISABLED');
  });

  it('usage restrictions: InvalidKeyUsageException for the operation a key does not allow', async () => {
    const forDec = await client.encrypt('k-enc', { plaintext: Buffer.from('only encrypt') });
    await expectKind(client.decrypt('k-enc', forDec), 'invalid-key-usage', 'InvalidKeyUsageException');
    await expectKind(client.encrypt('k-dec', { plaintext: Buffer.from('x') }), 'invalid-key-usage', 'InvalidKeyUsageException');
    await expectKind(client.encrypt('k-none', { plaintext: Buffer.from('x') }), 'invalid-key-usage', 'InvalidKeyUsageException');
    await expectKind(client.decrypt('k-none', forDec), 'invalid-key-usage', 'InvalidKeyUsageException');
    await expectKind(client.encrypt('no-such-key', { plaintext: Buffer.from('x') }), 'key-not-found', 'KeyNotFoundException');
  });
});

describe('malformed requests', () => {
  const valid = () => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: 'aGVsbG8=', encryptionAlgorithm: 'AES_GCM' });

  it.each([
    ['not JSON', '{"requestMetadata":'],
    ['no requestMetadata', (() => { const b: Record<string, unknown> = valid(); delete b.requestMetadata; return b; })()],
    ['no awsPrincipalArn', { ...valid(), requestMetadata: { kmsOperation: 'Encrypt', kmsRequestId: 'r', kmsKeyArn: KMS_KEY_ARN } }],
    ['no kmsKeyArn on Encrypt', { ...valid(), requestMetadata: { awsPrincipalArn: PRINCIPAL, kmsOperation: 'Encrypt', kmsRequestId: 'r' } }],
    ['an ARN over 2048 characters', { ...valid(), requestMetadata: { ...requestMetadata('Encrypt'), awsPrincipalArn: `arn:${'a'.repeat(2045)}` } }],
    ['another algorithm', { ...valid(), encryptionAlgorithm: 'AES_CBC' }],
    ['another CDIV algorithm', { ...valid(), ciphertextDataIntegrityValueAlgorithm: 'SHA_512' }],
    ['plaintext not Base64', { ...valid(), plaintext: 'hello world' }],
    ['empty plaintext', { ...valid(), plaintext: '' }],
    ['AAD not Base64', { ...valid(), additionalAuthenticatedData: '***' }],
  ])('%s → 400 ValidationException', async (_name, body) => {
    const res = await rawXks({ url: server.url, path: keyPath('k-both', 'encrypt'), body, ...signedBy(acme) });
    expect(res.status).toBe(400);
    expect(res.json.errorName).toBe('ValidationException');
    expect(res.json.errorMessage).toMatch(/^[\x20-\x7e]{1,511}$/);
  });

  it('accepts an ARN of 2048 characters and a kmsOperation it has never heard of', async () => {
    const body = { ...valid(), requestMetadata: { ...requestMetadata('BulkEncrypt'), awsPrincipalArn: `arn:${'a'.repeat(2044)}` } };
    const res = await rawXks({ url: server.url, path: keyPath('k-both', 'encrypt'), body, ...signedBy(acme) });
    expect(res.status).toBe(200);
  });

  it('a body over 64 KiB is UnsupportedOperationException', async () => {
    const res = await rawXks({ url: server.url, path: keyPath('k-both', 'encrypt'), body: { ...valid(), padding: 'x'.repeat(70_000) }, ...signedBy(acme) });
    expect(res.status).toBe(501);
    expect(res.json.errorName).toBe('UnsupportedOperationException');
  });

  it('405 Method Not Allowed for GET on each of the four URIs, unauthenticated', async () => {
    for (const p of [`${ACME}/health`, keyPath('k-both', 'metadata'), keyPath('k-both', 'encrypt'), keyPath('k-both', 'decrypt')]) {
      const res = await rawXks({ url: server.url, path: p, method: 'GET' });
      expect(res.status, p).toBe(405);
      expect(res.headers.allow).toBe('POST');
    }
  });

  it('404 InvalidUriPathException for paths that are none of the four APIs', async () => {
    for (const p of ['/', '/acme/kms/xks/v2/health', keyPath('k-both', 'sign'), '/acme/kms/xks/v1/keys/bad%20id/encrypt']) {
      const res = await rawXks({ url: server.url, path: p, body: valid(), ...signedBy(acme) });
      expect(res.status, p).toBe(404);
      expect(res.json.errorName, p).toBe('InvalidUriPathException');
    }
  });

  it('a load balancer health check at GET /healthz', async () => {
    const res = await rawXks({ url: server.url, path: '/healthz', method: 'GET' });
    expect(res.status).toBe(200);
  });
});

describe('SigV4', () => {
  const health = { requestMetadata: { kmsRequestId: 'r-1', kmsOperation: 'KmsHealthCheck' } };

  it('the client signs what the proxy verifies; a wrong secret is AuthenticationFailedException', async () => {
    const wrong = clientFor(acme, ACME, { secretAccessKey: other.secretAccessKey });
    await expectKind(wrong.getHealthStatus(), 'authentication', 'AuthenticationFailedException');
    await expectKind(wrong.encrypt('k-both', { plaintext: Buffer.from('x') }), 'authentication', 'AuthenticationFailedException');
    wrong.close();
  });

  it('credentials of one key store are refused under another URI prefix, in both directions', async () => {
    const acmeUnderOther = clientFor(acme, '/other/kms/xks/v1');
    await expectKind(acmeUnderOther.getHealthStatus(), 'authentication', 'AuthenticationFailedException');
    const otherUnderAcme = clientFor(other, ACME);
    await expectKind(otherUnderAcme.getKeyMetadata('k-both'), 'authentication', 'AuthenticationFailedException');
    const otherOwn = clientFor(other);
    expect((await otherOwn.getHealthStatus()).xksProxyFleetSize).toBe(1);
    for (const c of [acmeUnderOther, otherUnderAcme, otherOwn]) c.close();
  });

  it.each([
    ['no Authorization header', { credentials: undefined }],
    ['an unknown access key id', { credentials: { accessKeyId: 'AAAAAAAAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(44) } }],
    ['another service name', { service: 'kms' }],
    ['a timestamp 6 minutes old', { signingDate: new Date(Date.now() - 6 * 60_000) }],
    ['a timestamp 6 minutes ahead', { signingDate: new Date(Date.now() + 6 * 60_000) }],
    ['a body changed after signing', { tamperBody: JSON.stringify({ ...health, extra: 1 }) }],
    ['host not signed', { unsignedHost: true }],
  ])('%s → 401 AuthenticationFailedException', async (_name, opts) => {
    const res = await rawXks({ url: server.url, path: `${ACME}/health`, body: health, ...signedBy(acme), ...opts });
    expect(res.status).toBe(401);
    expect(res.json.errorName).toBe('AuthenticationFailedException');
  });

  it('a timestamp 4 minutes old still passes', async () => {
    const res = await rawXks({ url: server.url, path: `${ACME}/health`, body: health, ...signedBy(acme), signingDate: new Date(Date.now() - 4 * 60_000) });
    expect(res.status).toBe(200);
  });
});

describe('logging', () => {
  it('logs kmsRequestId and the outcome of each request, never plaintext or secrets', async () => {
    const marker = Buffer.from('plaintext-marker-4f1e');
    await client.encrypt('k-both', { plaintext: marker, requestMetadata: { kmsRequestId: 'log-check-1' } });
    const entry = logs.find((e) => e.kmsRequestId === 'log-check-1');
    expect(entry).toMatchObject({ operation: 'Encrypt', keyId: 'k-both', status: 200, kmsOperation: 'Encrypt', awsPrincipalArn: PRINCIPAL });
    const all = JSON.stringify(logs);
    expect(all).not.toContain(marker.toString('base64'));
    expect(all).not.toContain(acme.secretAccessKey);
  });
});

describe('client', () => {
  it('refuses an Encrypt answer whose ciphertext does not match its CDIV (a bit flipped on the way)', async () => {
    // A relay that flips one bit of the ciphertext in Encrypt answers: the integrity value no longer matches.
    const relayPort = await freePort();
    const target = new URL(server.url);
    const relay = http.createServer((req, res) => {
      const up = http.request({ hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          let text = Buffer.concat(chunks).toString();
          if (req.url?.endsWith('/encrypt') && upRes.statusCode === 200) {
            const json = JSON.parse(text);
            const ct = Buffer.from(json.ciphertext, 'base64');
            ct[0] ^= 0x01;
            json.ciphertext = ct.toString('base64');
            text = JSON.stringify(json);
          }
          res.writeHead(upRes.statusCode ?? 500, { 'content-type': 'application/json' });
          res.end(text);
        });
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => relay.listen(relayPort, '127.0.0.1', resolve));
    const viaRelay = createXksClient({ url: `http://127.0.0.1:${relayPort}${ACME}`, accessKeyId: acme.accessKeyId, secretAccessKey: acme.secretAccessKey, requestMetadata: { awsPrincipalArn: PRINCIPAL, kmsKeyArn: KMS_KEY_ARN } });
    try {
      await expectKind(viaRelay.encrypt('k-both', { plaintext: Buffer.from('data key'), aad: Buffer.from('a') }), 'integrity');
      expect((await viaRelay.getKeyMetadata('k-both')).keyStatus).toBe('ENABLED');
    } finally {
      viaRelay.close();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it('classifies every error name of the specification, and answers without one as invalid-response', () => {
    for (const [name, status] of Object.entries(XKS_ERROR_STATUS)) {
      const err = classifyXksErrorResponse(status, { errorName: name, errorMessage: 'm' });
      expect(err.kind).toBe(KIND_OF_ERROR_NAME[name as XksErrorName]);
      expect(err.errorName).toBe(name);
    }
    expect(new Set(Object.values(KIND_OF_ERROR_NAME)).size).toBe(Object.keys(XKS_ERROR_STATUS).length);
    expect(classifyXksErrorResponse(502, undefined).kind).toBe('invalid-response');
    expect(classifyXksErrorResponse(400, { errorName: 'SomethingElse' }).kind).toBe('invalid-response');
    expect(classifyXksErrorResponse(429, { errorName: 'ThrottlingException' }).retryable).toBe(true);
    expect(classifyXksErrorResponse(401, { errorName: 'AuthenticationFailedException' }).retryable).toBe(false);
  });

  it('a proxy that is down is unreachable; one that never answers times out', async () => {
    const closedPort = await freePort();
    const down = createXksClient({ url: `http://127.0.0.1:${closedPort}${ACME}`, accessKeyId: acme.accessKeyId, secretAccessKey: acme.secretAccessKey });
    await expectKind(down.getHealthStatus(), 'unreachable');
    down.close();
    const silentPort = await freePort();
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
    const slow = createXksClient({ url: `http://127.0.0.1:${silentPort}${ACME}`, accessKeyId: acme.accessKeyId, secretAccessKey: acme.secretAccessKey, timeoutMs: 300 });
    try {
      await expectKind(slow.getHealthStatus(), 'timeout');
    } finally {
      slow.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('credential rotation', () => {
  it('a new set works alongside the old until the old is revoked; then the old is AuthenticationFailedException', async () => {
    const first = await proxy.credentials.credentialsFor('/rotating');
    const second = await proxy.credentials.rotate('/rotating');
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    expect(await proxy.credentials.credentialsFor('/rotating')).toEqual(second);
    const oldClient = clientFor(first);
    const newClient = clientFor(second);
    try {
      expect((await oldClient.getHealthStatus()).xksProxyFleetSize).toBe(1);
      expect((await newClient.getHealthStatus()).xksProxyFleetSize).toBe(1);
      expect(await proxy.credentials.revoke('/rotating', first.accessKeyId)).toEqual({ uriPrefix: '/rotating/kms/xks/v1', revoked: first.accessKeyId, remaining: [second.accessKeyId] });
      await expectKind(oldClient.getHealthStatus(), 'authentication', 'AuthenticationFailedException');
      expect((await newClient.getHealthStatus()).xksProxyFleetSize).toBe(1);
      // An access key id is revoked only under its own key store.
      await expect(proxy.credentials.revoke('/acme', second.accessKeyId)).rejects.toThrow(/is not a credential of \/acme\/kms\/xks\/v1/);
    } finally {
      oldClient.close();
      newClient.close();
    }
  });
});

describe('mutual TLS', () => {
  const KMS_CN = 'cks.kms.us-east-1.amazonaws.com';

  function openssl(...args: string[]): void {
    execFileSync('openssl', args, { stdio: 'ignore' });
  }

  it('requires a client certificate from the configured CA with the configured subject CN', async () => {
    const dir = tempDir('convault-xks-mtls-');
    const f = (name: string) => path.join(dir, name);
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=test client CA');
    for (const [name, cn] of [['kms', KMS_CN], ['stranger', 'someone.example.com']]) {
      openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
      openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1');
    }
    const mtls = await proxy.serve({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: fs.readFileSync(f('server.pem')), key: fs.readFileSync(f('server.key')), clientCa: fs.readFileSync(f('ca.pem')), clientCommonName: KMS_CN },
    });
    const make = (who?: string) =>
      createXksClient({
        url: `${mtls.url}${ACME}`,
        accessKeyId: acme.accessKeyId,
        secretAccessKey: acme.secretAccessKey,
        ca: fs.readFileSync(f('server.pem')),
        timeoutMs: 5000,
        ...(who ? { clientCert: { cert: fs.readFileSync(f(`${who}.pem`)), key: fs.readFileSync(f(`${who}.key`)) } } : {}),
      });
    const [kms, stranger, anonymous] = [make('kms'), make('stranger'), make()];
    try {
      expect((await kms.getHealthStatus()).xksProxyFleetSize).toBe(1);
      for (const refused of [stranger, anonymous]) {
        const err = await refused.getHealthStatus().catch((e: unknown) => e);
        expect(isXksError(err), String(err)).toBe(true);
        expect(['tls', 'unreachable']).toContain((err as { kind: string }).kind);
      }
    } finally {
      for (const c of [kms, stranger, anonymous]) c.close();
      await mtls.close();
    }
  });
});
