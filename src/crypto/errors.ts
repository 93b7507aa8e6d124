// One error type for everything that can go wrong while opening or sealing stored key material.
// The code is what callers branch on; the message is for operators and never contains key bytes.

export type EnvelopeErrorCode =
  | 'MalformedEnvelope' // wrong length or shape: the bytes are not one of our formats
  | 'UnsupportedVersion' // a version byte this build does not know: written by a newer convault?
  | 'AuthenticationFailed' // tag mismatch: tampered, wrong key, or wrong org/conversation/name/key id
  | 'InvalidKey'; // a key that is not 32 bytes, or all zeros (a key already evicted from a cache)

export class EnvelopeError extends Error {
  readonly code: EnvelopeErrorCode;

  constructor(code: EnvelopeErrorCode, message: string) {
    super(message);
    this.name = 'EnvelopeError';
    this.code = code;
  }
}

export function isEnvelopeError(err: unknown): err is EnvelopeError {
  return err instanceof EnvelopeError;
}
