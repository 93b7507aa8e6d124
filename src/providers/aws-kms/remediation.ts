import type { KmsCallError } from '../../kms/kms-failure.js';

export interface RemediationContext {
  orgId: string;
  platformAccountId: string;
  encryptionContextKey: string;
  keyId: string;
  region: string;
  accountId?: string;
  /** What to do once the key is fixed (default "test again"; a rewrap says "rewrap again"). */
  nextStep?: string;
}

/** The sentence that tells an admin what to change in AWS for a failed KMS call. */
export function remediationFor(failure: KmsCallError, ctx: RemediationContext): string {
  const next = ctx.nextStep ?? 'test again';
  switch (failure.kind) {
    case 'AccessDenied':
      return (
        `Access denied: the key policy must allow account ${ctx.platformAccountId} to call kms:GenerateDataKey* and kms:Decrypt ` +
        `with kms:EncryptionContext:${ctx.encryptionContextKey} = ${ctx.orgId}. ` +
        'Copy the statement from GET /api/v2/conversations/keyconfigurations/keypolicy into the key policy.'
      );
    case 'NotFound':
      return `The alias or key ${ctx.keyId} does not exist in account ${ctx.accountId ?? '(see ARN)'}, region ${ctx.region}: create the alias (kms:CreateAlias) or correct the ARN.`;
    case 'Disabled':
      return `The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then ${next}.`;
    case 'InvalidState':
      return `The KMS key is pending deletion or not usable: cancel the deletion (kms:CancelKeyDeletion), enable the key, then ${next}.`;
    case 'Throttled':
      return 'AWS KMS throttled the request: try again in a moment, or raise the KMS request quota of the key\'s account.';
    case 'Unreachable':
      return `AWS KMS in ${ctx.region} could not be reached from the platform: try again; if it persists, the platform operator should check connectivity to KMS.`;
    case 'InvalidCiphertext':
    case 'IncorrectKey':
      return 'KMS refused to decrypt the data key it had just generated: the key policy must allow kms:Decrypt with the same encryption-context condition as kms:GenerateDataKey*.';
    case 'InvalidRequest':
      return `KMS rejected the request (${failure.awsName}): ${failure.message}. Use a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT).`;
    case 'Internal':
      return `AWS KMS failed (${failure.awsName}): try again; if it persists, contact the platform operator.`;
  }
}

/** errorType of the API for a failure: a missing key is told apart from an unusable one. */
export function errorTypeFor(failure: KmsCallError): 'CustomerKeyNotFound' | 'CustomerKeyUnavailable' {
  return failure.kind === 'NotFound' ? 'CustomerKeyNotFound' : 'CustomerKeyUnavailable';
}
