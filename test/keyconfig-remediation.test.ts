import { describe, expect, it } from 'vitest';
import { KmsCallError, type KmsFailureKind } from '../src/kms/kms-failure.js';
import { errorTypeFor, remediationFor } from '../src/providers/aws-kms/remediation.js';

/** The sentence an admin reads for each kind of failed KMS call: what to change in AWS. */

const ctx = { orgId: 'org-7', platformAccountId: '444455556666', encryptionContextKey: 'convault-organization-id', keyId: 'alias/tenant', region: 'eu-west-1' };
const failure = (kind: KmsFailureKind, awsName = `${kind}Exception`) => new KmsCallError(kind, awsName, 'Key usage is wrong', 'GenerateDataKey');

describe('remediation', () => {
  it.each<[KmsFailureKind, string]>([
    [
      'AccessDenied',
      'Access denied: the key policy must allow account 444455556666 to call kms:GenerateDataKey* and kms:Decrypt with kms:EncryptionContext:convault-organization-id = org-7. Copy the statement from GET /api/v2/conversations/keyconfigurations/keypolicy into the key policy.',
    ],
    ['NotFound', 'The alias or key alias/tenant does not exist in account (see ARN), region eu-west-1: create the alias (kms:CreateAlias) or correct the ARN.'],
    ['Disabled', 'The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then test again.'],
    ['InvalidState', 'The KMS key is pending deletion or not usable: cancel the deletion (kms:CancelKeyDeletion), enable the key, then test again.'],
    ['Throttled', "AWS KMS throttled the request: try again in a moment, or raise the KMS request quota of the key's account."],
    ['Unreachable', 'AWS KMS in eu-west-1 could not be reached from the platform: try again; if it persists, the platform operator should check connectivity to KMS.'],
    ['InvalidCiphertext', 'KMS refused to decrypt the data key it had just generated: the key policy must allow kms:Decrypt with the same encryption-context condition as kms:GenerateDataKey*.'],
    ['IncorrectKey', 'KMS refused to decrypt the data key it had just generated: the key policy must allow kms:Decrypt with the same encryption-context condition as kms:GenerateDataKey*.'],
    ['InvalidRequest', 'KMS rejected the request (InvalidRequestException): Key usage is wrong. Use a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT).'],
    ['Internal', 'AWS KMS failed (InternalException): try again; if it persists, contact the platform operator.'],
  ])('for %s', (kind, sentence) => {
    expect(remediationFor(failure(kind), ctx)).toBe(sentence);
  });

  it('names the account when it is known, and the next step a caller asks for', () => {
    expect(remediationFor(failure('NotFound'), { ...ctx, accountId: '111122223333' })).toContain('does not exist in account 111122223333, region eu-west-1');
    expect(remediationFor(failure('Disabled'), { ...ctx, nextStep: 'rewrap again' })).toBe('The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then rewrap again.');
    expect(remediationFor(failure('InvalidState'), { ...ctx, nextStep: 'rewrap again' })).toMatch(/enable the key, then rewrap again\.$/);
  });

  it('tells a missing key apart from an unusable one', () => {
    expect(errorTypeFor(failure('NotFound'))).toBe('CustomerKeyNotFound');
    for (const kind of ['AccessDenied', 'Disabled', 'InvalidState', 'Unreachable', 'Internal'] as const) expect(errorTypeFor(failure(kind))).toBe('CustomerKeyUnavailable');
  });
});
