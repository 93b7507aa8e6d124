import { KMS } from '@aws-sdk/client-kms';

/**
 * The one place that constructs `@aws-sdk/client-kms` clients, so every KMS call — to AWS or to the
 * local KMS — goes through the same SDK with the same settings.
 *
 * It returns the aggregated `KMS` client: a `KMSClient` (use `send(command)`) that also has the
 * per-operation methods (`generateDataKey(...)`) the AWS Encryption SDK's KMS keyring calls, so the
 * same client serves convault's own calls and `KmsKeyringNode({ clientProvider })`.
 */

export interface KmsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface KmsClientOptions {
  /** The KMS endpoint, e.g. the embedded local KMS's URL or `https://kms.us-east-1.amazonaws.com`. */
  endpoint: string;
  region: string;
  /** The signing key (the local KMS verifies every signature, as AWS does), or a provider of it. */
  credentials: KmsCredentials | (() => Promise<KmsCredentials>);
  /** SDK attempts including the first (default 3, the SDK's standard retry mode). 1 disables retries. */
  maxAttempts?: number;
}

/**
 * A KMS that does not answer must not hold a request (or a worker) forever: connecting gets 3 s, a
 * whole call 10 s, after which the SDK fails the attempt (and its retry policy decides the rest).
 */
export const KMS_TIMEOUTS = { connectionTimeout: 3_000, requestTimeout: 10_000 } as const;

export function createKmsClient(opts: KmsClientOptions): KMS {
  return new KMS({
    endpoint: opts.endpoint,
    region: opts.region,
    credentials: opts.credentials,
    requestHandler: { ...KMS_TIMEOUTS },
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
    requestHandler: { ...KMS_TIMEOUTS },
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  });
}
