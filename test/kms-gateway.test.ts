import { randomBytes } from 'node:crypto';
import { CreateKeyCommand, DescribeKeyCommand, GetKeyPolicyCommand, ListAliasesCommand, ListKeysCommand, type KMS } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAwsKmsClient, createKmsClient, KMS_TIMEOUTS } from '../src/kms/client-factory.js';
import { DEMO_ACCOUNT_ID, DEMO_ALIAS, ensureDemoCustomerKey } from '../src/kms/demo-key.js';
import { KmsCallError } from '../src/kms/kms-failure.js';
import { createKmsGateway, regionOf } from '../src/kms/kms-gateway.js';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';
import { ensurePlatformKey, PLATFORM_KEY_ALIAS } from '../src/kms/platform-key.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { sqliteTarget } from './support/databases.js';
import { localKmsClient } from './support/local-kms.js';
import { rejection } from './support/rejection.js';

/**
 * The KMS gateway, the client factory and the start-up keys (platform key, demo customer key)
 * against one local KMS: what each call returns, how its failures and empty answers surface, what
 * the metrics record, and which breaker a key's calls go through.
 */

const REGION = 'us-east-1';
const PLATFORM = '444455556666';
const CTX_KEY = 'convault-organization-id';
const CTX = { [CTX_KEY]: 'org-1' };

let kms: LocalKms;
let closeDb: () => Promise<void>;
let client: KMS;
let keyA: string;
let keyB: string;
/** Output fields the next answers lose (a KMS answering without them). */
let strip: string[] = [];
/** The fake clock; every request sent takes 25 ms on it. */
let clock = 1_000_000;

beforeAll(async () => {
  const handle = await sqliteTarget.open();
  closeDb = handle.close;
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0 });
  client = localKmsClient(kms, PLATFORM, { maxAttempts: 1 });
  keyA = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  keyB = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      for (const field of strip) delete (out.output as unknown as Record<string, unknown>)[field];
      return out;
    },
    { step: 'initialize', name: 'stripOutput' },
  );
  client.middlewareStack.add((next) => (args) => ((clock += 25), next(args)), { step: 'finalizeRequest', name: 'fakeDuration' });
});

afterEach(() => {
  strip = [];
  kms.faults.reset();
});

afterAll(async () => {
  client.destroy();
  await kms.close();
  await closeDb();
});

function gatewayWith(opts: { breaker?: { failureThreshold: number; openMs: number }; regions?: string[] } = {}) {
  const metrics = createKmsMetrics();
  const gateway = createKmsGateway({
    clientForRegion: (region) => (opts.regions?.push(region), client),
    defaultRegion: REGION,
    metrics,
    now: () => clock,
    ...(opts.breaker ? { breaker: opts.breaker } : {}),
  });
  return { gateway, metrics };
}

const failure = (p: Promise<unknown>) => rejection(p, KmsCallError);

describe('KMS gateway', () => {
  it('generates, encrypts, decrypts, re-encrypts and describes, recording each call with its duration', async () => {
    const { gateway, metrics } = gatewayWith();
    const dataKey = await gateway.generateDataKey(keyA, CTX);
    expect(dataKey.plaintext).toHaveLength(32);
    expect(dataKey.keyArn).toBe(keyA);
    const decrypted = await gateway.decrypt(dataKey.ciphertextBlob, CTX, keyA);
    expect(decrypted).toEqual({ plaintext: dataKey.plaintext, keyArn: keyA });

    const sealed = await gateway.encrypt(keyA, Buffer.from('secret'), CTX);
    expect(sealed.keyArn).toBe(keyA);
    const moved = await gateway.reEncrypt({ ciphertextBlob: sealed.ciphertextBlob, sourceKeyId: keyA, destinationKeyId: keyB, context: CTX });
    expect(moved.keyArn).toBe(keyB);
    expect((await gateway.decrypt(moved.ciphertextBlob, CTX, keyB)).plaintext.toString()).toBe('secret');
    // The old blob's key is pinned: it does not decrypt under another key.
    expect((await failure(gateway.decrypt(sealed.ciphertextBlob, CTX, keyB))).kind).toBe('IncorrectKey');

    const metadata = await gateway.describeKey(keyA);
    expect(metadata.Arn).toBe(keyA);
    expect(metadata.KeyState).toBe('Enabled');

    expect(metrics.snapshot()).toEqual([
      { operation: 'GenerateDataKey', outcome: 'ok', count: 1, totalMs: 25 },
      { operation: 'Decrypt', outcome: 'ok', count: 2, totalMs: 50 },
      { operation: 'Encrypt', outcome: 'ok', count: 1, totalMs: 25 },
      { operation: 'ReEncrypt', outcome: 'ok', count: 1, totalMs: 25 },
      { operation: 'Decrypt', outcome: 'IncorrectKeyException', count: 1, totalMs: 25 },
      { operation: 'DescribeKey', outcome: 'ok', count: 1, totalMs: 25 },
    ]);
  });

  it('reports an answer without its payload as an Internal failure of that operation', async () => {
    const { gateway } = gatewayWith();
    const dataKey = await gateway.generateDataKey(keyA, CTX);
    const sealed = await gateway.encrypt(keyA, Buffer.from('secret'), CTX);
    const cases: Array<[string[], () => Promise<unknown>, string, string]> = [
      [['KeyMetadata'], () => gateway.describeKey(keyA), 'DescribeKey', 'DescribeKey returned no metadata'],
      [['Plaintext'], () => gateway.generateDataKey(keyA, CTX), 'GenerateDataKey', 'GenerateDataKey returned no key'],
      [['CiphertextBlob'], () => gateway.generateDataKey(keyA, CTX), 'GenerateDataKey', 'GenerateDataKey returned no key'],
      [['KeyId'], () => gateway.generateDataKey(keyA, CTX), 'GenerateDataKey', 'GenerateDataKey returned no key'],
      [['Plaintext'], () => gateway.decrypt(dataKey.ciphertextBlob, CTX, keyA), 'Decrypt', 'Decrypt returned no plaintext'],
      [['KeyId'], () => gateway.decrypt(dataKey.ciphertextBlob, CTX, keyA), 'Decrypt', 'Decrypt returned no plaintext'],
      [['CiphertextBlob'], () => gateway.encrypt(keyA, Buffer.from('x'), CTX), 'Encrypt', 'Encrypt returned no blob'],
      [['KeyId'], () => gateway.encrypt(keyA, Buffer.from('x'), CTX), 'Encrypt', 'Encrypt returned no blob'],
      [['CiphertextBlob'], () => gateway.reEncrypt({ ciphertextBlob: sealed.ciphertextBlob, sourceKeyId: keyA, destinationKeyId: keyB, context: CTX }), 'ReEncrypt', 'ReEncrypt returned no blob'],
      [['KeyId'], () => gateway.reEncrypt({ ciphertextBlob: sealed.ciphertextBlob, sourceKeyId: keyA, destinationKeyId: keyB, context: CTX }), 'ReEncrypt', 'ReEncrypt returned no blob'],
    ];
    for (const [fields, call, operation, message] of cases) {
      strip = fields;
      expect(await failure(call()), `${operation} without ${fields.join()}`).toMatchObject({ kind: 'Internal', awsName: 'EmptyResponse', operation, message });
    }
  });

  it('calls the region a key ARN names, the default region for key ids and aliases', async () => {
    expect(regionOf('arn:aws:kms:eu-west-1:111122223333:key/k', REGION)).toBe('eu-west-1');
    expect(regionOf('arn:aws-cn:kms:cn-north-1:111122223333:alias/a', REGION)).toBe('cn-north-1');
    expect(regionOf('arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/k', REGION)).toBe('us-gov-west-1');
    expect(regionOf('alias/convault-platform-key', 'ap-south-2')).toBe('ap-south-2');
    expect(regionOf('1234abcd-12ab-34cd-56ef-1234567890ab', 'ap-south-2')).toBe('ap-south-2');
    // Only a string that starts as an ARN names a region.
    expect(regionOf('x-arn:aws:kms:eu-west-1:111122223333:key/k', 'ap-south-2')).toBe('ap-south-2');

    const regions: string[] = [];
    const { gateway } = gatewayWith({ regions });
    await gateway.describeKey(keyA);
    await gateway.describeKey(PLATFORM_KEY_ALIAS).catch(() => undefined);
    await gateway.describeKey('arn:aws:kms:eu-west-1:444455556666:key/none').catch(() => undefined);
    expect(regions).toEqual([REGION, REGION, 'eu-west-1']);
  });

  it('opens after five unreachable calls and stays open five seconds by default, then lets a trial through', async () => {
    const { gateway, metrics } = gatewayWith();
    kms.faults.set({ outage: 'unavailable' });
    for (let i = 0; i < 4; i++) await failure(gateway.encrypt(keyA, Buffer.from('x'), CTX));
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('closed');
    await failure(gateway.encrypt(keyA, Buffer.from('x'), CTX));
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('open');
    const paused = await failure(gateway.encrypt(keyA, Buffer.from('x'), CTX));
    expect(paused).toMatchObject({ kind: 'Unreachable', awsName: 'CircuitOpen', operation: 'Encrypt' });
    expect(paused.message).toBe(`KMS in ${REGION} is unreachable for this key's account; calls are paused for a few seconds`);
    expect(metrics.snapshot().find((s) => s.outcome === 'CircuitOpen')).toEqual({ operation: 'Encrypt', outcome: 'CircuitOpen', count: 1, totalMs: 0 });
    clock += 4_999;
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('open');
    clock += 1;
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('half-open');
    expect(gateway.breakerState(REGION)).toBe('half-open');
    kms.faults.reset();
    await kms.faults.settled();
    await gateway.encrypt(keyA, Buffer.from('x'), CTX);
    expect(gateway.breakerState(REGION)).toBe('closed');
  });

  it('keeps one breaker per key account: aliases and key ids share the caller\'s own', async () => {
    const { gateway } = gatewayWith({ breaker: { failureThreshold: 1, openMs: 60_000 } });
    kms.faults.set({ outage: 'unavailable' });
    await failure(gateway.describeKey('alias/some-key'));
    expect(gateway.breakerState(REGION)).toBe('open');
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('closed');
    expect((await failure(gateway.describeKey('1234abcd-12ab-34cd-56ef-1234567890ab'))).awsName).toBe('CircuitOpen');
    // An ARN of the platform's account has its own breaker, still closed.
    expect((await failure(gateway.describeKey(keyA))).awsName).not.toBe('CircuitOpen');
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('open');
    // Open for the configured period, not the default.
    clock += 5_000;
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('open');
    clock += 55_000;
    expect(gateway.breakerState(REGION, PLATFORM)).toBe('half-open');
    expect(gateway.breakerState('eu-west-1')).toBe('closed');
  });
});

describe('KMS clients', () => {
  it('carry the connection and request timeouts, and the attempts asked for', async () => {
    const credentials = { accessKeyId: 'AKIAEXAMPLE000000001', secretAccessKey: 's' };
    const local = createKmsClient({ endpoint: kms.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    const defaults = createKmsClient({ endpoint: kms.url, region: 'eu-west-1', credentials });
    const aws = createAwsKmsClient({ region: 'eu-west-1' });
    const awsAt = createAwsKmsClient({ region: 'eu-west-1', endpoint: kms.url, maxAttempts: 2 });
    try {
      expect(KMS_TIMEOUTS).toEqual({ connectionTimeout: 3_000, requestTimeout: 10_000 });
      // The AWS client signs with the default chain: here the environment, holding a local KMS access key.
      const issued = await kms.credentialsFor(PLATFORM);
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      process.env.AWS_ACCESS_KEY_ID = issued.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = issued.secretAccessKey;
      try {
        for (const c of [local, defaults, awsAt]) {
          expect(await c.config.region()).toBe('eu-west-1');
          // The handler resolves its options when it sends the first request.
          await c.send(new DescribeKeyCommand({ KeyId: 'alias/none' })).catch(() => undefined);
          expect((c.config.requestHandler as unknown as { httpHandlerConfigs(): object }).httpHandlerConfigs()).toMatchObject(KMS_TIMEOUTS);
        }
        await expect(awsAt.send(new DescribeKeyCommand({ KeyId: 'alias/none' }))).rejects.toMatchObject({ name: 'NotFoundException' });
      } finally {
        for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
      expect(await aws.config.region()).toBe('eu-west-1');
      expect(await local.config.maxAttempts()).toBe(1);
      expect(await defaults.config.maxAttempts()).toBe(3);
      expect(await aws.config.maxAttempts()).toBe(3);
      expect(await awsAt.config.maxAttempts()).toBe(2);
      expect(String((await local.config.endpoint!()).port)).toBe(new URL(kms.url).port);
      expect(String((await awsAt.config.endpoint!()).port)).toBe(new URL(kms.url).port);
      expect(aws.config.endpoint).toBeUndefined();
    } finally {
      for (const c of [local, defaults, aws, awsAt]) c.destroy();
    }
  });
});

describe('start-up keys', () => {
  it('creates the platform key once, finds it afterwards, and refuses to create one against an external KMS', async () => {
    const own = localKmsClient(kms, '123412341234', { maxAttempts: 1 });
    try {
      await expect(ensurePlatformKey(own, { create: false })).rejects.toThrow(
        `The platform key ${PLATFORM_KEY_ALIAS} does not exist in the platform account: create a symmetric KMS key with that alias`,
      );
      const arn = await ensurePlatformKey(own, { create: true });
      expect(arn).toMatch(/^arn:aws:kms:us-east-1:123412341234:key\//);
      expect(await ensurePlatformKey(own, { create: false })).toBe(arn);
      expect(await ensurePlatformKey(own, { create: true })).toBe(arn);
      const described = await own.send(new DescribeKeyCommand({ KeyId: PLATFORM_KEY_ALIAS }));
      expect(described.KeyMetadata!.Description).toBe('convault platform key (key configuration type None)');

      const named = await ensurePlatformKey(own, { create: true, aliasName: 'alias/other-platform-key' });
      expect(named).not.toBe(arn);
      expect((await own.send(new DescribeKeyCommand({ KeyId: 'alias/other-platform-key' }))).KeyMetadata!.Arn).toBe(named);
    } finally {
      own.destroy();
    }
  });

  it('two nodes creating the platform key together end up with the same one', async () => {
    const own = localKmsClient(kms, '234523452345', { maxAttempts: 1 });
    try {
      // Both have looked and found nothing before either creates its key.
      const gate = kms.faults.hold('CreateKey');
      const both = Promise.all([ensurePlatformKey(own, { create: true }), ensurePlatformKey(own, { create: true })]);
      await gate.waitFor(2);
      gate.release();
      const [a, b] = await both;
      expect(a).toBe(b);
      expect((await own.send(new DescribeKeyCommand({ KeyId: PLATFORM_KEY_ALIAS }))).KeyMetadata!.Arn).toBe(a);
    } finally {
      own.destroy();
    }
  });

  it('passes on failures other than a missing key or a lost race', async () => {
    const own = localKmsClient(kms, '345634563456', { maxAttempts: 1 });
    const demo = localKmsClient(kms, DEMO_ACCOUNT_ID, { maxAttempts: 1, region: 'eu-central-1' });
    const demoOpts = { region: 'eu-central-1', platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgId: 'org-1' };
    try {
      kms.faults.set({ throttle: { ratio: 1, operations: ['DescribeKey'] } });
      await expect(ensurePlatformKey(own, { create: true })).rejects.toMatchObject({ name: 'ThrottlingException' });
      await expect(ensureDemoCustomerKey(demo, demoOpts)).rejects.toMatchObject({ name: 'ThrottlingException' });
      kms.faults.set({ throttle: { ratio: 1, operations: ['CreateAlias'] } });
      await expect(ensurePlatformKey(own, { create: true })).rejects.toMatchObject({ name: 'ThrottlingException' });
      // The demo key is made in its own region here, so the key this leaves without an alias stays apart.
      await expect(ensureDemoCustomerKey(demo, demoOpts)).rejects.toMatchObject({ name: 'ThrottlingException' });
    } finally {
      own.destroy();
      demo.destroy();
    }
  });

  it("creates the demo customer key once, usable by the platform for the bootstrap organization only", async () => {
    expect(DEMO_ACCOUNT_ID).toBe('111122223333');
    expect(DEMO_ALIAS).toBe('alias/demo-customer-key');
    const demo = localKmsClient(kms, DEMO_ACCOUNT_ID, { maxAttempts: 1 });
    const aliasArn = `arn:aws:kms:${REGION}:${DEMO_ACCOUNT_ID}:${DEMO_ALIAS}`;
    const opts = { region: REGION, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgId: 'org-boot' };
    try {
      // Two nodes on one database start together: one alias wins, the other node's key is scheduled for deletion.
      const gate = kms.faults.hold('CreateKey');
      const both = Promise.all([ensureDemoCustomerKey(demo, opts), ensureDemoCustomerKey(demo, opts)]);
      await gate.waitFor(2);
      gate.release();
      expect(await both).toEqual([aliasArn, aliasArn]);
      expect(await ensureDemoCustomerKey(demo, opts)).toBe(aliasArn);

      const described = (await demo.send(new DescribeKeyCommand({ KeyId: DEMO_ALIAS }))).KeyMetadata!;
      expect(described.Description).toBe('convault demo customer key');
      const policy = JSON.parse((await demo.send(new GetKeyPolicyCommand({ KeyId: described.KeyId!, PolicyName: 'default' }))).Policy!);
      expect(policy.Statement.map((s: { Sid: string }) => s.Sid)).toEqual(['EnableIAMUserPermissions', 'AllowConvaultPlatformUseForItsOrganizations', 'AllowConvaultPlatformDescribeKey']);
      const { gateway } = gatewayWith();
      expect((await gateway.encrypt(aliasArn, Buffer.from('x'), { [CTX_KEY]: 'org-boot' })).keyArn).toBe(described.Arn);
      expect((await failure(gateway.encrypt(aliasArn, Buffer.from('x'), { [CTX_KEY]: 'org-other' }))).kind).toBe('AccessDenied');

      const aliases = (await demo.send(new ListAliasesCommand({}))).Aliases!.filter((a) => a.AliasName === DEMO_ALIAS);
      expect(aliases).toHaveLength(1);
      const keys = await Promise.all(
        (await demo.send(new ListKeysCommand({}))).Keys!.map(async (k) => (await demo.send(new DescribeKeyCommand({ KeyId: k.KeyId! }))).KeyMetadata!),
      );
      const demoKeys = keys.filter((k) => k.Description === 'convault demo customer key');
      expect(demoKeys.map((k) => k.KeyState).sort()).toEqual(['Enabled', 'PendingDeletion']);
    } finally {
      demo.destroy();
    }
  });
});
