import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  ReEncryptCommand,
  type KMSClient,
  type KeyMetadata,
} from '@aws-sdk/client-kms';
import { createCircuitBreaker, type CircuitBreaker, type CircuitState } from './circuit-breaker.js';
import { classifyKmsError, KmsCallError } from './kms-failure.js';
import type { KmsMetrics } from './kms-metrics.js';

export type EncryptionContext = Record<string, string>;

export interface KmsGatewayDeps {
  /** One SDK client per region (a key ARN names its region; the client must call that region). */
  clientForRegion(region: string): KMSClient;
  defaultRegion: string;
  metrics: KmsMetrics;
  now?: () => number;
  breaker?: { failureThreshold: number; openMs: number };
}

/** The region an ARN names, or the default for bare key ids and alias names. */
export function regionOf(keyId: string, fallback: string): string {
  const m = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyId);
  return m?.[1] ?? fallback;
}

/** The account a key ARN names; key ids and alias names (the caller's own account) share one breaker. */
function accountOfKey(keyId: string): string {
  return /^arn:[^:]+:kms:[^:]*:(\d{12}):/.exec(keyId)?.[1] ?? 'own';
}

/**
 * Every KMS call of convault: typed failures, call metrics, and a circuit breaker per (region, key
 * account) so an outage fails fast instead of stacking timeouts — and one tenant's failing key (an
 * XKS proxy down, a key account's endpoint unreachable) pauses calls to that account only, never
 * every tenant's. Retries with backoff are the SDK's (maxAttempts).
 */
export function createKmsGateway(deps: KmsGatewayDeps) {
  const now = deps.now ?? Date.now;
  const breakers = new Map<string, CircuitBreaker>();
  const breakerFor = (region: string, account: string) => {
    const id = `${region}|${account}`;
    let b = breakers.get(id);
    if (!b) {
      b = createCircuitBreaker({ failureThreshold: deps.breaker?.failureThreshold ?? 5, openMs: deps.breaker?.openMs ?? 5000, now });
      breakers.set(id, b);
    }
    return b;
  };

  async function call<T>(operation: string, keyId: string, send: (client: KMSClient) => Promise<T>): Promise<T> {
    const region = regionOf(keyId, deps.defaultRegion);
    const account = accountOfKey(keyId);
    const breaker = breakerFor(region, account);
    if (!breaker.allow()) {
      deps.metrics.record(operation, 'CircuitOpen', 0);
      throw new KmsCallError('Unreachable', 'CircuitOpen', `KMS in ${region} is unreachable for this key's account; calls are paused for a few seconds`, operation);
    }
    const started = now();
    try {
      const result = await send(deps.clientForRegion(region));
      breaker.onReachable();
      deps.metrics.record(operation, 'ok', now() - started);
      return result;
    } catch (err) {
      const failure = classifyKmsError(err, operation);
      if (failure.kind === 'Unreachable') breaker.onUnreachable();
      else breaker.onReachable();
      deps.metrics.record(operation, failure.awsName, now() - started);
      throw failure;
    }
  }

  return {
    async describeKey(keyId: string): Promise<KeyMetadata> {
      const out = await call('DescribeKey', keyId, (c) => c.send(new DescribeKeyCommand({ KeyId: keyId })));
      if (!out.KeyMetadata) throw new KmsCallError('Internal', 'EmptyResponse', 'DescribeKey returned no metadata', 'DescribeKey');
      return out.KeyMetadata;
    },

    /** A fresh AES-256 data key: the plaintext (caller owns and must zero it) and its KMS blob. */
    async generateDataKey(keyId: string, context: EncryptionContext): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyArn: string }> {
      const out = await call('GenerateDataKey', keyId, (c) =>
        c.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context })),
      );
      if (!out.Plaintext || !out.CiphertextBlob || !out.KeyId) {
        throw new KmsCallError('Internal', 'EmptyResponse', 'GenerateDataKey returned no key', 'GenerateDataKey');
      }
      return { plaintext: Buffer.from(out.Plaintext), ciphertextBlob: Buffer.from(out.CiphertextBlob), keyArn: out.KeyId };
    },

    /** Decrypts a blob; `keyId` (the ARN recorded with the blob) pins the key, as AWS recommends. */
    async decrypt(ciphertextBlob: Buffer, context: EncryptionContext, keyId: string): Promise<{ plaintext: Buffer; keyArn: string }> {
      const out = await call('Decrypt', keyId, (c) =>
        c.send(new DecryptCommand({ CiphertextBlob: ciphertextBlob, EncryptionContext: context, KeyId: keyId })),
      );
      if (!out.Plaintext || !out.KeyId) throw new KmsCallError('Internal', 'EmptyResponse', 'Decrypt returned no plaintext', 'Decrypt');
      return { plaintext: Buffer.from(out.Plaintext), keyArn: out.KeyId };
    },

    async encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertextBlob: Buffer; keyArn: string }> {
      const out = await call('Encrypt', keyId, (c) => c.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context })));
      if (!out.CiphertextBlob || !out.KeyId) throw new KmsCallError('Internal', 'EmptyResponse', 'Encrypt returned no blob', 'Encrypt');
      return { ciphertextBlob: Buffer.from(out.CiphertextBlob), keyArn: out.KeyId };
    },

    /** Moves a blob to another key inside KMS; the plaintext never leaves it. */
    async reEncrypt(input: { ciphertextBlob: Buffer; sourceKeyId: string; destinationKeyId: string; context: EncryptionContext }): Promise<{ ciphertextBlob: Buffer; keyArn: string }> {
      const out = await call('ReEncrypt', input.destinationKeyId, (c) =>
        c.send(
          new ReEncryptCommand({
            CiphertextBlob: input.ciphertextBlob,
            SourceKeyId: input.sourceKeyId,
            SourceEncryptionContext: input.context,
            DestinationKeyId: input.destinationKeyId,
            DestinationEncryptionContext: input.context,
          }),
        ),
      );
      if (!out.CiphertextBlob || !out.KeyId) throw new KmsCallError('Internal', 'EmptyResponse', 'ReEncrypt returned no blob', 'ReEncrypt');
      return { ciphertextBlob: Buffer.from(out.CiphertextBlob), keyArn: out.KeyId };
    },

    /**
     * The breaker of one (region, key account); without an account, the region's worst: open if any
     * account's is open, else half-open if any is, else closed.
     */
    breakerState(region: string, accountId?: string): CircuitState {
      if (accountId !== undefined) return breakerFor(region, accountId).state;
      const states = [...breakers.entries()].filter(([id]) => id.startsWith(`${region}|`)).map(([, b]) => b.state);
      return states.includes('open') ? 'open' : states.includes('half-open') ? 'half-open' : 'closed';
    },
  };
}

export type KmsGateway = ReturnType<typeof createKmsGateway>;
