/**
 * The vocabulary of the AWS KMS External Key Store (XKS) proxy API, version 1
 * (specification: aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md). Pure data shared by the
 * reference proxy (src/xks) and the client (src/xks-client); neither imports the other.
 */

/** Every error the specification names, with the HTTP status it travels with. */
export const XKS_ERROR_STATUS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  InternalException: 500,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
} as const;

export type XksErrorName = keyof typeof XKS_ERROR_STATUS;

export function isXksErrorName(name: unknown): name is XksErrorName {
  return typeof name === 'string' && Object.hasOwn(XKS_ERROR_STATUS, name);
}

/** The error body: `errorMessage` is optional, under 512 printable ASCII characters. */
export interface XksErrorBody {
  errorName: XksErrorName;
  errorMessage?: string;
}

/** Sizes the specification fixes (bytes after Base64 decoding). */
export const XKS_LIMITS = {
  /** A proxy must accept plaintext and ciphertext of at least this size; the reference proxy accepts exactly up to it. */
  maxPlaintextBytes: 4300,
  maxAadBytes: 8192,
  maxCiphertextMetadataBytes: 20,
  ivBytes: [12, 16] as readonly number[],
  tagBytes: 16,
  /** ARNs in requestMetadata may be this long. */
  maxArnChars: 2048,
  maxErrorMessageChars: 511,
  maxKeyUsageValues: 10,
  maxEkmFleetEntries: 10,
} as const;

/** SigV4 service name and the clock skew a proxy tolerates (Appendix A). */
export const XKS_SIGV4_SERVICE = 'kms-xks-proxy';
export const XKS_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** `externalKeyId`: at most 128 of A–Z a–z 0–9 - . _ */
export const EXTERNAL_KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** Access key id: 20–30 of A–Z and 2–7 (the proxy configuration file's rule). */
export const ACCESS_KEY_ID = /^[A-Z2-7]{20,30}$/;
/** Secret access key: 43–64 of a–z A–Z 0–9 / + = */
export const SECRET_ACCESS_KEY = /^[A-Za-z0-9/+=]{43,64}$/;
/** `XksProxyUriPath`: `[/<path-prefix>]/kms/xks/v1`, at most 128 of a–z A–Z 0–9 / - _ */
export const URI_PATH = /^(?:\/[A-Za-z0-9_-]+)*\/kms\/xks\/v1$/;
export const URI_PATH_SUFFIX = '/kms/xks/v1';
export const MAX_URI_PATH_CHARS = 128;

export type KeyUsage = 'ENCRYPT' | 'DECRYPT';
export type KeyStatus = 'ENABLED' | 'DISABLED';
export type EkmHealthStatus = 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE';

export interface RequestMetadata {
  awsPrincipalArn?: string;
  awsSourceVpc?: string;
  awsSourceVpce?: string;
  kmsKeyArn?: string;
  kmsOperation: string;
  kmsRequestId: string;
  kmsViaService?: string;
}

export interface GetKeyMetadataResponse {
  keySpec: 'AES_256';
  keyUsage: string[];
  keyStatus: KeyStatus;
}

export interface EncryptRequest {
  requestMetadata: RequestMetadata;
  plaintext: string;
  encryptionAlgorithm: 'AES_GCM';
  additionalAuthenticatedData?: string;
  ciphertextDataIntegrityValueAlgorithm?: 'SHA_256';
}

export interface EncryptResponse {
  ciphertext: string;
  ciphertextMetadata?: string;
  initializationVector: string;
  authenticationTag: string;
  ciphertextDataIntegrityValue?: string;
}

export interface DecryptRequest {
  requestMetadata: RequestMetadata;
  ciphertext: string;
  ciphertextMetadata?: string;
  encryptionAlgorithm: 'AES_GCM';
  additionalAuthenticatedData?: string;
  initializationVector: string;
  authenticationTag: string;
}

export interface DecryptResponse {
  plaintext: string;
}

export interface GetHealthStatusResponse {
  xksProxyFleetSize: number;
  xksProxyVendor: string;
  xksProxyModel: string;
  ekmVendor: string;
  ekmFleetDetails: { id: string; model: string; healthStatus: EkmHealthStatus }[];
}

/** Normalizes `/acme`, `acme/kms/xks/v1` or `` to the `XksProxyUriPath` form; undefined when it cannot be one. */
export function normalizeUriPath(input: string): string | undefined {
  let p = input.trim().replace(/\/+$/, '');
  if (p !== '' && !p.startsWith('/')) p = `/${p}`;
  if (!p.endsWith(URI_PATH_SUFFIX)) p = `${p}${URI_PATH_SUFFIX}`;
  return p.length <= MAX_URI_PATH_CHARS && URI_PATH.test(p) ? p : undefined;
}
