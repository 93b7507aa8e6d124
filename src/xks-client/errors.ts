import { isXksErrorName, type XksErrorName } from '../xks-protocol/index.js';

/**
 * Every way an XKS call can fail, as one typed error: `kind` is what a caller acts on; `errorName`
 * is the proxy's own name when it sent one. Kinds map the specification's error names one to one
 * and add the failures that happen before or after the proxy answers (unreachable, TLS, timeout, a
 * malformed answer, a ciphertext that fails its integrity value).
 */
export type XksFailureKind =
  | 'validation'
  | 'invalid-state'
  | 'invalid-ciphertext'
  | 'invalid-key-usage'
  | 'authentication'
  | 'access-denied'
  | 'key-not-found'
  | 'invalid-uri-path'
  | 'throttled'
  | 'internal'
  | 'unsupported'
  | 'dependency-timeout'
  | 'unreachable'
  | 'tls'
  | 'timeout'
  | 'invalid-response'
  | 'integrity';

export const KIND_OF_ERROR_NAME: Record<XksErrorName, XksFailureKind> = {
  ValidationException: 'validation',
  InvalidStateException: 'invalid-state',
  InvalidCiphertextException: 'invalid-ciphertext',
  InvalidKeyUsageException: 'invalid-key-usage',
  AuthenticationFailedException: 'authentication',
  AccessDeniedException: 'access-denied',
  KeyNotFoundException: 'key-not-found',
  InvalidUriPathException: 'invalid-uri-path',
  ThrottlingException: 'throttled',
  InternalException: 'internal',
  UnsupportedOperationException: 'unsupported',
  DependencyTimeoutException: 'dependency-timeout',
};

/** Kinds worth a retry later: the proxy or the path to it is busy or briefly down. */
const RETRYABLE: ReadonlySet<XksFailureKind> = new Set(['throttled', 'internal', 'dependency-timeout', 'unreachable', 'timeout']);

export class XksError extends Error {
  override readonly name = 'XksError';
  readonly retryable: boolean;
  constructor(
    readonly kind: XksFailureKind,
    message: string,
    readonly details: { errorName?: XksErrorName; httpStatus?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.retryable = RETRYABLE.has(kind);
  }
  get errorName(): XksErrorName | undefined {
    return this.details.errorName;
  }
  get httpStatus(): number | undefined {
    return this.details.httpStatus;
  }
}

export function isXksError(err: unknown, kind?: XksFailureKind): err is XksError {
  return err instanceof XksError && (kind === undefined || err.kind === kind);
}

/** A non-2xx answer → XksError: by `errorName` when the body has a known one, else invalid-response. */
export function classifyXksErrorResponse(httpStatus: number, body: unknown): XksError {
  const errorName = (body as { errorName?: unknown } | undefined)?.errorName;
  const errorMessage = (body as { errorMessage?: unknown } | undefined)?.errorMessage;
  const detail = typeof errorMessage === 'string' ? `: ${errorMessage}` : '';
  if (isXksErrorName(errorName)) {
    return new XksError(KIND_OF_ERROR_NAME[errorName], `XKS proxy answered ${httpStatus} ${errorName}${detail}`, { errorName, httpStatus });
  }
  return new XksError('invalid-response', `XKS proxy answered ${httpStatus} without a known errorName${detail}`, { httpStatus });
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/** A transport failure (no HTTP answer) → XksError. */
export function classifyTransportError(err: unknown): XksError {
  if (err instanceof XksError) return err;
  const code = String((err as NodeJS.ErrnoException)?.code ?? '');
  const message = (err as Error)?.message ?? String(err);
  if (TLS_CODES.test(code)) return new XksError('tls', `TLS connection to the XKS proxy failed (${code}): ${message}`, { cause: err });
  return new XksError('unreachable', `XKS proxy unreachable${code ? ` (${code})` : ''}: ${message}`, { cause: err });
}
