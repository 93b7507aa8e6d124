import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyMetadata } from '@aws-sdk/client-kms';
import { aesGcmOpen, aesGcmSeal } from '../../crypto/index.js';
import type { KmsGateway } from '../../kms/kms-gateway.js';
import { KmsCallError } from '../../kms/kms-failure.js';
import { parseAliasArn } from './alias-arn.js';
import { errorTypeFor, remediationFor, type RemediationContext } from './remediation.js';
import type { KeyTestReport as PortKeyTestReport, KeyTestStep as PortKeyTestStep, KeyTestStepError } from '../key-provider.js';

export type KeyTestStepName = 'ArnSyntax' | 'DescribeKey' | 'GenerateDataKey' | 'EncryptTestData' | 'DecryptDataKey' | 'DecryptTestData';

/** The port's Test report (src/providers/key-provider.ts), with this adapter's step names. */
export type { KeyTestStepError };
export interface KeyTestStep extends PortKeyTestStep {
  step: KeyTestStepName;
}
export interface KeyTestReport extends PortKeyTestReport {
  steps: KeyTestStep[];
}

export interface KeyTestInput {
  gateway: Pick<KmsGateway, 'describeKey' | 'generateDataKey' | 'decrypt'>;
  orgId: string;
  platformAccountId: string;
  encryptionContextKey: string;
  allowedRegions: readonly string[];
  defaultRegion: string;
  /** The platform's own key: an alias that resolves to it is refused (it is never an organization's key). */
  platformKeyArn?: string;
  /** KmsSymmetric: the alias ARN as entered. None: the platform key, which skips the ARN rules. */
  target: { kind: 'alias'; aliasArn: unknown } | { kind: 'platform'; keyId: string };
  now?: () => number;
}

/**
 * The Test button: the whole path data will take (describe, generate a data key under the org's
 * encryption context, use it, decrypt it again with a fresh KMS call), step by step, so an admin
 * sees where it breaks and what to change. Nothing is stored.
 */
export async function runKeyTest(input: KeyTestInput): Promise<KeyTestReport> {
  const now = input.now ?? (() => performance.now());
  const steps: KeyTestStep[] = [];
  const context = { [input.encryptionContextKey]: input.orgId };

  const timed = async <T>(step: KeyTestStepName, fn: () => Promise<T> | T): Promise<{ value?: T; failed?: KmsCallError | KeyTestStepError; ms: number }> => {
    const started = now();
    try {
      const value = await fn();
      return { value, ms: Math.round(now() - started) };
    } catch (err) {
      const ms = Math.round(now() - started);
      if (err instanceof KmsCallError) return { failed: err, ms };
      return { failed: { message: (err as Error).message, code: 'key.test.failed' }, ms };
    }
  };

  let keyId: string;
  let rem: RemediationContext;
  if (input.target.kind === 'alias') {
    const started = now();
    const parsed = parseAliasArn(input.target.aliasArn, input.allowedRegions, input.platformAccountId);
    const ms = Math.round(now() - started);
    if (!parsed.ok) {
      const error = { message: parsed.message, code: 'bad.request', errorType: 'InvalidKeyConfiguration' };
      steps.push({ step: 'ArnSyntax', ok: false, ms, error });
      return { ok: false, steps, lastError: error };
    }
    steps.push({ step: 'ArnSyntax', ok: true, ms });
    keyId = parsed.value.arn;
    rem = { ...base(input), keyId, region: parsed.value.region, accountId: parsed.value.accountId };
  } else {
    keyId = input.target.keyId;
    rem = { ...base(input), keyId, region: input.defaultRegion };
  }

  /** For an organization's own key only: an alias that resolves into the platform's account or to its key. */
  const platformKeyProblem = (arn: string | undefined): KeyTestStepError | undefined => {
    if (input.target.kind !== 'alias' || !arn) return undefined;
    if (arn !== input.platformKeyArn && arn.split(':')[4] !== input.platformAccountId) return undefined;
    return {
      message: `The alias resolves to ${arn}, a key of the platform itself: the platform's keys are never an organization's key. Use a key in your own AWS account.`,
      code: 'bad.request',
      errorType: 'InvalidKeyConfiguration',
    };
  };

  const toError = (failed: KmsCallError | KeyTestStepError): KeyTestStepError =>
    failed instanceof KmsCallError
      ? { message: remediationFor(failed, rem), code: 'customer.key.error', errorType: errorTypeFor(failed), awsError: failed.awsName }
      : failed;
  const stop = (step: KeyTestStepName, ms: number, failed: KmsCallError | KeyTestStepError): KeyTestReport => {
    const error = toError(failed);
    steps.push({ step, ok: false, ms, error });
    return { ok: false, steps, lastError: error };
  };

  // What the key is (its ARN, state, spec, usage) is told only to a caller whose round trip under its
  // own encryption context succeeds: DescribeKey carries no context, so the platform can describe a
  // key whose policy admits it for another organization only, and a failed Test must not hand that
  // organization's key ARN and state to whoever typed its alias. Filled in at the end.
  let reveal = (): KeyTestStepError | undefined => undefined;
  const described = await timed('DescribeKey', () => input.gateway.describeKey(keyId));
  if (described.failed) {
    if (described.failed instanceof KmsCallError && described.failed.kind === 'AccessDenied') {
      steps.push({
        step: 'DescribeKey',
        ok: false,
        advisory: true,
        ms: described.ms,
        detail: 'DescribeKey is denied to the platform; the key state cannot be checked ahead, the round trip below still decides.',
        error: toError(described.failed),
      });
    } else {
      return stop('DescribeKey', described.ms, described.failed);
    }
  } else {
    const metadata = described.value!;
    const platformKey = platformKeyProblem(metadata.Arn);
    if (platformKey) return stop('DescribeKey', described.ms, platformKey);
    // A disabled key, or one pending deletion, fails the round trip below with KMS's own answer to this caller.
    const step: KeyTestStep = { step: 'DescribeKey', ok: true, ms: described.ms };
    steps.push(step);
    reveal = () => {
      const problem = keyMetadataProblem(metadata);
      if (problem) Object.assign(step, { ok: false, error: problem });
      else step.detail = `${metadata.Arn} is ${metadata.KeyState}, ${metadata.KeySpec ?? 'SYMMETRIC_DEFAULT'}, ${metadata.KeyUsage ?? 'ENCRYPT_DECRYPT'}`;
      return problem;
    };
  }

  const generated = await timed('GenerateDataKey', () => input.gateway.generateDataKey(keyId, context));
  if (generated.failed) return stop('GenerateDataKey', generated.ms, generated.failed);
  const { plaintext: dataKey, ciphertextBlob, keyArn } = generated.value!;
  const platformKey = platformKeyProblem(keyArn);
  if (platformKey) {
    dataKey.fill(0);
    return stop('GenerateDataKey', generated.ms, platformKey);
  }
  const generateStep: KeyTestStep = { step: 'GenerateDataKey', ok: true, ms: generated.ms };
  steps.push(generateStep);

  const testData = randomBytes(32);
  const nonce = randomBytes(12);
  const aad = Buffer.from(`convault key test ${input.orgId}`);
  try {
    const sealed = await timed('EncryptTestData', () => aesGcmSeal(dataKey, nonce, testData, aad));
    if (sealed.failed) return stop('EncryptTestData', sealed.ms, sealed.failed);
    steps.push({ step: 'EncryptTestData', ok: true, ms: sealed.ms });

    // A fresh Decrypt call, never a cached key: this is what every read of the data will need.
    const decrypted = await timed('DecryptDataKey', () => input.gateway.decrypt(ciphertextBlob, context, keyArn));
    if (decrypted.failed) return stop('DecryptDataKey', decrypted.ms, decrypted.failed);
    const roundTripKey = decrypted.value!.plaintext;
    steps.push({ step: 'DecryptDataKey', ok: true, ms: decrypted.ms });

    try {
      const opened = await timed('DecryptTestData', () => {
        const { ciphertext, tag } = sealed.value!;
        const back = aesGcmOpen(roundTripKey, nonce, ciphertext, tag, aad);
        if (back.length !== testData.length || !timingSafeEqual(back, testData)) throw new Error('decrypted test data differs');
        return back;
      });
      if (opened.failed) return stop('DecryptTestData', opened.ms, { message: 'The data key KMS returned does not decrypt the test data.', code: 'key.test.failed', errorType: 'CustomerKeyUnavailable' });
      steps.push({ step: 'DecryptTestData', ok: true, ms: opened.ms });
    } finally {
      roundTripKey.fill(0);
    }
  } finally {
    dataKey.fill(0);
  }
  generateStep.detail = `data key generated under ${keyArn}`;
  const problem = reveal();
  if (problem) return { ok: false, steps, lastError: problem };
  return { ok: true, steps, keyArn };
}

function base(input: KeyTestInput) {
  return { orgId: input.orgId, platformAccountId: input.platformAccountId, encryptionContextKey: input.encryptionContextKey };
}

function keyMetadataProblem(meta: KeyMetadata): KeyTestStepError | undefined {
  const err = (message: string, errorType = 'CustomerKeyUnavailable'): KeyTestStepError => ({ message, code: 'customer.key.error', errorType });
  if (meta.KeyState === 'PendingDeletion' || meta.KeyState === 'PendingReplicaDeletion') {
    const when = meta.DeletionDate ? ` on ${new Date(meta.DeletionDate).toISOString()}` : '';
    return err(`The KMS key is pending deletion${when}: cancel the deletion (kms:CancelKeyDeletion) and enable the key, or choose another key.`);
  }
  if (meta.KeyState === 'Disabled') return err('The KMS key is disabled: enable it in AWS KMS (kms:EnableKey), then test again.');
  if (meta.KeyState !== 'Enabled') return err(`The KMS key is in state ${meta.KeyState}; it must be Enabled.`);
  if (meta.KeySpec && meta.KeySpec !== 'SYMMETRIC_DEFAULT') return err(`The key spec is ${meta.KeySpec}; use a symmetric key (SYMMETRIC_DEFAULT).`, 'InvalidKeyConfiguration');
  if (meta.KeyUsage && meta.KeyUsage !== 'ENCRYPT_DECRYPT') return err(`The key usage is ${meta.KeyUsage}; use a key for ENCRYPT_DECRYPT.`, 'InvalidKeyConfiguration');
  return undefined;
}
