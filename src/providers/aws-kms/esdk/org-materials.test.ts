import { describe, expect, it } from 'vitest';
import { createKmsMetrics } from '../../../kms/kms-metrics.js';
import { esdkClientProvider, withKmsCallLog } from './esdk-kms-client.js';
import { accountOf, ESDK_PUBLIC_KEY_CONTEXT, isOrgContext } from './org-materials.js';

describe('ESDK materials of an organization', () => {
  it('accepts exactly {<ctxKey>: orgId}, plus the public key pair a signing suite adds', () => {
    expect(isOrgContext({ ctx: 'org-1' }, 'ctx', 'org-1')).toBe(true);
    expect(isOrgContext({ ctx: 'org-1', [ESDK_PUBLIC_KEY_CONTEXT]: 'A1b2' }, 'ctx', 'org-1')).toBe(true);
    expect(isOrgContext({ ctx: 'org-2' }, 'ctx', 'org-1')).toBe(false);
    expect(isOrgContext({ ctx: 'org-1', other: 'x' }, 'ctx', 'org-1')).toBe(false);
    expect(isOrgContext({ other: 'org-1' }, 'ctx', 'org-1')).toBe(false);
    expect(isOrgContext({}, 'ctx', 'org-1')).toBe(false);
  });

  it('reads the account of a KMS ARN', () => {
    expect(accountOf('arn:aws:kms:us-east-1:111122223333:alias/x')).toBe('111122223333');
    expect(accountOf('arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/abc')).toBe('111122223333');
    expect(accountOf('alias/x')).toBeUndefined();
  });

  it('the KMS adapter counts calls and logs typed failures for the request in scope', async () => {
    const metrics = createKmsMetrics();
    const failing = { send: async () => Promise.reject(Object.assign(new Error('key is disabled'), { name: 'DisabledException' })) };
    const provider = esdkClientProvider(() => failing as never, metrics);
    const client = provider('us-east-1');
    if (!client) throw new Error('no client');
    const { log, error } = await withKmsCallLog(async () => client.generateDataKey({ KeyId: 'arn:aws:kms:us-east-1:111122223333:alias/x' }));
    expect(error).toBeDefined();
    expect(log.calls).toBe(1);
    expect(log.failures.map((f) => [f.kind, f.awsName, f.operation])).toEqual([['Disabled', 'DisabledException', 'GenerateDataKey']]);
    expect(metrics.count('GenerateDataKey')).toBe(1);
    // Outside a scope nothing is logged, and one adapter per region is reused.
    await expect(client.decrypt({ CiphertextBlob: new Uint8Array(1) })).rejects.toMatchObject({ kind: 'Disabled' });
    expect(provider('us-east-1')).toBe(client);
  });
});
