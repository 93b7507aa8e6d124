import type { KeyMetadata } from '@aws-sdk/client-kms';
import { regionOf, type KmsGateway } from '../../kms/kms-gateway.js';
import { classifyKmsError, KmsCallError, type KmsFailureKind } from '../../kms/kms-failure.js';
import { parseAliasArn } from './alias-arn.js';
import { runKeyTest } from './key-test.js';
import { remediationFor } from './remediation.js';
import { probeOrgKeys as probeAwsKeys } from './health-probe.js';
import type { KeyProbeInput } from '../key-health.js';
import { awsFailureReport } from './failure-report.js';
import { KeyProviderError, type RemediationOptions, type DataKeyBinding, type KeyDescription, type KeyFailureKind, type KeyProvider, type WrappedDataKey } from '../key-provider.js';

/**
 * The KmsSymmetric (customer alias) and None (platform key) adapter over AWS KMS — or the local
 * KMS — through the existing gateway (@aws-sdk/client-kms, circuit breaker, metrics). The data
 * key's binding travels as encryption context: the organization under the deployment's context key
 * (what the customer's key policy conditions on) and the data key id.
 */

export const DATA_KEY_ID_CONTEXT_KEY = 'convault-data-key-id';

export interface AwsKmsProviderDeps {
  gateway: Pick<KmsGateway, 'describeKey' | 'generateDataKey' | 'decrypt' | 'encrypt' | 'reEncrypt'>;
  type: 'KmsSymmetric' | 'None';
  /** KmsSymmetric: the customer's alias ARN. None: the platform key's ARN. */
  reference: string;
  platformAccountId: string;
  encryptionContextKey: string;
  allowedRegions: readonly string[];
  defaultRegion: string;
  /** The platform's own key: the Test accepts it for type None only. */
  platformKeyArn?: string;
  /**
   * Whether the data key id joins the organization id in the encryption context (default true).
   * convault's org data keys are bound to the organization alone — the one pair customer key
   * policies condition on, and what every stored blob was made with — so the services pass false.
   */
  bindDataKeyId?: boolean;
  now?: () => number;
}

const KIND: Record<KmsFailureKind, KeyFailureKind> = {
  AccessDenied: 'AccessDenied',
  NotFound: 'NotFound',
  Disabled: 'Disabled',
  InvalidState: 'InvalidState',
  InvalidCiphertext: 'InvalidCiphertext',
  IncorrectKey: 'InvalidCiphertext',
  Throttled: 'Throttled',
  Unreachable: 'Unavailable',
  InvalidRequest: 'Misconfigured',
  Internal: 'Internal',
};

const KMS_KIND: Record<KeyFailureKind, KmsFailureKind> = {
  NotFound: 'NotFound',
  Disabled: 'Disabled',
  InvalidState: 'InvalidState',
  AccessDenied: 'AccessDenied',
  BadCredentials: 'AccessDenied',
  Unavailable: 'Unreachable',
  Throttled: 'Throttled',
  InvalidCiphertext: 'InvalidCiphertext',
  Misconfigured: 'InvalidRequest',
  Internal: 'Internal',
};

// KMS does not know the caller at all (as opposed to knowing it and refusing): a credentials problem.
const CREDENTIAL_ERRORS = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'IncompleteSignatureException', 'MissingAuthenticationTokenException', 'InvalidClientTokenId', 'SignatureDoesNotMatch']);

export function classifyAwsKmsFailure(err: unknown, operation = 'KMS'): KeyProviderError {
  if (err instanceof KeyProviderError) return err;
  const failure = classifyKmsError(err, operation);
  const kind = CREDENTIAL_ERRORS.has(failure.awsName) ? 'BadCredentials' : KIND[failure.kind];
  return new KeyProviderError(kind, failure.message, { providerError: failure.awsName, operation: failure.operation, cause: failure });
}

function metadataFailureKind(meta: KeyMetadata): KeyFailureKind {
  if (meta.KeyState === 'Disabled') return 'Disabled';
  if (meta.KeyState !== 'Enabled') return 'InvalidState';
  return 'Misconfigured';
}

export function createAwsKmsProvider(deps: AwsKmsProviderDeps): KeyProvider {
  const { gateway } = deps;
  let keyId = deps.reference;
  let region = deps.defaultRegion;
  let accountId: string | undefined;
  if (deps.type === 'KmsSymmetric') {
    const parsed = parseAliasArn(deps.reference, deps.allowedRegions);
    if (!parsed.ok) throw new KeyProviderError('Misconfigured', parsed.message, { providerError: 'InvalidAliasArn' });
    keyId = parsed.value.arn;
    region = parsed.value.region;
    accountId = parsed.value.accountId;
  } else {
    // A key ARN (the platform key, a key that wraps older data keys): its region and account.
    region = regionOf(deps.reference, deps.defaultRegion);
    accountId = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:(\d{12}):/.exec(deps.reference)?.[1];
  }
  const context = (b: DataKeyBinding): Record<string, string> =>
    deps.bindDataKeyId === false
      ? { [b.contextKey ?? deps.encryptionContextKey]: b.orgId }
      : { [b.contextKey ?? deps.encryptionContextKey]: b.orgId, [DATA_KEY_ID_CONTEXT_KEY]: b.dataKeyId };
  const guarded = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw classifyAwsKmsFailure(err, operation);
    }
  };
  const kmsFailureOf = (failure: KeyProviderError): KmsCallError =>
    failure.cause instanceof KmsCallError ? failure.cause : new KmsCallError(KMS_KIND[failure.kind], failure.providerError ?? failure.kind, failure.message, failure.details.operation ?? 'KMS');
  const remediation = (failure: KeyProviderError, opts: RemediationOptions = {}): string => {
    if (failure.kind === 'BadCredentials') {
      return `AWS KMS does not accept the platform's credentials (${failure.providerError}): the platform operator must fix the platform's AWS credentials; nothing changes in your account.`;
    }
    // A failure this adapter did not get from KMS (a key state it described) is worded as KMS's would be.
    return remediationFor(kmsFailureOf(failure), {
      orgId: opts.orgId ?? '{organization id}',
      platformAccountId: deps.platformAccountId,
      encryptionContextKey: deps.encryptionContextKey,
      keyId,
      region,
      ...(accountId ? { accountId } : {}),
      ...(opts.nextStep ? { nextStep: opts.nextStep } : {}),
    });
  };

  return {
    type: deps.type,
    reference: keyId,

    async describe(): Promise<KeyDescription> {
      const m = await guarded('DescribeKey', () => gateway.describeKey(keyId));
      const state = m.KeyState === 'Enabled' ? 'Enabled' : m.KeyState === 'Disabled' ? 'Disabled' : m.KeyState?.startsWith('Pending') ? 'PendingDeletion' : 'Unusable';
      const usable = state === 'Enabled' && (m.KeySpec ?? 'SYMMETRIC_DEFAULT') === 'SYMMETRIC_DEFAULT' && (m.KeyUsage ?? 'ENCRYPT_DECRYPT') === 'ENCRYPT_DECRYPT';
      return { keyId: m.Arn ?? keyId, state, usable, detail: `${m.Arn} is ${m.KeyState}, ${m.KeySpec}, ${m.KeyUsage}` };
    },

    async generateDataKey(binding) {
      const out = await guarded('GenerateDataKey', () => gateway.generateDataKey(keyId, context(binding)));
      return { plaintext: out.plaintext, wrapped: { blob: out.ciphertextBlob, keyId: out.keyArn } };
    },

    async wrapDataKey(plaintext, binding): Promise<WrappedDataKey> {
      const out = await guarded('Encrypt', () => gateway.encrypt(keyId, plaintext, context(binding)));
      return { blob: out.ciphertextBlob, keyId: out.keyArn };
    },

    async unwrapDataKey(wrapped, binding) {
      const out = await guarded('Decrypt', () => gateway.decrypt(wrapped.blob, context(binding), wrapped.keyId));
      return out.plaintext;
    },

    async rewrapDataKey(wrapped, binding, destinationReference) {
      const out = await guarded('ReEncrypt', () =>
        gateway.reEncrypt({ ciphertextBlob: wrapped.blob, sourceKeyId: wrapped.keyId, destinationKeyId: destinationReference, context: context(binding) }),
      );
      return { blob: out.ciphertextBlob, keyId: out.keyArn };
    },

    classify: classifyAwsKmsFailure,
    remediation,
    report: (failure, ctx) => awsFailureReport(kmsFailureOf(failure), ctx, { platformAccountId: deps.platformAccountId, encryptionContextKey: deps.encryptionContextKey, defaultRegion: deps.defaultRegion }),

    // An alias is probed the KMS way (the key Test, then the state of every older key); other uses
    // of this adapter (the platform key, a bare key ARN) have no health of their own.
    ...(deps.type === 'KmsSymmetric'
      ? {
          probeKeys: (input: KeyProbeInput) =>
            probeAwsKeys({
              ...input,
              gateway,
              aliasArn: deps.reference,
              settings: { platformAccountId: deps.platformAccountId, encryptionContextKey: deps.encryptionContextKey, allowedRegions: deps.allowedRegions, defaultRegion: deps.defaultRegion },
            }),
        }
      : {}),

    /** Today's key test (key-test.ts), with each failure's neutral kind added. */
    async test(orgId) {
      let described: KeyMetadata | undefined;
      const report = await runKeyTest({
        gateway: { ...gateway, describeKey: async (id) => (described = await gateway.describeKey(id)) },
        orgId,
        platformAccountId: deps.platformAccountId,
        encryptionContextKey: deps.encryptionContextKey,
        allowedRegions: deps.allowedRegions,
        defaultRegion: deps.defaultRegion,
        ...(deps.platformKeyArn ? { platformKeyArn: deps.platformKeyArn } : {}),
        target: deps.type === 'KmsSymmetric' ? { kind: 'alias', aliasArn: deps.reference } : { kind: 'platform', keyId },
        ...(deps.now ? { now: deps.now } : {}),
      });
      for (const step of report.steps) {
        if (!step.error || step.advisory) continue;
        if (step.error.awsError) {
          Object.assign(step.error, { failureKind: classifyAwsKmsFailure({ name: step.error.awsError, code: step.error.awsError }).kind, providerError: step.error.awsError });
        } else if (step.step === 'DescribeKey' && described) {
          // The key answered but its metadata rules it out: the kind follows its state.
          Object.assign(step.error, { failureKind: metadataFailureKind(described) });
        } else if (step.step === 'ArnSyntax') {
          Object.assign(step.error, { failureKind: 'Misconfigured' });
        }
      }
      return report;
    },
  };
}
