import type { KmsCallError } from '../../kms/kms-failure.js';
import { regionOf } from '../../kms/kms-gateway.js';
import type { FailureReport } from '../key-provider.js';
import { errorTypeFor, remediationFor } from './remediation.js';

/** Failures of the platform side (KMS unreachable, throttled, failing) are 503; a key the customer made unusable is 424. */
const TRANSIENT = new Set<KmsCallError['kind']>(['Unreachable', 'Throttled', 'Internal']);

export interface AwsReportSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  defaultRegion: string;
}

/**
 * A KMS failure as the API reports it: 424 (the customer's key cannot be used: disabled, denied,
 * gone, pending deletion) or 503 (KMS unreachable or throttling; try again), with errorType
 * CustomerKeyNotFound or CustomerKeyUnavailable, the AWS exception as `awsError`, and the
 * remediation sentence of the key configuration.
 */
export function awsFailureReport(failure: KmsCallError, ctx: { orgId: string; keyId: string }, settings: AwsReportSettings): FailureReport {
  const { orgId, keyId } = ctx;
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
  return {
    status,
    code: status === 503 ? 'customer.key.unreachable' : 'customer.key.error',
    message: `The organization's KMS key cannot be used (${failure.awsName} on ${failure.operation}). ${remediation}`,
    errorType: errorTypeFor(failure),
    details: { keyId, awsError: failure.awsName, operation: failure.operation },
  };
}
