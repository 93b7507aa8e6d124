import { KMS } from '@aws-sdk/client-kms';

/**
 * The one place that constructs `@aws-sdk/client-kms` clients, so every KMS call — to AWS or to the
 * local KMS — goes through the same SDK with the same settings.
 *
 * It returns the aggregated `KMS` client: a `KMSClient` (use `send(command)`) that also has the
 * per-operation methods (`generateDataKey(...)`) the AWS Encryption SDK's KMS keyring calls, so the
 * same client serves convault's own calls and `KmsKeyringNode({ clientProvider })`.
 */

export interface KmsClientOptions {
  /** The KMS endpoint, e.g. the embedded local KMS's URL or `https://kms.us-east-1.amazonaws.com`. */
  endpoint: string;
  region: string;
  /** At the local KMS the access key id selects the principal: a 12-digit account id acts as that account's root. */
  accessKeyId: string;
  /**
   * Needed by AWS and by local KMS principals whose secret is in the principals file. The local KMS
   * does not verify signatures of bare account ids, so a fixed placeholder is used when absent.
   */
  secretAccessKey?: string;
  /** SDK attempts including the first (default 3, the SDK's standard retry mode). 1 disables retries. */
  maxAttempts?: number;
}

export const UNVERIFIED_SECRET = 'convault-local-kms-signature-not-verified';

export function createKmsClient(opts: KmsClientOptions): KMS {
  return new KMS({
    endpoint: opts.endpoint,
    region: opts.region,
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey ?? UNVERIFIED_SECRET },
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  });
}

/**
 * A client for AWS KMS itself (or any KMS reached with real AWS credentials): credentials come from
 * the SDK's default provider chain (environment, web identity, instance or task role).
 */
export function createAwsKmsClient(opts: { endpoint?: string; region: string; maxAttempts?: number }): KMS {
  return new KMS({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  });
}

/** A local KMS is only ever reached on loopback; anything else is treated as real AWS. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
