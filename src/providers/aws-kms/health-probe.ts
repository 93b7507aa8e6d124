/** The key health probe of an AWS KMS key (the adapter's `probeKeys`): docs/KEY_HEALTH.md. */
import type { KeyMetadata } from '@aws-sdk/client-kms';
import { KmsCallError, type KmsFailureKind } from '../../kms/kms-failure.js';
import { regionOf, type KmsGateway } from '../../kms/kms-gateway.js';
import { mapLimit, statusForFailure, summarizeKeys, type HealthError, type HealthStatus, type KeyHealth, type ProbeResult, type ProtectedKey } from '../key-health.js';
import { runKeyTest, type KeyTestStepName } from './key-test.js';
import { errorTypeFor, remediationFor } from './remediation.js';


export interface ProbeSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  allowedRegions: readonly string[];
  defaultRegion: string;
}

export interface ProbeInput {
  gateway: Pick<KmsGateway, 'describeKey' | 'generateDataKey' | 'decrypt'>;
  orgId: string;
  /** The configuration's alias ARN. */
  aliasArn: string;
  /** The key ARN the configuration last resolved to (used when the alias cannot be resolved now). */
  lastKnownKeyArn: string | null;
  /** Keys that wrap live data keys of the org (the platform key already left out). */
  protectedKeys: readonly ProtectedKey[];
  /** One live data key blob wrapped by `keyArn`: decrypted when DescribeKey of an old key is denied. */
  sampleDataKey(keyArn: string): Promise<{ wrappedKey: Buffer; contextKey: string } | undefined>;
  settings: ProbeSettings;
}


/**
 * One probe of an organization's keys: the key Test round trip (DescribeKey, GenerateDataKey under
 * the org's encryption context, AES-GCM, a fresh Decrypt) on the configuration's alias, and a
 * DescribeKey of every other key that still wraps live data keys of the org. Never throws for a KMS
 * failure: that is the result.
 */
export async function probeOrgKeys(input: ProbeInput): Promise<ProbeResult> {
  const { resolved, ...current } = await probeCurrentKey(input);
  const others = input.protectedKeys.filter((k) => k.keyArn !== current.keyArn);
  const otherResults = await mapLimit(others, 4, (key) => probeProtectedKey(input, key));
  return { ...summarizeKeys([current, ...otherResults]), ...(resolved ? { currentKeyArn: current.keyArn } : {}) };
}

async function probeCurrentKey(input: ProbeInput): Promise<KeyHealth & { resolved: boolean }> {
  // The Test is reused as is; its gateway is observed to learn what the report does not carry:
  // the key's metadata (state, deletion date) and the typed failure of the step that failed.
  let metadata: KeyMetadata | undefined;
  const failures = new Map<KeyTestStepName, KmsCallError>();
  const observe = async <T>(step: KeyTestStepName, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof KmsCallError) failures.set(step, err);
      throw err;
    }
  };
  const gateway: ProbeInput['gateway'] = {
    describeKey: (keyId) => observe('DescribeKey', async () => (metadata = await input.gateway.describeKey(keyId))),
    generateDataKey: (keyId, context) => observe('GenerateDataKey', () => input.gateway.generateDataKey(keyId, context)),
    decrypt: (blob, context, keyId) => observe('DecryptDataKey', () => input.gateway.decrypt(blob, context, keyId)),
  };
  const report = await runKeyTest({
    gateway,
    orgId: input.orgId,
    platformAccountId: input.settings.platformAccountId,
    encryptionContextKey: input.settings.encryptionContextKey,
    allowedRegions: input.settings.allowedRegions,
    defaultRegion: input.settings.defaultRegion,
    target: { kind: 'alias', aliasArn: input.aliasArn },
  });

  const resolvedArn = report.keyArn ?? metadata?.Arn;
  const keyArn = resolvedArn ?? input.lastKnownKeyArn ?? input.aliasArn;
  const deletionDate = pendingDeletion(metadata) && metadata?.DeletionDate ? new Date(metadata.DeletionDate).toISOString() : undefined;
  let status: HealthStatus = 'ok';
  let error: HealthError | undefined;
  if (!report.ok) {
    const failedStep = report.steps.find((s) => !s.ok && !s.advisory);
    const failure = failedStep ? failures.get(failedStep.step) : undefined;
    // No typed KMS failure: the key answered but is unusable (pending deletion, disabled, wrong
    // spec), or the data did not round-trip. Both are answers about the key.
    status = failure ? statusForFailure(failure.kind) : 'failed';
    error = report.lastError ? { ...report.lastError } : { message: 'The key Test failed.', code: 'customer.key.error', errorType: 'CustomerKeyUnavailable' };
  }
  return {
    keyArn,
    current: true,
    state: metadata?.KeyState ?? 'Unknown',
    status,
    ...(deletionDate ? { deletionDate } : {}),
    dataKeys: input.protectedKeys.find((k) => k.keyArn === keyArn)?.dataKeys ?? 0,
    ...(error ? { error } : {}),
    resolved: resolvedArn !== undefined,
  };
}

async function probeProtectedKey(input: ProbeInput, key: ProtectedKey): Promise<KeyHealth> {
  const base = { keyArn: key.keyArn, current: false, dataKeys: key.dataKeys };
  const protects = `The KMS key ${key.keyArn}, which still protects ${key.dataKeys} data key${key.dataKeys === 1 ? '' : 's'} of this organization,`;
  let metadata: KeyMetadata;
  try {
    metadata = await input.gateway.describeKey(key.keyArn);
  } catch (err) {
    if (!(err instanceof KmsCallError)) throw err;
    // A key policy may leave DescribeKey out on purpose (the Test accepts that): then whether the
    // data is still readable is decided by decrypting one of the data keys it wraps.
    if (err.kind === 'AccessDenied') return decryptSample(input, key, protects);
    return { ...base, state: 'Unknown', status: statusForFailure(err.kind), error: kmsError(err, input, key.keyArn, protects) };
  }
  const state = metadata.KeyState ?? 'Unknown';
  if (state === 'Enabled') return { ...base, state, status: 'ok' };
  const err = (message: string): HealthError => ({ message, code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', keyArn: key.keyArn });
  if (pendingDeletion(metadata)) {
    const when = metadata.DeletionDate ? new Date(metadata.DeletionDate).toISOString() : undefined;
    return {
      ...base,
      state,
      status: 'failed',
      ...(when ? { deletionDate: when } : {}),
      error: err(
        `${protects} is scheduled for deletion${when ? ` on ${when}` : ''}: cancel the deletion (kms:CancelKeyDeletion) and enable the key, ` +
          'then rewrap its data to the current key (POST …/keyconfigurations/{id}/rewrap) before retiring it. Once the key is deleted, that data can never be read again.',
      ),
    };
  }
  if (state === 'Disabled') {
    return {
      ...base,
      state,
      status: 'failed',
      error: err(`${protects} is disabled, so that data cannot be read: enable it in AWS KMS (kms:EnableKey), then rewrap its data to the current key before retiring it.`),
    };
  }
  return { ...base, state, status: 'failed', error: err(`${protects} is in state ${state}; it must be Enabled for that data to be read.`) };
}

async function decryptSample(input: ProbeInput, key: ProtectedKey, protects: string): Promise<KeyHealth> {
  const base = { keyArn: key.keyArn, current: false, dataKeys: key.dataKeys, state: 'Unknown' };
  const sample = await input.sampleDataKey(key.keyArn);
  if (!sample) return { ...base, status: 'ok' }; // rewrapped or shredded in the meantime: it protects nothing now
  try {
    const { plaintext } = await input.gateway.decrypt(sample.wrappedKey, { [sample.contextKey]: input.orgId }, key.keyArn);
    plaintext.fill(0);
    return { ...base, status: 'ok' };
  } catch (err) {
    if (!(err instanceof KmsCallError)) throw err;
    return { ...base, status: statusForFailure(err.kind), error: kmsError(err, input, key.keyArn, protects) };
  }
}

function kmsError(failure: KmsCallError, input: ProbeInput, keyArn: string, protects: string): HealthError {
  const accountId = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:(\d{12}):/.exec(keyArn)?.[1];
  const remediation = remediationFor(failure, {
    orgId: input.orgId,
    platformAccountId: input.settings.platformAccountId,
    encryptionContextKey: input.settings.encryptionContextKey,
    keyId: keyArn,
    region: regionOf(keyArn, input.settings.defaultRegion),
    ...(accountId ? { accountId } : {}),
  });
  return {
    message: `${protects} cannot be used (${failure.awsName} on ${failure.operation}). ${remediation}`,
    code: 'customer.key.error',
    errorType: errorTypeFor(failure),
    awsError: failure.awsName,
    keyArn,
  };
}

function pendingDeletion(meta: KeyMetadata | undefined): boolean {
  return meta?.KeyState === 'PendingDeletion' || meta?.KeyState === 'PendingReplicaDeletion';
}

