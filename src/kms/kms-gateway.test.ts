import { describe, expect, it } from 'vitest';
import { createKmsClient } from './client-factory.js';
import { KmsCallError } from './kms-failure.js';
import { createKmsGateway } from './kms-gateway.js';
import { createKmsMetrics } from './kms-metrics.js';

/**
 * The circuit breaker is per (region, key account): real SDK clients against a port where nothing
 * listens make one account's calls fail as unreachable; another account's calls still go out.
 */
describe('KMS gateway circuit breaker', () => {
  it("opens for the failing key's account only", async () => {
    const client = createKmsClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'AKIAEXAMPLE000000001', secretAccessKey: 's' }, maxAttempts: 1 });
    const gateway = createKmsGateway({ clientForRegion: () => client, defaultRegion: 'us-east-1', metrics: createKmsMetrics(), breaker: { failureThreshold: 2, openMs: 60_000 } });
    const keyA = 'arn:aws:kms:us-east-1:111111111111:alias/tenant-a';
    const keyB = 'arn:aws:kms:us-east-1:222222222222:alias/tenant-b';
    const failure = (keyId: string) => gateway.describeKey(keyId).then(() => undefined, (e: unknown) => e as KmsCallError);

    for (let i = 0; i < 2; i++) expect((await failure(keyA))!.awsName).not.toBe('CircuitOpen');
    expect((await failure(keyA))!.awsName).toBe('CircuitOpen');
    expect(gateway.breakerState('us-east-1', '111111111111')).toBe('open');
    expect(gateway.breakerState('us-east-1')).toBe('open');

    // Tenant B's key is still tried (and fails on its own account's merits).
    const b = await failure(keyB);
    expect(b).toBeInstanceOf(KmsCallError);
    expect(b!.awsName).not.toBe('CircuitOpen');
    expect(gateway.breakerState('us-east-1', '222222222222')).toBe('closed');
    client.destroy();
  });
});
