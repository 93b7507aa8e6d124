/** What went wrong with a KMS call, in terms a caller can act on. */
export type KmsFailureKind =
  | 'AccessDenied'
  | 'NotFound'
  | 'Disabled'
  | 'InvalidState'
  | 'InvalidCiphertext'
  | 'IncorrectKey'
  | 'Throttled'
  | 'Unreachable'
  | 'InvalidRequest'
  | 'Internal';

export class KmsCallError extends Error {
  constructor(
    readonly kind: KmsFailureKind,
    /** The AWS exception name (e.g. AccessDeniedException) or the network error code. */
    readonly awsName: string,
    message: string,
    readonly operation: string,
  ) {
    super(message);
    this.name = 'KmsCallError';
  }
}

const BY_EXCEPTION: Record<string, KmsFailureKind> = {
  AccessDeniedException: 'AccessDenied',
  NotFoundException: 'NotFound',
  DisabledException: 'Disabled',
  KMSInvalidStateException: 'InvalidState',
  KeyUnavailableException: 'Unreachable',
  InvalidCiphertextException: 'InvalidCiphertext',
  IncorrectKeyException: 'IncorrectKey',
  ThrottlingException: 'Throttled',
  LimitExceededException: 'Throttled',
  DependencyTimeoutException: 'Unreachable',
  KMSInternalException: 'Internal',
  ValidationException: 'InvalidRequest',
  InvalidKeyUsageException: 'InvalidRequest',
  InvalidArnException: 'NotFound',
  UnrecognizedClientException: 'AccessDenied',
  InvalidSignatureException: 'AccessDenied',
};

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Maps whatever the SDK threw to a KmsCallError; the original message is kept for the operator. */
export function classifyKmsError(err: unknown, operation: string): KmsCallError {
  if (err instanceof KmsCallError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(err);
  const kind = BY_EXCEPTION[name];
  if (kind) return new KmsCallError(kind, name, message, operation);
  const code = e?.code ?? e?.cause?.code;
  if ((code && NETWORK_CODES.has(code)) || name === 'TimeoutError' || name === 'AbortError') {
    return new KmsCallError('Unreachable', code ?? name, message, operation);
  }
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return new KmsCallError('Unreachable', name, message, operation);
  if (status === 429) return new KmsCallError('Throttled', name, message, operation);
  return new KmsCallError('Internal', name, message, operation);
}
