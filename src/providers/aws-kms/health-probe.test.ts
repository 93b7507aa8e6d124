import { randomBytes } from 'node:crypto';
import type { KeyMetadata } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { KmsCallError, type KmsFailureKind } from '../../kms/kms-failure.js';
import { statusForFailure, type ProtectedKey } from '../key-health.js';
import { probeOrgKeys, type ProbeInput } from './health-probe.js';

const ORG = 'org-1';
const ACCOUNT = '111122223333';
const ALIAS = `arn:aws:kms:us-east-1:${ACCOUNT}:alias/current`;
const CURRENT = `arn:aws:kms:us-east-1:${ACCOUNT}:key/current`;
const OLD = `arn:aws:kms:us-east-1:${ACCOUNT}:key/old`;
const DELETION = new Date('2031-02-03T04:05:06.000Z');

const fail = (kind: KmsFailureKind, awsName: string, operation: string) => new KmsCallError(kind, awsName, `${awsName} from KMS`, operation);
const meta = (arn: string, state: string, extra: Partial<KeyMetadata> = {}): KeyMetadata =>
  ({ Arn: arn, KeyId: arn.split('/')[1], KeyState: state, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', ...extra }) as KeyMetadata;

/** A gateway that answers like KMS for the alias and the keys given, with failures where asked. */
function fakeGateway(opts: {
  describe?: Record<string, KeyMetadata | KmsCallError>;
  generate?: KmsCallError;
  decrypt?: Record<string, KmsCallError>;
}): ProbeInput['gateway'] & { calls: string[] } {
  const calls: string[] = [];
  const described: Record<string, KeyMetadata | KmsCallError> = { [ALIAS]: meta(CURRENT, 'Enabled'), [OLD]: meta(OLD, 'Enabled'), ...opts.describe };
  return {
    calls,
    async describeKey(keyId) {
      calls.push(`DescribeKey ${keyId}`);
      const m = described[keyId];
      if (!m) throw fail('NotFound', 'NotFoundException', 'DescribeKey');
      if (m instanceof KmsCallError) throw m;
      return m;
    },
    async generateDataKey(keyId) {
      calls.push(`GenerateDataKey ${keyId}`);
      if (opts.generate) throw opts.generate;
      const plaintext = randomBytes(32);
      return { plaintext: Buffer.from(plaintext), ciphertextBlob: plaintext, keyArn: CURRENT };
    },
    async decrypt(blob, _context, keyId) {
      calls.push(`Decrypt ${keyId}`);
      const f = opts.decrypt?.[keyId];
      if (f) throw f;
      return { plaintext: Buffer.from(blob), keyArn: keyId };
    },
  };
}

function input(gateway: ProbeInput['gateway'], protectedKeys: ProtectedKey[] = []): ProbeInput {
  return {
    gateway,
    orgId: ORG,
    aliasArn: ALIAS,
    lastKnownKeyArn: CURRENT,
    protectedKeys,
    sampleDataKey: async () => ({ wrappedKey: randomBytes(32), contextKey: 'convault-organization-id' }),
    settings: { platformAccountId: '444455556666', encryptionContextKey: 'convault-organization-id', allowedRegions: ['us-east-1'], defaultRegion: 'us-east-1' },
  };
}

describe('the status of a KMS failure', () => {
  it('is degraded for what passes by itself, failed for every answer about the key', () => {
    const expected: Record<KmsFailureKind, 'ok' | 'degraded' | 'failed'> = {
      Throttled: 'degraded',
      Unreachable: 'degraded',
      Internal: 'degraded',
      AccessDenied: 'failed',
      NotFound: 'failed',
      Disabled: 'failed',
      InvalidState: 'failed',
      InvalidCiphertext: 'failed',
      IncorrectKey: 'failed',
      InvalidRequest: 'failed',
    };
    for (const [kind, status] of Object.entries(expected)) expect([kind, statusForFailure(kind as KmsFailureKind)]).toEqual([kind, status]);
  });
});

describe('probeOrgKeys', () => {
  it('ok: the Test round trip on the alias passes; the current key is described', async () => {
    const gw = fakeGateway({});
    const result = await probeOrgKeys(input(gw, [{ keyArn: CURRENT, dataKeys: 3 }]));
    expect(result).toEqual({ status: 'ok', keys: [{ keyArn: CURRENT, current: true, state: 'Enabled', status: 'ok', dataKeys: 3 }], currentKeyArn: CURRENT });
    expect(gw.calls).toEqual([`DescribeKey ${ALIAS}`, `GenerateDataKey ${ALIAS}`, `Decrypt ${CURRENT}`]);
  });

  it('ok when DescribeKey is denied by the key policy but the round trip works (state Unknown)', async () => {
    const result = await probeOrgKeys(input(fakeGateway({ describe: { [ALIAS]: fail('AccessDenied', 'AccessDeniedException', 'DescribeKey') } })));
    expect(result.status).toBe('ok');
    expect(result.keys[0]).toMatchObject({ keyArn: CURRENT, state: 'Unknown', status: 'ok' });
  });

  it.each([
    ['Throttled', 'ThrottlingException'],
    ['Unreachable', 'ECONNREFUSED'],
    ['Internal', 'KMSInternalException'],
  ] as const)('degraded when GenerateDataKey fails with %s', async (kind, awsName) => {
    const result = await probeOrgKeys(input(fakeGateway({ generate: fail(kind, awsName, 'GenerateDataKey') })));
    expect(result.status).toBe('degraded');
    expect(result.lastError).toMatchObject({ code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', awsError: awsName });
  });

  it('failed when the key policy denies GenerateDataKey, with the remediation sentence', async () => {
    const result = await probeOrgKeys(input(fakeGateway({ generate: fail('AccessDenied', 'AccessDeniedException', 'GenerateDataKey') })));
    expect(result.status).toBe('failed');
    expect(result.lastError?.message).toMatch(/key policy must allow account 444455556666/);
    expect(result.lastError?.awsError).toBe('AccessDeniedException');
  });

  it('failed when the alias does not exist (CustomerKeyNotFound); the last known key ARN is reported', async () => {
    const result = await probeOrgKeys(input(fakeGateway({ describe: { [ALIAS]: fail('NotFound', 'NotFoundException', 'DescribeKey') } })));
    expect(result.status).toBe('failed');
    expect(result.lastError?.errorType).toBe('CustomerKeyNotFound');
    expect(result.keys[0]).toMatchObject({ keyArn: CURRENT, current: true, state: 'Unknown', status: 'failed' });
    expect(result.currentKeyArn).toBeUndefined();
  });

  it('failed when the current key is disabled', async () => {
    const result = await probeOrgKeys(input(fakeGateway({ describe: { [ALIAS]: meta(CURRENT, 'Disabled') } })));
    expect(result.status).toBe('failed');
    expect(result.lastError?.message).toMatch(/disabled.*kms:EnableKey/);
    expect(result.keys[0]).toMatchObject({ state: 'Disabled', status: 'failed' });
  });

  it('failed with the deletion date when the current key is pending deletion', async () => {
    const result = await probeOrgKeys(input(fakeGateway({ describe: { [ALIAS]: meta(CURRENT, 'PendingDeletion', { DeletionDate: DELETION }) } })));
    expect(result.status).toBe('failed');
    expect(result.deletionDate).toBe(DELETION.getTime());
    expect(result.keys[0]).toMatchObject({ state: 'PendingDeletion', deletionDate: DELETION.toISOString() });
    expect(result.lastError?.message).toContain(DELETION.toISOString());
  });

  it('describes every other key that still protects data; an old key pending deletion fails the org with its date', async () => {
    const gw = fakeGateway({ describe: { [OLD]: meta(OLD, 'PendingDeletion', { DeletionDate: DELETION }) } });
    const result = await probeOrgKeys(input(gw, [{ keyArn: CURRENT, dataKeys: 1 }, { keyArn: OLD, dataKeys: 7 }]));
    expect(result.status).toBe('failed');
    expect(result.deletionDate).toBe(DELETION.getTime());
    expect(result.lastError).toMatchObject({ keyArn: OLD, errorType: 'CustomerKeyUnavailable' });
    expect(result.lastError?.message).toMatch(/still protects 7 data keys.*scheduled for deletion on 2031-02-03T04:05:06.000Z.*kms:CancelKeyDeletion/);
    expect(result.keys).toEqual([
      { keyArn: CURRENT, current: true, state: 'Enabled', status: 'ok', dataKeys: 1 },
      expect.objectContaining({ keyArn: OLD, current: false, state: 'PendingDeletion', status: 'failed', dataKeys: 7, deletionDate: DELETION.toISOString() }),
    ]);
    expect(gw.calls).toContain(`DescribeKey ${OLD}`);
    expect(gw.calls.filter((c) => c.startsWith('Decrypt'))).toEqual([`Decrypt ${CURRENT}`]); // DescribeKey answered: no Decrypt of old data
  });

  it('an old key that is disabled fails; one that is throttled only degrades', async () => {
    const disabled = await probeOrgKeys(input(fakeGateway({ describe: { [OLD]: meta(OLD, 'Disabled') } }), [{ keyArn: OLD, dataKeys: 1 }]));
    expect(disabled.status).toBe('failed');
    expect(disabled.lastError?.message).toMatch(/still protects 1 data key of this organization, is disabled/);
    const throttled = await probeOrgKeys(input(fakeGateway({ describe: { [OLD]: fail('Throttled', 'ThrottlingException', 'DescribeKey') } }), [{ keyArn: OLD, dataKeys: 1 }]));
    expect(throttled.status).toBe('degraded');
    expect(throttled.lastError).toMatchObject({ keyArn: OLD, awsError: 'ThrottlingException' });
  });

  it('an old key whose DescribeKey is denied is judged by decrypting one of its data keys', async () => {
    const denied = fail('AccessDenied', 'AccessDeniedException', 'DescribeKey');
    const readable = await probeOrgKeys(input(fakeGateway({ describe: { [OLD]: denied } }), [{ keyArn: OLD, dataKeys: 2 }]));
    expect(readable.status).toBe('ok');
    expect(readable.keys[1]).toMatchObject({ keyArn: OLD, state: 'Unknown', status: 'ok' });

    const unreadable = await probeOrgKeys(
      input(fakeGateway({ describe: { [OLD]: denied }, decrypt: { [OLD]: fail('AccessDenied', 'AccessDeniedException', 'Decrypt') } }), [{ keyArn: OLD, dataKeys: 2 }]),
    );
    expect(unreadable.status).toBe('failed');
    expect(unreadable.lastError).toMatchObject({ keyArn: OLD, awsError: 'AccessDeniedException' });
  });

  it('the worst status wins and its error is the lastError', async () => {
    const result = await probeOrgKeys(
      input(fakeGateway({ generate: fail('Throttled', 'ThrottlingException', 'GenerateDataKey'), describe: { [OLD]: meta(OLD, 'Disabled') } }), [{ keyArn: OLD, dataKeys: 1 }]),
    );
    expect(result.status).toBe('failed');
    expect(result.lastError?.keyArn).toBe(OLD);
    expect(result.keys.map((k) => k.status)).toEqual(['degraded', 'failed']);
  });
});
