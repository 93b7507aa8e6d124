import { KmsCallError, type KmsFailureKind } from '../../kms/kms-failure.js';
import { regionOf } from '../../kms/kms-gateway.js';
import { errorTypeOf, KeyProviderError, type KeyFailureKind } from '../../providers/key-provider.js';
import { AppError } from '../errors.js';
import type { KeyConfigService } from '../keyconfig/keyconfig-service.js';
import { errorTypeFor, remediationFor } from '../../providers/aws-kms/remediation.js';

/** What a KMS failure message needs to say what to change in AWS. */
export interface KeyErrorSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  defaultRegion: string;
}

/** Failures of the platform side (KMS unreachable, throttled, failing) are 503; a key the customer made unusable is 424. */
const TRANSIENT = new Set<KmsCallError['kind']>(['Unreachable', 'Throttled', 'Internal']);

/**
 * A KMS failure as the API reports it: 424 (the customer's key cannot be used: disabled, denied,
 * gone, pending deletion) or 503 (KMS unreachable or throttling; try again), with errorType
 * CustomerKeyNotFound or CustomerKeyUnavailable and the remediation sentence of the key configuration.
 */
export function customerKeyError(failure: KmsCallError, orgId: string, keyId: string, settings: KeyErrorSettings): AppError {
  const accountId = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:(\d{12}):/.exec(keyId)?.[1];
  const remediation = remediationFor(failure, {
    orgId,
    keyId,
    platformAccountId: settings.platformAccountId,
    encryptionContextKey: settings.encryptionContextKey,
    region: regionOf(keyId, settings.defaultRegion),
    ...(accountId ? { accountId } : {}),
  });
  const status = TRANSIENT.has(failure.kind) ? 503 : 424;
  return new AppError(
    status,
    status === 503 ? 'customer.key.unreachable' : 'customer.key.error',
    `The organization's KMS key cannot be used (${failure.awsName} on ${failure.operation}). ${remediation}`,
    errorTypeFor(failure),
    { keyId, awsError: failure.awsName, operation: failure.operation },
  );
}

/**
 * A failure of any provider as the API reports it: an AWS failure keeps the AWS wording above; any
 * other is 503 when it may pass by itself (unreachable, throttled, failing) and 424 when it is an
 * answer about the key or its configuration, with the provider's remediation sentence.
 */
export function providerKeyError(failure: KeyProviderError, orgId: string, keyId: string, settings: KeyErrorSettings, remediation?: (f: KeyProviderError) => string): AppError {
  if (failure.cause instanceof KmsCallError) return customerKeyError(failure.cause, orgId, keyId, settings);
  const status = failure.retryable || failure.kind === 'Internal' ? 503 : 424;
  const what = failure.providerError ?? failure.kind;
  const operation = failure.details.operation ?? 'a key call';
  return new AppError(
    status,
    status === 503 ? 'customer.key.unreachable' : 'customer.key.error',
    `The organization's key cannot be used (${what} on ${operation}). ${remediation ? remediation(failure) : failure.message}`,
    errorTypeOf(failure.kind),
    { keyId, providerError: what, failureKind: failure.kind, operation },
  );
}

/** The lastError body stored on the key configuration (the same shape the Test reports). */
export function lastErrorBody(err: AppError): Record<string, unknown> {
  return {
    message: err.message,
    code: err.code,
    ...(err.errorType ? { errorType: err.errorType } : {}),
    ...(err.details?.awsError ? { awsError: err.details.awsError } : {}),
    ...(err.details?.providerError ? { providerError: err.details.providerError } : {}),
  };
}

/** What key health is told of a failure: the AWS kind, or the provider-neutral one. */
export type ObservedFailureKind = KmsFailureKind | KeyFailureKind;

export type KeyErrorRecorder = ReturnType<typeof createKeyErrorRecorder>;

/** What key health needs to follow real use of a key (KeyHealthService.observeTraffic). */
export interface KeyUseObserver {
  observeTraffic(orgId: string, keyId: string, failure?: { kind: ObservedFailureKind; error: HealthErrorBody }): Promise<void>;
}

type HealthErrorBody = { message: string; code: string; errorType?: string; awsError?: string };

/**
 * Keeps the key configuration's lastError — and key health, when given — in step with real use of
 * the key, cheaply: the database is written only when the state of an organization (of a key, for
 * health) changes: first failure, a different failure, or the first success after a failure — and
 * once per org (key) per process, to clear an error another node or an earlier run left.
 * Successful requests served from caches cost nothing.
 */
export function createKeyErrorRecorder(deps: { keyConfigs: Pick<KeyConfigService, 'recordLastError'>; health?: KeyUseObserver }) {
  // orgId → signature of what the database holds as far as this process knows ('' = cleared).
  const recorded = new Map<string, string>();
  // orgId|keyId → signature of the key's last outcome told to key health ('' = worked).
  const told = new Map<string, string>();

  async function write(orgId: string, signature: string, body: Record<string, unknown> | null): Promise<void> {
    if (recorded.get(orgId) === signature) return;
    recorded.set(orgId, signature);
    try {
      await deps.keyConfigs.recordLastError(orgId, body);
    } catch {
      // Reporting must never turn a served request into a failure; retry on the next change.
      recorded.delete(orgId);
    }
  }

  async function tell(orgId: string, keyId: string | undefined, signature: string, failure?: { kind: ObservedFailureKind; error: HealthErrorBody }): Promise<void> {
    if (!deps.health || keyId === undefined) return;
    const at = `${orgId}|${keyId}`;
    if (told.get(at) === signature) return;
    told.set(at, signature);
    try {
      await deps.health.observeTraffic(orgId, keyId, failure);
    } catch {
      told.delete(at);
    }
  }

  return {
    /** A KMS call for the org failed with this API error (`kind`: the KMS failure behind it). */
    async failure(orgId: string, err: AppError, kind?: ObservedFailureKind): Promise<void> {
      const body = lastErrorBody(err);
      const keyId = err.details?.keyId === undefined ? undefined : String(err.details.keyId);
      const signature = `${err.errorType}|${String(err.details?.awsError ?? err.details?.providerError ?? '')}|${keyId ?? ''}`;
      await write(orgId, signature, body);
      if (kind) await tell(orgId, keyId, signature, { kind, error: body as HealthErrorBody });
    },
    /** A KMS call for the org with `keyId` (alias or key ARN) succeeded. */
    async success(orgId: string, keyId?: string): Promise<void> {
      await write(orgId, '', null);
      await tell(orgId, keyId, '');
    },
  };
}

/**
 * A failed KMS call as the API error to throw: a KmsCallError becomes the 424/503 error (and is
 * recorded as the configuration's lastError); anything else is returned unchanged.
 */
export async function keyFailure(
  orgId: string,
  keyId: string,
  settings: KeyErrorSettings,
  recorder: KeyErrorRecorder | undefined,
  err: unknown,
  remediation?: (f: KeyProviderError) => string,
): Promise<unknown> {
  if (err instanceof KeyProviderError) {
    const appError = providerKeyError(err, orgId, keyId, settings, remediation);
    await recorder?.failure(orgId, appError, err.cause instanceof KmsCallError ? err.cause.kind : err.kind);
    return appError;
  }
  if (!(err instanceof KmsCallError)) return err;
  const appError = customerKeyError(err, orgId, keyId, settings);
  await recorder?.failure(orgId, appError, err.kind);
  return appError;
}

/** Wraps a KMS call: a KmsCallError becomes the API error (and is recorded), a success clears the record. */
export async function withKeyErrors<T>(
  orgId: string,
  keyId: string,
  settings: KeyErrorSettings,
  recorder: KeyErrorRecorder | undefined,
  call: () => Promise<T>,
  remediation?: (f: KeyProviderError) => string,
): Promise<T> {
  let result: T;
  try {
    result = await call();
  } catch (err) {
    throw await keyFailure(orgId, keyId, settings, recorder, err, remediation);
  }
  await recorder?.success(orgId, keyId);
  return result;
}
