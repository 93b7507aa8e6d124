import { randomBytes } from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, PutKeyPolicyCommand, ScheduleKeyDeletionCommand, type KMS } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { createKmsGateway } from '../src/kms/kms-gateway.js';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';
import { ensurePlatformKey } from '../src/kms/platform-key.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { createAuditService, type AuditService } from '../src/services/audit/audit-service.js';
import type { Caller } from '../src/services/auth/auth-service.js';
import { AppError } from '../src/services/errors.js';
import { createKeyConfigDal, type KeyConfigDal } from '../src/services/keyconfig/keyconfig-dal.js';
import { createKeyConfigService, type KeyConfigService } from '../src/services/keyconfig/keyconfig-service.js';
import { SECRET_MASK, type KeyConfigBody } from '../src/services/keyconfig/keyconfig-model.js';
import type { KeyTestReport } from '../src/providers/key-provider.js';
import { runKeyTest, type KeyTestInput } from '../src/providers/aws-kms/key-test.js';
import { createKeyLayer } from '../src/server/key-layer.js';
import type { XksUrlPolicy } from '../src/providers/xks/url-policy.js';
import { openXksProxy, type XksCredentials, type XksProxy, type XksServer } from '../src/xks/index.js';
import type { KmsGateway } from '../src/kms/kms-gateway.js';
import type { KeyConfigServiceDeps } from '../src/services/keyconfig/keyconfig-service.js';
import { createOrgDal } from '../src/services/orgs/org-dal.js';
import { createOrgService, type OrgService } from '../src/services/orgs/org-service.js';
import { createRateLimiter } from '../src/services/rate-limiter.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { Database } from '../src/store/schema.js';
import { sqliteTarget, tempDir } from './support/databases.js';
import { localKmsClient } from './support/local-kms.js';
import { rejection } from './support/rejection.js';

/**
 * The key configuration service in process, on SQLite and a local KMS: create, Save, Test, history,
 * the key policy it hands out, and the active key every other service encrypts with — each with the
 * error an admin gets when it goes wrong, and the audit event it leaves.
 */

const PLATFORM = '444455556666';
const CUSTOMER = '111122223333';
const CTX_KEY = 'convault-organization-id';
const REGION = 'us-east-1';
const REFRESH_MS = 2_000;
const FORM = 'arn:aws:kms:{region}:{accountId}:alias/{your-alias}';

let kms: LocalKms;
let closeDb: () => Promise<void>;
let handle: Awaited<ReturnType<typeof sqliteTarget.open<Database>>>;
let customer: KMS;
let platformKeyArn: string;
let dal: KeyConfigDal;
let audit: AuditService;
let service: KeyConfigService;
let platform: KMS;
const kmsCalls = createKmsMetrics();
/** Rewrites the platform client's answers (a KMS answering for a kind of key the local KMS cannot make). */
let rewrite: ((command: string, output: Record<string, any>) => void) | undefined;
let clock = Date.UTC(2026, 0, 2, 3, 4, 5);
const cache = { hits: 0, misses: 0 };
const saved: string[] = [];

/** A customer key with an alias, whose policy lets the platform use it for `orgIds`. */
async function customerKey(orgIds: string[]): Promise<{ aliasArn: string; keyArn: string; keyId: string }> {
  const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgIds });
  const created = await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }));
  const aliasName = `alias/test-${randomBytes(6).toString('hex')}`;
  await customer.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: created.KeyMetadata!.KeyId! }));
  return { aliasArn: `arn:aws:kms:${REGION}:${CUSTOMER}:${aliasName}`, keyArn: created.KeyMetadata!.Arn!, keyId: created.KeyMetadata!.KeyId! };
}

let orgCount = 0;
let orgs: OrgService;
async function newCaller(): Promise<Caller> {
  orgCount++;
  const org = await orgs.createOrganization(`Org ${orgCount}`);
  return { orgId: org.id, principalId: `admin-${orgCount}`, principalName: `Admin ${orgCount}`, permissions: new Set() };
}

const appError = (p: Promise<unknown>) => rejection(p, AppError);

const events = async (orgId: string) => (await audit.list(orgId)).entities.reverse();

beforeAll(async () => {
  handle = await sqliteTarget.open<Database>();
  closeDb = handle.close;
  await runMigrations(handle.db, handle.dialect, convaultMigrations);
  kms = await startLocalKms({ db: handle.db, dialect: handle.dialect, rootKey: randomBytes(32), port: 0 });
  platform = localKmsClient(kms, PLATFORM, { maxAttempts: 1 });
  platform.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      rewrite?.(context.commandName!, out.output as Record<string, any>);
      return out;
    },
    { step: 'initialize', name: 'rewriteAnswers' },
  );
  customer = localKmsClient(kms, CUSTOMER, { maxAttempts: 1 });
  platformKeyArn = await ensurePlatformKey(platform, { create: true });
  dal = createKeyConfigDal(handle.db);
  orgs = createOrgService({ orgDal: createOrgDal(handle.db) });
  audit = createAuditService({ db: handle.db });
  service = buildService({
    gateway: createKmsGateway({ clientForRegion: () => platform, defaultRegion: REGION, metrics: kmsCalls }),
    testLimiter: createRateLimiter({ limit: 1000, windowMs: 60_000 }),
    platformKeyArn,
    onSaved: async (row) => void saved.push(`${row.org_id} v${row.version}`),
    clock: () => clock,
    cacheObserver: { hit: () => void cache.hits++, miss: () => void cache.misses++ } as never,
  });
});

/** The service as the composition root wires it: its keys through the key layer (providers). */
function buildService(deps: { gateway: KmsGateway; xksUrlPolicy?: XksUrlPolicy } & Pick<KeyConfigServiceDeps, 'testLimiter' | 'platformKeyArn' | 'onSaved' | 'clock' | 'cacheObserver'>): KeyConfigService {
  const xksUrlPolicy = deps.xksUrlPolicy ?? { allowHttpLoopback: false, allowPrivateNetworks: false };
  const settings = { platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, allowedRegions: [REGION], defaultRegion: REGION, refreshMs: REFRESH_MS, xksUrlPolicy };
  const layer = createKeyLayer({ db: handle.db, gateway: deps.gateway, platformKeyArn: deps.platformKeyArn, settings });
  const { gateway: _gateway, xksUrlPolicy: _policy, ...rest } = deps;
  return createKeyConfigService({ ...rest, dal, keys: layer.keys, secrets: layer.secrets, keyPolicyStatements: layer.keyPolicyStatements, audit, settings });
}

afterAll(async () => {
  await kms.close();
  await closeDb();
});

beforeEach(() => {
  clock += 60_000;
  rewrite = undefined;
  kms.faults.reset();
});

describe('creating a key configuration', () => {
  it('tests the key, stores version 1 with the key it resolved to, its history and an audit event', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    expect(await service.list(caller)).toEqual({ total: 0, entities: [], selfUri: '/api/v2/conversations/keyconfigurations' });

    const created = await service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: `  ${key.aliasArn} ` });
    expect(created).toEqual({
      id: created.id,
      url: key.aliasArn,
      keyConfigurationType: 'KmsSymmetric',
      selfUri: `/api/v2/conversations/keyconfigurations/${created.id}`,
      version: 1,
      keyArn: key.keyArn,
      updatedAt: new Date(clock).toISOString(),
      updatedBy: { id: caller.principalId, name: caller.principalName },
    });
    expect(saved).toContain(`${caller.orgId} v1`);
    expect(await service.list(caller)).toEqual({ total: 1, entities: [created], selfUri: '/api/v2/conversations/keyconfigurations' });
    expect(await service.get(caller, created.id)).toEqual(created);

    const history = await service.history(caller, created.id);
    expect(history.total).toBe(1);
    expect(history.entities[0]).toMatchObject({
      version: 1,
      keyConfigurationType: 'KmsSymmetric',
      url: key.aliasArn,
      keyArn: key.keyArn,
      savedAt: new Date(clock).toISOString(),
      savedBy: { id: caller.principalId, name: caller.principalName },
      testReport: { ok: true, keyArn: key.keyArn },
    });

    const [event] = await events(caller.orgId);
    expect(event).toMatchObject({
      action: 'keyconfig.create',
      target: created.id,
      outcome: 'success',
      principal: caller.principalId,
      details: {
        principalName: caller.principalName,
        new: { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, keyArn: key.keyArn, version: 1 },
        test: { ok: true, keyArn: key.keyArn },
      },
    });
    expect(await service.knownKeyArns(caller.orgId)).toEqual(new Set([key.keyArn]));

    const calls = kmsCalls.count();
    await expect(service.create(caller, { keyConfigurationType: 'None' })).rejects.toMatchObject({
      status: 409,
      message: 'This organization already has a key configuration for conversations; update it with PUT instead.',
    });
    expect(kmsCalls.count()).toBe(calls); // refused before its Test spends KMS calls
    expect(await events(caller.orgId)).toHaveLength(1);
  });

  it('lets one of two concurrent creates win; the other gets 409 and leaves nothing', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    // Both have found no configuration and run their Test before either inserts.
    const gate = kms.faults.hold('Decrypt');
    const both = Promise.allSettled([
      service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn }),
      service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn }),
    ]);
    await gate.waitFor(2);
    gate.release();
    const results = await both;
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({
      status: 409,
      message: 'This organization already has a key configuration for conversations; update it with PUT instead.',
    });
    const [config] = (await service.list(caller)).entities;
    expect((await service.history(caller, config!.id)).total).toBe(1);
    expect((await events(caller.orgId)).map((e) => e.action)).toEqual(['keyconfig.create']);
  });

  it('creates type None without testing a customer key: the platform key protects the data', async () => {
    const caller = await newCaller();
    const created = await service.create(caller, { keyConfigurationType: 'None', url: 'ignored' });
    expect(created).toMatchObject({ keyConfigurationType: 'None', url: '', version: 1 });
    expect(created.keyArn).toBeUndefined();
    expect((await events(caller.orgId)).map((e) => [e.action, e.outcome])).toEqual([['keyconfig.none', 'success']]);
    expect(await service.resolveActiveKey(caller.orgId)).toEqual({ type: 'None', keyId: platformKeyArn, version: 1 });
    expect(await service.knownKeyArns(caller.orgId)).toEqual(new Set());
  });

  it('refuses a type it does not know, naming the field and the types there are (its Test too)', async () => {
    const caller = await newCaller();
    const body = { keyConfigurationType: 'Kms' } as unknown as KeyConfigBody;
    for (const call of [() => service.create(caller, body), () => service.validate(caller, body)]) {
      const err = await appError(call());
      expect(err).toMatchObject({ status: 400, errorType: 'InvalidKeyConfiguration', details: { field: 'keyConfigurationType' } });
      expect(err.message).toBe('keyConfigurationType must be one of KmsSymmetric, LocalKeyManager, None.');
    }
    expect(await events(caller.orgId)).toEqual([]);
  });

  it('refuses a malformed alias ARN with the rule it breaks, before any KMS call', async () => {
    const caller = await newCaller();
    const err = await appError(service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: `arn:aws:kms:${REGION}:${CUSTOMER}:key/abc` }));
    expect(err).toMatchObject({ status: 400, code: 'bad.request', errorType: 'InvalidKeyConfiguration', details: { field: 'url' } });
    expect(err.message).toContain(FORM);
    // An entry that merely mentions keyId is still the url's fault.
    const mentions = await appError(service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: 'keyId 1234abcd' }));
    expect(mentions).toMatchObject({ status: 400, details: { field: 'url' }, message: `"keyId 1234abcd" is not an ARN. Use the form ${FORM}.` });
    expect(await service.list(caller)).toMatchObject({ total: 0 });
    expect(await events(caller.orgId)).toEqual([]);
  });

  it('refuses a key whose Test fails, with the report, and records the failure', async () => {
    const caller = await newCaller();
    const key = await customerKey(['some-other-org']);
    const err = await appError(service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn }));
    expect(err).toMatchObject({ status: 422, code: 'key.test.failed', errorType: 'CustomerKeyUnavailable' });
    expect(err.message).toMatch(/^The key configuration was not saved because its Test failed: Access denied: the key policy must allow account 444455556666/);
    const report = (err.details as { report: { ok: boolean; steps: Array<{ step: string; ok: boolean }> } }).report;
    expect(report.ok).toBe(false);
    expect(report.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false });
    expect(await service.list(caller)).toMatchObject({ total: 0 });
    const [event] = await events(caller.orgId);
    expect(event).toMatchObject({
      action: 'keyconfig.create',
      target: 'new',
      outcome: 'failure',
      details: { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, test: { ok: false, failedStep: 'GenerateDataKey' } },
    });
  });

  it('refuses a key whose data key cannot seal the test data, at that step, as the key being unavailable', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    // KMS handing back a data key of the wrong length: the Test's own sealing is what fails.
    rewrite = (command, output) => {
      if (command === 'GenerateDataKeyCommand') output.Plaintext = new Uint8Array(16).fill(1);
    };
    const err = await appError(service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn }));
    expect(err).toMatchObject({
      status: 422,
      code: 'key.test.failed',
      errorType: 'CustomerKeyUnavailable',
      message: 'The key configuration was not saved because its Test failed: AES-GCM key must be a 32-byte Buffer',
    });
    const { report } = err.details as { report: KeyTestReport };
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([
      ['ArnSyntax', true],
      ['DescribeKey', true],
      ['GenerateDataKey', true],
      ['EncryptTestData', false],
    ]);
    expect(report.lastError).toStrictEqual({ message: 'AES-GCM key must be a 32-byte Buffer', code: 'key.test.failed' });
  });

  it('reports a missing key as CustomerKeyNotFound', async () => {
    const caller = await newCaller();
    const err = await appError(service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: `arn:aws:kms:${REGION}:${CUSTOMER}:alias/none-${orgCount}` }));
    expect(err).toMatchObject({ status: 422, errorType: 'CustomerKeyNotFound' });
  });
});

describe('saving a key configuration', () => {
  it('needs the version read, refuses a stale one, and moves to the next version with history and audit', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const created = await service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });

    const missing = await appError(service.save(caller, created.id, { keyConfigurationType: 'None' }));
    expect(missing).toMatchObject({ status: 400, details: { field: 'version' } });
    expect(missing.message).toBe('version is required: send the version you read, so a concurrent change is not overwritten.');
    const stale = await appError(service.save(caller, created.id, { keyConfigurationType: 'None', version: 7 }));
    expect(stale).toMatchObject({ status: 409, details: { currentVersion: 1 } });
    expect(stale.message).toBe('The key configuration was changed by someone else (version 1, you sent 7); reload and try again.');

    clock += 1_000;
    const none = await service.save(caller, created.id, { keyConfigurationType: 'None', version: 1 });
    expect(none).toMatchObject({ id: created.id, keyConfigurationType: 'None', url: '', version: 2, updatedAt: new Date(clock).toISOString() });
    expect(none.keyArn).toBeUndefined();
    expect(saved).toContain(`${caller.orgId} v2`);
    const back = await service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, version: 2 });
    expect(back).toMatchObject({ keyConfigurationType: 'KmsSymmetric', version: 3, keyArn: key.keyArn });

    expect((await service.history(caller, created.id)).entities.map((h) => [h.version, h.keyConfigurationType, h.keyArn])).toEqual([
      [3, 'KmsSymmetric', key.keyArn],
      [2, 'None', undefined],
      [1, 'KmsSymmetric', key.keyArn],
    ]);
    const log = await events(caller.orgId);
    expect(log.map((e) => [e.action, e.outcome])).toEqual([
      ['keyconfig.create', 'success'],
      ['keyconfig.none', 'success'],
      ['keyconfig.save', 'success'],
    ]);
    expect(log[1]!.details).toMatchObject({
      old: { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, keyArn: key.keyArn, version: 1 },
      new: { keyConfigurationType: 'None', url: '', keyArn: null, version: 2 },
      test: { ok: true },
    });
  });

  it('refuses a Save whose Test fails, keeping the saved version', async () => {
    const caller = await newCaller();
    const created = await service.create(caller, { keyConfigurationType: 'None' });
    const denied = await customerKey(['some-other-org']);
    const err = await appError(service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: denied.aliasArn, version: 1 }));
    expect(err).toMatchObject({ status: 422, code: 'key.test.failed' });
    expect((await service.get(caller, created.id)).version).toBe(1);
    const last = (await events(caller.orgId)).at(-1)!;
    expect(last).toMatchObject({
      action: 'keyconfig.save',
      target: created.id,
      outcome: 'failure',
      details: { old: { keyConfigurationType: 'None', version: 1 }, requested: { keyConfigurationType: 'KmsSymmetric', url: denied.aliasArn }, test: { ok: false } },
    });
    const badArn = await appError(service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: 'not an arn', version: 1 }));
    expect(badArn).toMatchObject({ status: 400, errorType: 'InvalidKeyConfiguration' });
  });

  it('lets one of two concurrent Saves of one version win; the other gets 409 and leaves no history', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const created = await service.create(caller, { keyConfigurationType: 'None' });
    // Both have read version 1 and passed the version check before either commits.
    const gate = kms.faults.hold('Decrypt');
    const both = Promise.allSettled([
      service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, version: 1 }),
      service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, version: 1 }),
    ]);
    await gate.waitFor(2);
    gate.release();
    const results = await both;
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ status: 409, message: 'The key configuration was changed by someone else while saving; reload and try again.' });
    expect((await service.history(caller, created.id)).total).toBe(2);
    expect((await service.get(caller, created.id)).version).toBe(2);
  });

  it("never finds another organization's configuration", async () => {
    const owner = await newCaller();
    const other = await newCaller();
    const created = await service.create(owner, { keyConfigurationType: 'None' });
    for (const call of [() => service.get(other, created.id), () => service.history(other, created.id), () => service.save(other, created.id, { keyConfigurationType: 'None', version: 1 })]) {
      expect(await appError(call())).toMatchObject({ status: 404, message: 'Key configuration was not found.' });
    }
  });
});

describe('Test (validate)', () => {
  it('returns the body with the step report and saves nothing; audited under the id sent, or "unsaved"', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const ok = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, id: 'cfg-1' });
    expect(ok).toMatchObject({ id: 'cfg-1', keyConfigurationType: 'KmsSymmetric', url: key.aliasArn, ok: true, keyArn: key.keyArn });
    expect(ok.steps.map((s) => s.step)).toEqual(['ArnSyntax', 'DescribeKey', 'GenerateDataKey', 'EncryptTestData', 'DecryptDataKey', 'DecryptTestData']);
    for (const step of ok.steps) {
      expect(step.ok).toBe(true);
      expect(Number.isInteger(step.ms) && step.ms >= 0 && step.ms < 60_000, `${step.step} took ${step.ms} ms`).toBe(true);
    }
    expect(ok.steps[1]!.detail).toBe(`${key.keyArn} is Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT`);
    expect(ok.steps[2]!.detail).toBe(`data key generated under ${key.keyArn}`);
    expect('lastError' in ok).toBe(false);

    const none = await service.validate(caller, { keyConfigurationType: 'None', url: 'whatever' });
    expect(none).toMatchObject({ keyConfigurationType: 'None', url: '', ok: true, keyArn: platformKeyArn });
    expect(none.steps.map((s) => s.step)).toEqual(['DescribeKey', 'GenerateDataKey', 'EncryptTestData', 'DecryptDataKey', 'DecryptTestData']);

    const bad = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric' });
    expect(bad).toMatchObject({ url: '', ok: false, lastError: { code: 'bad.request', errorType: 'InvalidKeyConfiguration' } });
    expect('keyArn' in bad).toBe(false);
    expect(bad.steps).toEqual([{ step: 'ArnSyntax', ok: false, ms: expect.any(Number), error: bad.lastError }]);
    expect(Number.isInteger(bad.steps[0]!.ms) && bad.steps[0]!.ms < 60_000).toBe(true);

    expect(await service.list(caller)).toMatchObject({ total: 0 });
    expect((await events(caller.orgId)).map((e) => [e.action, e.target, e.outcome, e.details.keyConfigurationType, e.details.url])).toEqual([
      ['keyconfig.test', 'cfg-1', 'success', 'KmsSymmetric', key.aliasArn],
      ['keyconfig.test', 'unsaved', 'success', 'None', ''],
      ['keyconfig.test', 'unsaved', 'failure', 'KmsSymmetric', undefined],
    ]);
  });

  it('spends a test token only on ARNs that reach KMS', async () => {
    const caller = await newCaller();
    const limited = buildService({
      gateway: createKmsGateway({ clientForRegion: () => localKmsClient(kms, PLATFORM, { maxAttempts: 1 }), defaultRegion: REGION, metrics: createKmsMetrics() }),
      testLimiter: createRateLimiter({ limit: 1, windowMs: 60_000, now: () => clock }),
      platformKeyArn,
    });
    for (let i = 0; i < 3; i++) expect((await limited.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: 'nope' })).ok).toBe(false);
    expect((await limited.validate(caller, { keyConfigurationType: 'None' })).ok).toBe(true);
    const limitedError = await appError(limited.validate(caller, { keyConfigurationType: 'None' }));
    expect(limitedError).toMatchObject({ status: 429, message: expect.stringMatching(/^Too many key tests: at most 1 per 60 s/) });
  });

  it('needs no save listener and no cache observer', async () => {
    const caller = await newCaller();
    const bare = buildService({
      gateway: createKmsGateway({ clientForRegion: () => platform, defaultRegion: REGION, metrics: createKmsMetrics() }),
      testLimiter: createRateLimiter({ limit: 1000, windowMs: 60_000 }),
      platformKeyArn,
    });
    const created = await bare.create(caller, { keyConfigurationType: 'None' });
    expect((await bare.save(caller, created.id, { keyConfigurationType: 'None', version: 1 })).version).toBe(2);
    expect(await bare.resolveActiveKey(caller.orgId)).toEqual({ type: 'None', keyId: platformKeyArn, version: 2 });
    expect(await bare.resolveActiveKey(caller.orgId)).toEqual({ type: 'None', keyId: platformKeyArn, version: 2 });
  });
});

describe('the active key', () => {
  it('is the platform key without a configuration, the alias with one; cached for the refresh interval, re-read after a save at once', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    expect(await service.resolveActiveKey(caller.orgId)).toEqual({ type: 'None', keyId: platformKeyArn, version: 0 });
    const created = await service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
    expect(await service.resolveActiveKey(caller.orgId)).toEqual({ type: 'KmsSymmetric', keyId: key.aliasArn, version: 1 });

    // Another node saves: this one sees it once its cached copy is refreshMs old.
    const row = (await dal.findByOrg(caller.orgId))!;
    await dal.updateIfVersion(caller.orgId, created.id, 1, { ...row, type: 'None', url: '', key_arn: null, version: 2 });
    const before = { ...cache };
    clock += REFRESH_MS - 1;
    expect(await service.resolveActiveKey(caller.orgId)).toMatchObject({ type: 'KmsSymmetric', version: 1 });
    expect(cache).toEqual({ hits: before.hits + 1, misses: before.misses });
    clock += 1;
    expect(await service.resolveActiveKey(caller.orgId)).toEqual({ type: 'None', keyId: platformKeyArn, version: 2 });
    expect(cache).toEqual({ hits: before.hits + 1, misses: before.misses + 1 });
  });

  it('refuses a stored configuration naming the platform account (saved by an earlier build)', async () => {
    const caller = await newCaller();
    const created = await service.create(caller, { keyConfigurationType: 'None' });
    const row = (await dal.findByOrg(caller.orgId))!;
    const url = `arn:aws:kms:${REGION}:${PLATFORM}:alias/convault-platform-key`;
    await dal.updateIfVersion(caller.orgId, created.id, 1, { ...row, type: 'KmsSymmetric', url, version: 2 });
    clock += REFRESH_MS;
    const err = await appError(service.resolveActiveKey(caller.orgId));
    expect(err).toMatchObject({ status: 424, code: 'customer.key.error', errorType: 'InvalidKeyConfiguration' });
    expect(err.message).toBe(
      `The configured key ${url} is in the platform's own AWS account; the platform's keys are never an organization's key. Configure a key of your own account.`,
    );
  });
});

describe('the key policy and the last error', () => {
  it('records the key an alias resolves to now (key health follows a retargeted alias)', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const created = await service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
    const other = await customerKey([caller.orgId]);
    await dal.setKeyArn(caller.orgId, other.keyArn);
    expect((await service.get(caller, created.id)).keyArn).toBe(other.keyArn);
    expect(await service.knownKeyArns(caller.orgId)).toEqual(new Set([key.keyArn, other.keyArn]));
  });

  it("hands out the two platform statements for the caller's organization", async () => {
    const caller = await newCaller();
    const policy = service.keyPolicy(caller);
    expect(policy).toMatchObject({ organizationId: caller.orgId, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY });
    expect((policy.statement as Array<{ Sid: string }>).map((s) => s.Sid)).toEqual(['AllowConvaultPlatformUseForItsOrganizations', 'AllowConvaultPlatformDescribeKey']);
    expect((policy.statement as Array<{ Condition: unknown }>)[0]!.Condition).toEqual({ StringEquals: { [`kms:EncryptionContext:${CTX_KEY}`]: caller.orgId } });
  });

  it('records the last failed use of the key on the model, and clears it', async () => {
    const caller = await newCaller();
    const created = await service.create(caller, { keyConfigurationType: 'None' });
    await service.recordLastError(caller.orgId, { message: 'The KMS key is disabled', errorType: 'CustomerKeyUnavailable' });
    expect((await service.get(caller, created.id)).lastError).toEqual({ message: 'The KMS key is disabled', errorType: 'CustomerKeyUnavailable' });
    await service.recordLastError(caller.orgId, null);
    expect('lastError' in (await service.get(caller, created.id))).toBe(false);
  });
});

describe('key states the Test reports', () => {
  const input = (orgId: string, aliasArn: string, extra: Partial<KeyTestInput> = {}): KeyTestInput => ({
    gateway: createKmsGateway({ clientForRegion: () => platform, defaultRegion: REGION, metrics: createKmsMetrics() }),
    orgId,
    platformAccountId: PLATFORM,
    encryptionContextKey: CTX_KEY,
    allowedRegions: [REGION],
    defaultRegion: REGION,
    platformKeyArn,
    target: { kind: 'alias', aliasArn },
    ...extra,
  });

  it('stops at DescribeKey when KMS cannot be reached, saying so for the region; a Save to None is refused and audited', async () => {
    const caller = await newCaller();
    const created = await service.create(caller, { keyConfigurationType: 'None' });
    kms.faults.set({ outage: 'unavailable' });
    await kms.faults.settled();
    const report = await service.validate(caller, { keyConfigurationType: 'None' });
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([['DescribeKey', false]]);
    expect(Number.isInteger(report.steps[0]!.ms) && report.steps[0]!.ms >= 0 && report.steps[0]!.ms < 60_000).toBe(true);
    expect(report.lastError).toMatchObject({
      message: 'AWS KMS in us-east-1 could not be reached from the platform: try again; if it persists, the platform operator should check connectivity to KMS.',
      code: 'customer.key.error',
      errorType: 'CustomerKeyUnavailable',
    });
    const err = await appError(service.save(caller, created.id, { keyConfigurationType: 'None', version: 1 }));
    expect(err).toMatchObject({ status: 422 });
    expect((await events(caller.orgId)).at(-1)).toMatchObject({ action: 'keyconfig.none', outcome: 'failure', target: created.id });
  });

  it('stops at DecryptDataKey when the policy grants generating data keys but not decrypting them', async () => {
    const caller = await newCaller();
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgIds: [caller.orgId] });
    policy.Statement[1]!.Action = ['kms:GenerateDataKey*'];
    const created = await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }));
    const aliasName = `alias/test-${randomBytes(6).toString('hex')}`;
    await customer.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: created.KeyMetadata!.KeyId! }));
    const report = await runKeyTest(input(caller.orgId, `arn:aws:kms:${REGION}:${CUSTOMER}:${aliasName}`));
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([
      ['ArnSyntax', true],
      ['DescribeKey', true],
      ['GenerateDataKey', true],
      ['EncryptTestData', true],
      ['DecryptDataKey', false],
    ]);
    expect(report.lastError).toMatchObject({ code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', awsError: 'AccessDeniedException' });
    expect(report.keyArn).toBeUndefined();
  });

  it('refuses an alias that resolves to the platform key, at DescribeKey or, when that is denied, at GenerateDataKey', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const refusal = `The alias resolves to ${key.keyArn}, a key of the platform itself: the platform's keys are never an organization's key. Use a key in your own AWS account.`;
    const described = await runKeyTest(input(caller.orgId, key.aliasArn, { platformKeyArn: key.keyArn }));
    expect(described.steps.at(-1)).toMatchObject({ step: 'DescribeKey', ok: false });
    expect(described.lastError).toEqual({ message: refusal, code: 'bad.request', errorType: 'InvalidKeyConfiguration' });

    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgIds: [caller.orgId] });
    policy.Statement = policy.Statement.filter((st) => st.Sid !== 'AllowConvaultPlatformDescribeKey');
    await customer.send(new PutKeyPolicyCommand({ KeyId: key.keyId, PolicyName: 'default', Policy: JSON.stringify(policy) }));
    const generated = await runKeyTest(input(caller.orgId, key.aliasArn, { platformKeyArn: key.keyArn }));
    expect(generated.steps.map((st) => [st.step, st.ok])).toEqual([
      ['ArnSyntax', true],
      ['DescribeKey', false],
      ['GenerateDataKey', false],
    ]);
    expect(generated.lastError).toEqual({ message: refusal, code: 'bad.request', errorType: 'InvalidKeyConfiguration' });
    // A key of the platform's account other than the platform key is refused as well.
    const platformAccountKey = `arn:aws:kms:${REGION}:${PLATFORM}:key/00000000-1111-2222-3333-444444444444`;
    rewrite = (command, output) => {
      if (command === 'DescribeKeyCommand') output.KeyMetadata.Arn = platformAccountKey;
    };
    await customer.send(new PutKeyPolicyCommand({ KeyId: key.keyId, PolicyName: 'default', Policy: JSON.stringify(customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgIds: [caller.orgId] })) }));
    const inPlatformAccount = await runKeyTest(input(caller.orgId, key.aliasArn));
    expect(inPlatformAccount.steps.at(-1)).toMatchObject({ step: 'DescribeKey', ok: false });
    expect(inPlatformAccount.lastError!.message).toMatch(new RegExp(`^The alias resolves to ${platformAccountKey}, a key of the platform itself`));
    rewrite = undefined;
    // The platform's own key as a None target is what None means: no refusal.
    expect((await runKeyTest(input(caller.orgId, '', { target: { kind: 'platform', keyId: platformKeyArn } }))).ok).toBe(true);
  });

  it.each([
    [
      { KeyState: 'PendingDeletion', DeletionDate: new Date(Date.UTC(2026, 1, 3)) },
      'The KMS key is pending deletion on 2026-02-03T00:00:00.000Z: cancel the deletion (kms:CancelKeyDeletion) and enable the key, or choose another key.',
      'CustomerKeyUnavailable',
    ],
    [{ KeyState: 'PendingReplicaDeletion', DeletionDate: undefined }, 'The KMS key is pending deletion: cancel the deletion (kms:CancelKeyDeletion) and enable the key, or choose another key.', 'CustomerKeyUnavailable'],
    [{ KeyState: 'Disabled' }, 'The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then test again.', 'CustomerKeyUnavailable'],
    [{ KeyState: 'Unavailable' }, 'The KMS key is in state Unavailable; it must be Enabled.', 'CustomerKeyUnavailable'],
    [{ KeySpec: 'RSA_2048' }, 'The key spec is RSA_2048; use a symmetric key (SYMMETRIC_DEFAULT).', 'InvalidKeyConfiguration'],
    [{ KeyUsage: 'SIGN_VERIFY' }, 'The key usage is SIGN_VERIFY; use a key for ENCRYPT_DECRYPT.', 'InvalidKeyConfiguration'],
  ])('refuses a key KMS describes as %j', async (metadata, message, errorType) => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    rewrite = (command, output) => {
      if (command === 'DescribeKeyCommand') Object.assign(output.KeyMetadata, metadata);
    };
    const report = await runKeyTest(input(caller.orgId, key.aliasArn));
    // The description is judged once the round trip under the caller's context succeeded (only then
    // does the Test say anything about the key): the DescribeKey step is the one marked failed.
    expect(report.ok).toBe(false);
    expect(report.steps.find((s) => s.step === 'DescribeKey')).toMatchObject({ ok: false, error: { message } });
    expect(report.lastError).toEqual({ message, code: 'customer.key.error', errorType });
  });

  it('describes a key whose description leaves out spec and usage by the defaults KMS means', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    rewrite = (command, output) => {
      if (command !== 'DescribeKeyCommand') return;
      delete output.KeyMetadata.KeySpec;
      delete output.KeyMetadata.KeyUsage;
    };
    const report = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: key.aliasArn });
    expect(report.ok).toBe(true);
    expect(report.steps[1]).toMatchObject({ step: 'DescribeKey', ok: true, detail: `${key.keyArn} is Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT` });
  });

  it('reports an alias ARN it refuses as its one step, failed, without calling KMS', async () => {
    const noCall = () => Promise.reject(new Error('KMS was called'));
    const refusing = { describeKey: noCall, generateDataKey: noCall, decrypt: noCall };
    const report = await runKeyTest(input('org-arn', `arn:aws:kms:${REGION}:${CUSTOMER}:key/abc`, { gateway: refusing }));
    const error = {
      message: `This is a key ARN, not an alias ARN: create an alias for the key (kms:CreateAlias) and enter its ARN, so you can rotate by retargeting the alias. Use the form ${FORM}.`,
      code: 'bad.request',
      errorType: 'InvalidKeyConfiguration',
    };
    expect(report).toStrictEqual({ ok: false, steps: [{ step: 'ArnSyntax', ok: false, ms: expect.any(Number), error }], lastError: error });
  });

  it('leaves no data key plaintext in memory: every plaintext KMS handed over is zeroed once the Test ends', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    const gateway = createKmsGateway({ clientForRegion: () => platform, defaultRegion: REGION, metrics: createKmsMetrics() });
    const handedOver: Buffer[] = [];
    const watched: KeyTestInput['gateway'] = {
      describeKey: (keyId) => gateway.describeKey(keyId),
      generateDataKey: async (keyId, context) => {
        const out = await gateway.generateDataKey(keyId, context);
        handedOver.push(out.plaintext);
        return out;
      },
      decrypt: async (blob, context, keyId) => {
        const out = await gateway.decrypt(blob, context, keyId);
        handedOver.push(out.plaintext);
        return out;
      },
    };
    expect((await runKeyTest(input(caller.orgId, key.aliasArn, { gateway: watched }))).ok).toBe(true);
    expect(handedOver).toHaveLength(2);
    for (const plaintext of handedOver) expect(plaintext.equals(Buffer.alloc(32))).toBe(true);
  });

  it('fails the last step when the data key KMS decrypts is not the one it generated', async () => {
    const caller = await newCaller();
    const key = await customerKey([caller.orgId]);
    rewrite = (command, output) => {
      if (command === 'DecryptCommand') output.Plaintext = new Uint8Array(32).fill(7);
    };
    const report = await runKeyTest(input(caller.orgId, key.aliasArn));
    expect(report.steps.map((st) => [st.step, st.ok])).toEqual([
      ['ArnSyntax', true],
      ['DescribeKey', true],
      ['GenerateDataKey', true],
      ['EncryptTestData', true],
      ['DecryptDataKey', true],
      ['DecryptTestData', false],
    ]);
    expect(report.lastError).toEqual({ message: 'The data key KMS returned does not decrypt the test data.', code: 'key.test.failed', errorType: 'CustomerKeyUnavailable' });
    expect(report.ok).toBe(false);
  });

  it('reports a DescribeKey the policy does not grant as advisory: the round trip decides', async () => {
    const caller = await newCaller();
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX_KEY, orgIds: [caller.orgId] });
    policy.Statement = policy.Statement.filter((s) => s.Sid !== 'AllowConvaultPlatformDescribeKey');
    const created = await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }));
    const aliasName = `alias/test-${randomBytes(6).toString('hex')}`;
    await customer.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: created.KeyMetadata!.KeyId! }));
    const report = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: `arn:aws:kms:${REGION}:${CUSTOMER}:${aliasName}` });
    expect(report.ok).toBe(true);
    expect(report.steps[1]).toMatchObject({
      step: 'DescribeKey',
      ok: false,
      advisory: true,
      detail: 'DescribeKey is denied to the platform; the key state cannot be checked ahead, the round trip below still decides.',
      error: { code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', awsError: 'AccessDeniedException' },
    });
    expect(report.steps.slice(2).every((s) => s.ok)).toBe(true);
    expect('lastError' in report).toBe(false);
  });

  it('names a disabled key and a key pending deletion with the answer KMS gives the caller (GenerateDataKey)', async () => {
    const caller = await newCaller();
    const disabled = await customerKey([caller.orgId]);
    await customer.send(new DisableKeyCommand({ KeyId: disabled.keyId }));
    const a = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: disabled.aliasArn });
    expect(a.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false });
    expect(a.lastError).toMatchObject({ code: 'customer.key.error', errorType: 'CustomerKeyUnavailable' });
    expect(a.lastError!.message).toMatch(/disabled/i);

    const deleting = await customerKey([caller.orgId]);
    const scheduled = await customer.send(new ScheduleKeyDeletionCommand({ KeyId: deleting.keyId, PendingWindowInDays: 7 }));
    const b = await service.validate(caller, { keyConfigurationType: 'KmsSymmetric', url: deleting.aliasArn });
    expect(scheduled.DeletionDate).toBeDefined();
    expect(b.steps.at(-1)).toMatchObject({ step: 'GenerateDataKey', ok: false });
    expect(b.lastError!.message).toMatch(/pending deletion/i);
  });
});

describe('the configuration behind a recorded key', () => {
  it('is the current one while it names the key, else the newest earlier version that did; never another organization\'s', async () => {
    const caller = await newCaller();
    const first = await customerKey([caller.orgId]);
    const second = await customerKey([caller.orgId]);
    const created = await service.create(caller, { keyConfigurationType: 'KmsSymmetric', url: first.aliasArn });
    await service.save(caller, created.id, { keyConfigurationType: 'None', version: 1 });
    await service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: first.aliasArn, version: 2 });
    await service.save(caller, created.id, { keyConfigurationType: 'KmsSymmetric', url: second.aliasArn, version: 3 });
    // Versions 1 and 3 named the first key: a data key it wraps opens with the newer.
    expect(await dal.findByKeyRef(caller.orgId, first.keyArn)).toEqual({ config_id: created.id, version: 3, type: 'KmsSymmetric', url: first.aliasArn, fields: null, sealed_secrets: null });
    expect(await dal.findByKeyRef(caller.orgId, second.keyArn)).toMatchObject({ config_id: created.id, version: 4, url: second.aliasArn });
    // The alias retargeted: the current configuration names the new key before any Save records it in history.
    const third = await customerKey([caller.orgId]);
    await dal.setKeyArn(caller.orgId, third.keyArn);
    expect(await dal.findByKeyRef(caller.orgId, third.keyArn)).toMatchObject({ config_id: created.id, version: 4, url: second.aliasArn });
    expect(await dal.findByKeyRef((await newCaller()).orgId, first.keyArn)).toBeUndefined();
  });
});

describe('LocalKeyManager: its secrets kept, rotated and never shown', () => {
  let proxy: XksProxy;
  let proxyServer: XksServer;
  let store: XksCredentials;
  let lkmService: KeyConfigService;
  const proxyUrl = () => `${proxyServer.url}${store.uriPrefix}`;
  const lkm = (over: Partial<KeyConfigBody> = {}): KeyConfigBody => ({
    keyConfigurationType: 'LocalKeyManager',
    url: proxyUrl(),
    keyId: 'kc-key',
    apiId: store.accessKeyId,
    apiKey: store.secretAccessKey,
    ...over,
  });
  /** The body with its secret left out, as a PUT that keeps it sends it. */
  const withoutSecret = (): KeyConfigBody => {
    const { apiKey: _secret, ...rest } = lkm();
    return rest;
  };

  beforeAll(async () => {
    proxy = await openXksProxy({ dataDir: tempDir('convault-kc-xks-') });
    proxyServer = await proxy.serve({ host: '127.0.0.1', port: 0 });
    store = await proxy.credentials.credentialsFor('/kc');
    await proxy.keys.createKey('kc-key', 'encrypt,decrypt');
    lkmService = buildService({
      gateway: createKmsGateway({ clientForRegion: () => platform, defaultRegion: REGION, metrics: createKmsMetrics() }),
      xksUrlPolicy: { allowHttpLoopback: true, allowPrivateNetworks: false },
      testLimiter: createRateLimiter({ limit: 1000, windowMs: 60_000 }),
      platformKeyArn,
      clock: () => clock,
    });
  });
  afterAll(async () => {
    await proxyServer?.close();
    await proxy?.close();
  });

  it('a Save that leaves the secret out or sends it masked keeps the saved one; one that sets it is a rotation on the record', async () => {
    const caller = await newCaller();
    const missing = await appError(lkmService.create(caller, withoutSecret()));
    expect(missing).toMatchObject({ status: 400, errorType: 'InvalidKeyConfiguration', details: { field: 'apiKey' }, message: 'apiKey is required for LocalKeyManager (SigV4 secret access key).' });

    const created = await lkmService.create(caller, lkm());
    expect(created).toMatchObject({ keyConfigurationType: 'LocalKeyManager', url: proxyUrl(), keyId: 'kc-key', apiId: store.accessKeyId, apiKey: SECRET_MASK, version: 1 });
    expect((await dal.findByOrg(caller.orgId))!.fields).toBe(JSON.stringify({ public: { keyId: 'kc-key', apiId: store.accessKeyId }, secrets: ['apiKey'] }));

    // The Test of each Save passes only with the saved secret.
    const kept = await lkmService.save(caller, created.id, { ...withoutSecret(), version: 1 });
    expect(kept).toMatchObject({ version: 2, apiKey: SECRET_MASK });
    expect('clientKey' in kept).toBe(false);
    expect((await lkmService.save(caller, created.id, { ...lkm({ apiKey: SECRET_MASK }), version: 2 })).version).toBe(3);
    expect((await lkmService.save(caller, created.id, { ...lkm(), version: 3 })).version).toBe(4);

    const saves = (await events(caller.orgId)).filter((e) => e.action === 'keyconfig.save');
    expect(saves.map((e) => e.details.secretsSet)).toEqual([undefined, undefined, ['apiKey']]);
    expect(saves[0]!.details.old).toEqual({ keyConfigurationType: 'LocalKeyManager', url: proxyUrl(), keyId: 'kc-key', apiId: store.accessKeyId, keyArn: `${proxyUrl()}/keys/kc-key`, version: 1 });
  });

  it('Test echoes the body with its secrets masked; a configuration its adapter refuses is one failed step, its PEM audited as "(PEM)"', async () => {
    const caller = await newCaller();
    const tested = await lkmService.validate(caller, lkm());
    expect(tested).toMatchObject({ keyConfigurationType: 'LocalKeyManager', keyId: 'kc-key', apiId: store.accessKeyId, apiKey: SECRET_MASK, ok: true });
    expect('clientKey' in tested).toBe(false);

    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const refused = await lkmService.validate(caller, lkm({ clientCertificate: pem }));
    const error = { message: 'mutual TLS needs both clientCertificate and clientKey', code: 'bad.request', errorType: 'InvalidKeyConfiguration' };
    expect(refused).toMatchObject({ ok: false, lastError: error, clientCertificate: pem, apiKey: SECRET_MASK });
    expect(refused.steps).toEqual([{ step: 'Configuration', ok: false, ms: 0, error }]);
    const audited = (await events(caller.orgId)).at(-1)!;
    expect(audited).toMatchObject({ action: 'keyconfig.test', outcome: 'failure' });
    expect(audited.details).toMatchObject({ keyConfigurationType: 'LocalKeyManager', keyId: 'kc-key', clientCertificate: '(PEM)', test: { ok: false, failedStep: 'Configuration' } });
  });

  it('a Test of the saved configuration whose secrets no longer open fails as such; a Save to another type does without them', async () => {
    const caller = await newCaller();
    const created = await lkmService.create(caller, lkm());
    const row = (await dal.findByOrg(caller.orgId))!;
    await handle.db.updateTable('key_configurations').set({ sealed_secrets: row.sealed_secrets!.subarray(0, 8) }).where('id', '=', created.id).execute();
    await expect(lkmService.validate(caller, { ...withoutSecret(), id: created.id })).rejects.toThrow('the sealed secrets of the key configuration are truncated');
    expect(await lkmService.save(caller, created.id, { keyConfigurationType: 'None', version: 1 })).toMatchObject({ keyConfigurationType: 'None', version: 2 });
    // A type without fields stores none.
    expect((await dal.findByOrg(caller.orgId))!).toMatchObject({ fields: null, sealed_secrets: null });
  });
});
