import { failureReport, KeyProviderError, type KeyFailureKind, type KeyProvider } from '../../providers/key-provider.js';
import { AppError } from '../errors.js';
import type { KeyConfigService } from '../keyconfig/keyconfig-service.js';

/** The deployment's KMS settings the data key and encryption services carry (what their messages name). */
export interface KeyErrorSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  defaultRegion: string;
}

/**
 * A failure of the organization's key as the API reports it: 424 when it is an answer about the
 * key (disabled, denied, gone, pending deletion, misconfigured), 503 when it may pass by itself
 * (unreachable, throttled, failing), worded by the key's adapter (AWS KMS names the AWS exception
 * as `awsError`) or, without one, by the port's default with the adapter's remediation sentence.
 */
export function providerKeyError(failure: KeyProviderError, orgId: string, keyId: string, provider?: Pick<KeyProvider, 'report' | 'remediation'>): AppError {
  const report = provider?.report?.(failure, { orgId, keyId }) ?? failureReport(failure, keyId, provider ? provider.remediation(failure, { orgId }) : failure.message);
  return new AppError(report.status, report.code, report.message, report.errorType, report.details);
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

/** What key health is told of a failure: its provider-neutral kind. */
export type ObservedFailureKind = KeyFailureKind;

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
 * A failed call to the organization's key as the API error to throw: a KeyProviderError becomes the
 * 424/503 error (and is recorded as the configuration's lastError and told to key health); anything
 * else is returned unchanged.
 */
export async function keyFailure(orgId: string, keyId: string, recorder: KeyErrorRecorder | undefined, err: unknown, provider?: Pick<KeyProvider, 'report' | 'remediation'>): Promise<unknown> {
  if (!(err instanceof KeyProviderError)) return err;
  const appError = providerKeyError(err, orgId, keyId, provider);
  await recorder?.failure(orgId, appError, err.kind);
  return appError;
}

/** Wraps a call to the organization's key: a failure becomes the API error (and is recorded), a success clears the record. */
export async function withKeyErrors<T>(
  orgId: string,
  keyId: string,
  recorder: KeyErrorRecorder | undefined,
  call: () => Promise<T>,
  provider?: () => Pick<KeyProvider, 'report' | 'remediation'> | undefined,
): Promise<T> {
  let result: T;
  try {
    result = await call();
  } catch (err) {
    throw await keyFailure(orgId, keyId, recorder, err, provider?.());
  }
  await recorder?.success(orgId, keyId);
  return result;
}
