import type { KeyProbeInput, ProbeResult } from './key-health.js';

/**
 * The key-provider port: what the services need from "the organization's key", whatever holds it
 * (AWS KMS, a customer's XKS proxy, the platform key). An adapter speaks its provider's protocol and
 * maps every failure to one provider-neutral kind, so callers decide on the kind (retry, 424, health
 * state, remediation) and never on an AWS or XKS error name.
 */

/** Why a call to the organization's key failed, in terms a caller can act on. */
export type KeyFailureKind =
  /** The key (or alias) does not exist where the reference points. */
  | 'NotFound'
  /** The key exists but is disabled by its owner. */
  | 'Disabled'
  /** The key exists but cannot be used now (pending deletion, wrong usage at the provider). */
  | 'InvalidState'
  /** The provider knows the caller but its policy refuses this use. */
  | 'AccessDenied'
  /** The provider does not accept the platform's credentials (bad secret, unknown access key id). */
  | 'BadCredentials'
  /** The provider cannot be reached or answered too late; worth a retry. */
  | 'Unavailable'
  /** The provider asks the platform to slow down; worth a retry. */
  | 'Throttled'
  /** The wrapped key does not open under this key and binding (wrong org or data key id, altered bytes). */
  | 'InvalidCiphertext'
  /** The configuration itself is unusable (reference, URL, TLS trust, key spec or usage). */
  | 'Misconfigured'
  /** The provider failed or answered something the platform cannot trust. */
  | 'Internal';

export const KEY_FAILURE_KINDS: readonly KeyFailureKind[] = [
  'NotFound',
  'Disabled',
  'InvalidState',
  'AccessDenied',
  'BadCredentials',
  'Unavailable',
  'Throttled',
  'InvalidCiphertext',
  'Misconfigured',
  'Internal',
];

const RETRYABLE: ReadonlySet<KeyFailureKind> = new Set(['Unavailable', 'Throttled']);

export class KeyProviderError extends Error {
  override readonly name = 'KeyProviderError';
  readonly retryable: boolean;
  constructor(
    readonly kind: KeyFailureKind,
    message: string,
    readonly details: {
      /** The provider's own name for the failure (AWS exception, XKS errorName, network code). */
      providerError?: string;
      operation?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.retryable = RETRYABLE.has(kind);
  }
  get providerError(): string | undefined {
    return this.details.providerError;
  }
}

export function isKeyProviderError(err: unknown, kind?: KeyFailureKind): err is KeyProviderError {
  return err instanceof KeyProviderError && (kind === undefined || err.kind === kind);
}

/** The API's errorType for a failure: a missing key is told apart from an unusable one (as today's key test does). */
export function errorTypeOf(kind: KeyFailureKind): 'CustomerKeyNotFound' | 'CustomerKeyUnavailable' | 'InvalidKeyConfiguration' {
  if (kind === 'NotFound') return 'CustomerKeyNotFound';
  if (kind === 'Misconfigured') return 'InvalidKeyConfiguration';
  return 'CustomerKeyUnavailable';
}

/**
 * What a wrapped data key is bound to. Both adapters bind the organization id and the data key id
 * (AWS: encryption context; XKS: AES-GCM additional authenticated data), so a wrapped key copied to
 * another organization or another record does not open.
 */
export interface DataKeyBinding {
  orgId: string;
  dataKeyId: string;
  /**
   * AWS: the encryption-context name the organization id travels under, when it is not the
   * deployment's current one (a data key keeps the name it was made with). Other providers ignore it.
   */
  contextKey?: string;
}

export interface WrappedDataKey {
  /** The provider's opaque bytes, stored as is. */
  blob: Buffer;
  /** The key that wrapped it, as the provider names it (a key ARN, an external key id): recorded with the blob. */
  keyId: string;
}

export interface KeyDescription {
  /** The resolved key id (an alias resolves to its key ARN). */
  keyId: string;
  state: 'Enabled' | 'Disabled' | 'PendingDeletion' | 'Unusable';
  /** Enabled and able to encrypt and decrypt. */
  usable: boolean;
  detail: string;
}

export type ReferenceResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** One line of a Test report: the shape of the AWS adapter's key-test.ts, with the step name open. */
export interface KeyTestStepError {
  message: string;
  code: string;
  errorType?: string;
  /** The provider-neutral failure kind, when a provider call failed. */
  failureKind?: KeyFailureKind;
  /** The provider's own error name. */
  providerError?: string;
  /** Kept for the AWS adapter: the report's existing field. */
  awsError?: string;
}

export interface KeyTestStep {
  step: string;
  ok: boolean;
  ms: number;
  advisory?: boolean;
  detail?: string;
  error?: KeyTestStepError;
}

export interface KeyTestReport {
  ok: boolean;
  steps: KeyTestStep[];
  keyArn?: string;
  lastError?: KeyTestStepError;
}

export interface RemediationOptions {
  /** What to do once the key is fixed (default "test again"; a rewrap says "rewrap again"). */
  nextStep?: string;
  /** The organization the failure is about, where the sentence names it. */
  orgId?: string;
}

/** A failed use of the organization's key as the API answers it. */
export interface FailureReport {
  /** 503 when it may pass by itself (unreachable, throttled, failing); 424 when it is an answer about the key. */
  status: 424 | 503;
  code: string;
  message: string;
  errorType: string;
  /** keyId, the provider's error name (`awsError` for AWS KMS, `providerError` otherwise), operation. */
  details: Record<string, unknown>;
}

/** The report of any adapter that has no wording of its own. */
export function failureReport(failure: KeyProviderError, keyId: string, remediation: string): FailureReport {
  const status = failure.retryable || failure.kind === 'Internal' ? 503 : 424;
  const what = failure.providerError ?? failure.kind;
  const operation = failure.details.operation ?? 'a key call';
  return {
    status,
    code: status === 503 ? 'customer.key.unreachable' : 'customer.key.error',
    message: `The organization's key cannot be used (${what} on ${operation}). ${remediation}`,
    errorType: errorTypeOf(failure.kind),
    details: { keyId, providerError: what, failureKind: failure.kind, operation },
  };
}

/** One configured key: an adapter instance bound to one key reference and its credentials. */
export interface KeyProvider {
  readonly type: KeyConfigurationType;
  /** The key reference as configured, rendered back to the configuration's text form. */
  readonly reference: string;
  describe(): Promise<KeyDescription>;
  /** A fresh AES-256 data key and its wrapped form; the caller owns the plaintext and zeroes it. */
  generateDataKey(binding: DataKeyBinding): Promise<{ plaintext: Buffer; wrapped: WrappedDataKey }>;
  wrapDataKey(plaintext: Buffer, binding: DataKeyBinding): Promise<WrappedDataKey>;
  unwrapDataKey(wrapped: WrappedDataKey, binding: DataKeyBinding): Promise<Buffer>;
  /** Present when the provider can move a wrapped key to another of its keys without the plaintext leaving it. */
  rewrapDataKey?(wrapped: WrappedDataKey, binding: DataKeyBinding, destinationReference: string): Promise<WrappedDataKey>;
  /** Any error this provider's calls throw → a KeyProviderError with a kind. Idempotent. */
  classify(err: unknown, operation?: string): KeyProviderError;
  /** The sentence that tells an admin what to change, for a classified failure; it ends with `nextStep` (default: test again). */
  remediation(failure: KeyProviderError, opts?: RemediationOptions): string;
  /** The API error of a failed use of the key (present when the adapter words it its own way; otherwise `failureReport`). */
  report?(failure: KeyProviderError, ctx: { orgId: string; keyId: string }): FailureReport;
  /** The Test button: every step data will take, reported one by one; nothing is stored. */
  test(orgId: string): Promise<KeyTestReport>;
  /**
   * Present when the provider probes an organization's keys its own way (AWS: deletion dates, a
   * Decrypt when DescribeKey is denied); otherwise key health runs `test()` and `describe()`.
   */
  probeKeys?(input: KeyProbeInput): Promise<ProbeResult>;
  close?(): void;
}

export type KeyConfigurationType = 'KmsSymmetric' | 'LocalKeyManager' | 'None';
