/**
 * Errors the local KMS returns on the wire. `type` is the AWS exception name the SDK maps to its
 * typed exceptions (`NotFoundException`, `DisabledException`, …), so it must be spelled as AWS does.
 */
export type KmsErrorType =
  | 'AccessDeniedException'
  | 'AlreadyExistsException'
  | 'DependencyTimeoutException'
  | 'DisabledException'
  | 'DryRunOperationException'
  | 'IncompleteSignatureException'
  | 'IncorrectKeyException'
  | 'InvalidAliasNameException'
  | 'InvalidArnException'
  | 'InvalidCiphertextException'
  | 'InvalidKeyUsageException'
  | 'InvalidMarkerException'
  | 'InvalidSignatureException'
  | 'KMSInternalException'
  | 'KMSInvalidStateException'
  | 'MalformedPolicyDocumentException'
  | 'MissingAuthenticationTokenException'
  | 'NotFoundException'
  | 'SerializationException'
  | 'ServiceUnavailableException'
  | 'ThrottlingException'
  | 'UnknownOperationException'
  | 'UnrecognizedClientException'
  | 'UnsupportedOperationException'
  | 'ValidationException';

export class KmsError extends Error {
  constructor(
    readonly type: KmsErrorType,
    message: string,
    /** 400 for everything the caller caused; 5xx only for real internal faults and the injected outage. */
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

/** AWS's wording for constraint violations, so messages read like the real service's. */
export function validationError(field: string, constraint: string): KmsError {
  const member = field.charAt(0).toLowerCase() + field.slice(1);
  return new KmsError('ValidationException', `1 validation error detected: Value at '${member}' failed to satisfy constraint: ${constraint}`);
}
