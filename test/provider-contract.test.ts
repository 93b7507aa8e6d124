import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, EnableKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsClient } from '../src/kms/client-factory.js';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { createKmsGateway } from '../src/kms/kms-gateway.js';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { createAwsKmsProvider } from '../src/providers/aws-kms/index.js';
import { isKeyProviderError, type KeyFailureKind, type KeyProvider } from '../src/providers/key-provider.js';
import { createXksProvider, type XksKeyConfiguration } from '../src/providers/xks/index.js';
import { openXksProxy, type XksCredentials, type XksProxy, type XksRequestLog, type XksServer } from '../src/xks/index.js';
import { sqliteTarget, tempDir } from './support/databases.js';
import { CONTEXT_KEY, CUSTOMER_ACCOUNT, PLATFORM_ACCOUNT, REGION } from './support/customer-keys.js';
import { freePort } from './support/process.js';

/**
 * One contract, every provider: the AWS adapter against the local KMS (the platform signs with a
 * secret the local KMS verifies) and the XKS adapter against the reference XKS proxy. Every call
 * crosses HTTP through the official SDK or the XKS client.
 */

const ORG = 'org-contract-a';
const OTHER_ORG = 'org-contract-b';
const PLATFORM_SECRET = randomBytes(24).toString('base64');

interface Harness {
  name: string;
  provider(): KeyProvider;
  notFound(): KeyProvider;
  badCredentials(): KeyProvider;
  unreachable(): Promise<KeyProvider>;
  disable(): Promise<void>;
  enable(): Promise<void>;
  testSteps: string[];
  /** Kinds a wrapped key presented for another organization may be refused with. */
  otherOrgKinds: KeyFailureKind[];
}

let closeDb: () => Promise<void>;
let kms: LocalKms;
let aliasArn: string;
let customerKeyId: string;
let xksDir: string;
let xks: XksProxy;
let xksServer: XksServer;
let acme: XksCredentials;
const xksLogs: XksRequestLog[] = [];
const opened: KeyProvider[] = [];

function awsProvider(opts: { reference?: string; secret?: string; endpoint?: string } = {}): KeyProvider {
  const gateway = createKmsGateway({
    clientForRegion: (region) => createKmsClient({ endpoint: opts.endpoint ?? kms.url, region, credentials: { accessKeyId: PLATFORM_ACCOUNT, secretAccessKey: opts.secret ?? PLATFORM_SECRET }, maxAttempts: 1 }),
    defaultRegion: REGION,
    metrics: createKmsMetrics(),
  });
  return createAwsKmsProvider({
    gateway,
    type: 'KmsSymmetric',
    reference: opts.reference ?? aliasArn,
    platformAccountId: PLATFORM_ACCOUNT,
    encryptionContextKey: CONTEXT_KEY,
    allowedRegions: [REGION],
    defaultRegion: REGION,
  });
}

function xksProvider(overrides: Partial<XksKeyConfiguration> = {}): KeyProvider {
  const provider = createXksProvider({
    config: { url: `${xksServer.url}${acme.uriPrefix}`, keyId: 'org-key', apiId: acme.accessKeyId, apiKey: acme.secretAccessKey, ...overrides },
    policy: { allowHttpLoopback: true, allowPrivateNetworks: false },
    platformId: PLATFORM_ACCOUNT,
    timeoutMs: 3000,
  });
  opened.push(provider);
  return provider;
}

// The customer signs with the access key the local KMS issued for its account.
let customerKey: { accessKeyId: string; secretAccessKey: string };
const customer = () => createKmsClient({ endpoint: kms.url, region: REGION, credentials: customerKey, maxAttempts: 1 });

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  const dir = tempDir('convault-provider-contract-');
  const principalsFile = path.join(dir, 'principals.json');
  fs.writeFileSync(principalsFile, JSON.stringify({ principals: [{ accessKeyId: PLATFORM_ACCOUNT, secretAccessKey: PLATFORM_SECRET }] }));
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0, principalsFile });
  customerKey = await kms.credentialsFor(CUSTOMER_ACCOUNT);
  const policy = customerKeyPolicy({ customerAccountId: CUSTOMER_ACCOUNT, platformAccountId: PLATFORM_ACCOUNT, encryptionContextKey: CONTEXT_KEY, orgIds: [ORG] });
  const key = (await customer().send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }))).KeyMetadata!;
  customerKeyId = key.KeyId!;
  await customer().send(new CreateAliasCommand({ AliasName: 'alias/contract', TargetKeyId: customerKeyId }));
  aliasArn = `arn:aws:kms:${REGION}:${CUSTOMER_ACCOUNT}:alias/contract`;

  xksDir = tempDir('convault-provider-xks-');
  xks = await openXksProxy({ dataDir: xksDir });
  xksServer = await xks.serve({ host: '127.0.0.1', port: 0, log: (e) => xksLogs.push(e) });
  acme = await xks.credentials.credentialsFor('/acme');
  await xks.keys.createKey('org-key', 'encrypt,decrypt');
});

afterAll(async () => {
  for (const p of opened) p.close?.();
  await xksServer?.close();
  await xks?.close();
  await kms?.close();
  await closeDb?.();
});

const harnesses: Harness[] = [
  {
    name: 'AWS KMS adapter on the local KMS',
    provider: () => awsProvider(),
    notFound: () => awsProvider({ reference: `arn:aws:kms:${REGION}:${CUSTOMER_ACCOUNT}:alias/no-such-alias` }),
    badCredentials: () => awsProvider({ secret: 'not-the-platform-secret' }),
    unreachable: async () => awsProvider({ endpoint: `http://127.0.0.1:${await freePort()}` }),
    disable: async () => void (await customer().send(new DisableKeyCommand({ KeyId: customerKeyId }))),
    enable: async () => void (await customer().send(new EnableKeyCommand({ KeyId: customerKeyId }))),
    testSteps: ['ArnSyntax', 'DescribeKey', 'GenerateDataKey', 'EncryptTestData', 'DecryptDataKey', 'DecryptTestData'],
    // The customer's key policy admits the platform for ORG only.
    otherOrgKinds: ['AccessDenied'],
  },
  {
    name: 'XKS adapter on the reference XKS proxy',
    provider: () => xksProvider(),
    notFound: () => xksProvider({ keyId: 'no-such-key' }),
    badCredentials: () => xksProvider({ apiKey: randomBytes(33).toString('base64') }),
    unreachable: async () => xksProvider({ url: `http://127.0.0.1:${await freePort()}/acme/kms/xks/v1` }),
    disable: async () => void (await xks.keys.setStatus('org-key', 'DISABLED')),
    enable: async () => void (await xks.keys.setStatus('org-key', 'ENABLED')),
    testSteps: ['GetHealthStatus', 'GetKeyMetadata', 'WrapDataKey', 'UnwrapDataKey', 'CompareDataKey'],
    otherOrgKinds: ['InvalidCiphertext'],
  },
];

async function failureOf(promise: Promise<unknown>): Promise<{ kind: string; providerError?: string; retryable: boolean; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isKeyProviderError(err), `expected a KeyProviderError, got ${String(err)}`).toBe(true);
  return err as never;
}

describe.each(harnesses)('key provider contract: $name', (h) => {
  it('wraps and unwraps a data key it generated, and one it was given', async () => {
    const p = h.provider();
    const binding = { orgId: ORG, dataKeyId: 'dk-1' };
    const { plaintext, wrapped } = await p.generateDataKey(binding);
    expect(plaintext).toHaveLength(32);
    expect(wrapped.blob.includes(plaintext)).toBe(false);
    expect((await p.unwrapDataKey(wrapped, binding)).equals(plaintext)).toBe(true);

    const own = randomBytes(32);
    const wrappedOwn = await p.wrapDataKey(own, { orgId: ORG, dataKeyId: 'dk-2' });
    expect((await p.unwrapDataKey(wrappedOwn, { orgId: ORG, dataKeyId: 'dk-2' })).equals(own)).toBe(true);
  });

  it('refuses to unwrap under another data key id, another organization, or altered bytes', async () => {
    const p = h.provider();
    const { wrapped } = await p.generateDataKey({ orgId: ORG, dataKeyId: 'dk-bound' });
    const otherRecord = await failureOf(p.unwrapDataKey(wrapped, { orgId: ORG, dataKeyId: 'dk-other' }));
    expect(otherRecord.kind).toBe('InvalidCiphertext');
    const otherOrg = await failureOf(p.unwrapDataKey(wrapped, { orgId: OTHER_ORG, dataKeyId: 'dk-bound' }));
    expect(h.otherOrgKinds).toContain(otherOrg.kind);
    const altered = Buffer.from(wrapped.blob);
    altered[altered.length - 1]! ^= 0x01;
    expect((await failureOf(p.unwrapDataKey({ ...wrapped, blob: altered }, { orgId: ORG, dataKeyId: 'dk-bound' }))).kind).toBe('InvalidCiphertext');
  });

  it('runs the Test steps and reports each one', async () => {
    const report = await h.provider().test(ORG);
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.steps.map((s) => s.step)).toEqual(h.testSteps);
    for (const s of report.steps) {
      expect(s.ok).toBe(true);
      expect(s.ms).toBeGreaterThanOrEqual(0);
    }
    expect(report.lastError).toBeUndefined();
  });

  it('classifies a disabled key as Disabled, in calls and in the Test report', async () => {
    await h.disable();
    try {
      const p = h.provider();
      const failure = await failureOf(p.generateDataKey({ orgId: ORG, dataKeyId: 'dk-disabled' }));
      expect(failure.kind).toBe('Disabled');
      expect(failure.retryable).toBe(false);
      expect((await p.describe()).state).toBe('Disabled');
      const report = await p.test(ORG);
      expect(report.ok).toBe(false);
      expect(report.lastError).toMatchObject({ failureKind: 'Disabled', errorType: 'CustomerKeyUnavailable', code: 'customer.key.error' });
      expect(report.lastError!.message).toMatch(/enable/i);
    } finally {
      await h.enable();
    }
    await expect(h.provider().generateDataKey({ orgId: ORG, dataKeyId: 'dk-enabled-again' })).resolves.toBeTruthy();
  });

  it('classifies a key that does not exist as NotFound', async () => {
    const p = h.notFound();
    const failure = await failureOf(p.generateDataKey({ orgId: ORG, dataKeyId: 'dk' }));
    expect(failure.kind).toBe('NotFound');
    const report = await p.test(ORG);
    expect(report.lastError).toMatchObject({ failureKind: 'NotFound', errorType: 'CustomerKeyNotFound' });
  });

  it('classifies credentials the provider does not accept as BadCredentials', async () => {
    const p = h.badCredentials();
    const failure = await failureOf(p.generateDataKey({ orgId: ORG, dataKeyId: 'dk' }));
    expect(failure.kind, failure.message).toBe('BadCredentials');
    expect(p.remediation(failure as never)).toMatch(/credentials|apiKey/);
    expect((await p.test(ORG)).lastError).toMatchObject({ failureKind: 'BadCredentials' });
  });

  it('classifies a provider that cannot be reached as Unavailable, retryable', async () => {
    const p = await h.unreachable();
    const failure = await failureOf(p.generateDataKey({ orgId: ORG, dataKeyId: 'dk' }));
    expect(failure.kind).toBe('Unavailable');
    expect(failure.retryable).toBe(true);
    const report = await p.test(ORG);
    expect(report.ok).toBe(false);
    expect(report.lastError).toMatchObject({ failureKind: 'Unavailable', errorType: 'CustomerKeyUnavailable' });
  });
});

describe('AWS adapter specifics', () => {
  it('rewraps server-side to another key of the customer (ReEncrypt), and the result opens under that key only', async () => {
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER_ACCOUNT, platformAccountId: PLATFORM_ACCOUNT, encryptionContextKey: CONTEXT_KEY, orgIds: [ORG] });
    const second = (await customer().send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }))).KeyMetadata!;
    const p = awsProvider();
    const binding = { orgId: ORG, dataKeyId: 'dk-rewrap' };
    const { plaintext, wrapped } = await p.generateDataKey(binding);
    const moved = await p.rewrapDataKey!(wrapped, binding, second.Arn!);
    expect(moved.keyId).toBe(second.Arn);
    expect((await p.unwrapDataKey(moved, binding)).equals(plaintext)).toBe(true);
    expect((await failureOf(p.unwrapDataKey({ ...moved, keyId: wrapped.keyId }, binding))).kind).toBe('InvalidCiphertext');
  });
});

describe('XKS adapter specifics', () => {
  it('names the platform and the organization in requestMetadata, and never logs key bytes', async () => {
    const p = xksProvider();
    const before = xksLogs.length;
    const { plaintext } = await p.generateDataKey({ orgId: ORG, dataKeyId: 'dk-meta' });
    const entry = xksLogs.slice(before).find((e) => e.operation === 'Encrypt')!;
    expect(entry.awsPrincipalArn).toBe(`arn:convault:iam::${PLATFORM_ACCOUNT}:organization/${ORG}`);
    expect(entry.kmsKeyArn).toContain(ORG);
    expect(JSON.stringify(xksLogs)).not.toContain(plaintext.toString('base64'));
  });

  it('refuses a proxy URL the policy does not admit before any call', () => {
    for (const url of ['http://10.0.0.8/kms/xks/v1', 'https://169.254.169.254/kms/xks/v1', 'http://proxy.example.com/kms/xks/v1']) {
      expect(() => createXksProvider({ config: { url, keyId: 'k', apiId: acme.accessKeyId, apiKey: acme.secretAccessKey }, policy: { allowHttpLoopback: true, allowPrivateNetworks: false }, platformId: 'p' })).toThrow(
        expect.objectContaining({ kind: 'Misconfigured' }),
      );
    }
  });

  it('verifies TLS by default and trusts a per-configuration CA bundle; a wrong name fails as Misconfigured', async () => {
    const dir = tempDir('convault-provider-tls-');
    const f = (n: string) => path.join(dir, n);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = await xks.serve({ host: '127.0.0.1', port: 0, tls: { cert: fs.readFileSync(f('server.pem')), key: fs.readFileSync(f('server.key')) } });
    try {
      const url = `${tls.url}${acme.uriPrefix}`;
      expect(url.startsWith('https://127.0.0.1:')).toBe(true);
      const untrusted = xksProvider({ url });
      const failure = await failureOf(untrusted.generateDataKey({ orgId: ORG, dataKeyId: 'dk-tls' }));
      expect(failure.kind).toBe('Misconfigured');
      expect(untrusted.remediation(failure as never)).toMatch(/CA bundle/);
      const trusted = xksProvider({ url, caBundle: fs.readFileSync(f('server.pem'), 'utf8') });
      const { plaintext, wrapped } = await trusted.generateDataKey({ orgId: ORG, dataKeyId: 'dk-tls' });
      expect((await trusted.unwrapDataKey(wrapped, { orgId: ORG, dataKeyId: 'dk-tls' })).equals(plaintext)).toBe(true);
    } finally {
      await tls.close();
    }
  });
});
