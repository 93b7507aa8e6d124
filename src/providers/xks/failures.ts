import { classifyTransportError, isXksError, type XksError, type XksFailureKind } from '../../xks-client/index.js';
import { KeyProviderError, type KeyFailureKind } from '../key-provider.js';

/** XKS client failures → provider-neutral kinds, and what the customer changes for each. */

const KIND: Record<XksFailureKind, KeyFailureKind> = {
  // The specification answers InvalidStateException for a disabled external key.
  'invalid-state': 'Disabled',
  'key-not-found': 'NotFound',
  authentication: 'BadCredentials',
  'access-denied': 'AccessDenied',
  'invalid-ciphertext': 'InvalidCiphertext',
  throttled: 'Throttled',
  'dependency-timeout': 'Unavailable',
  unreachable: 'Unavailable',
  timeout: 'Unavailable',
  'invalid-key-usage': 'Misconfigured',
  'invalid-uri-path': 'Misconfigured',
  unsupported: 'Misconfigured',
  tls: 'Misconfigured',
  validation: 'Internal',
  internal: 'Internal',
  'invalid-response': 'Internal',
  integrity: 'Internal',
};

export const ADDRESS_REFUSED = 'ERR_XKS_ADDRESS_REFUSED';

export function classifyXksFailure(err: unknown, operation?: string): KeyProviderError {
  if (err instanceof KeyProviderError) return err;
  const xks: XksError = isXksError(err) ? err : classifyTransportError(err);
  const refused = (xks.cause as NodeJS.ErrnoException | undefined)?.code === ADDRESS_REFUSED;
  const kind = refused ? 'Misconfigured' : KIND[xks.kind];
  return new KeyProviderError(kind, xks.message, {
    providerError: xks.errorName ?? (refused ? ADDRESS_REFUSED : xks.kind),
    ...(operation ? { operation } : {}),
    cause: xks,
  });
}

export interface XksRemediationContext {
  url: string;
  keyId: string;
}

/** The sentence an admin acts on, by XKS error name where the proxy sent one. */
export function xksRemediation(failure: KeyProviderError, ctx: XksRemediationContext): string {
  const name = failure.providerError;
  switch (name) {
    case 'AuthenticationFailedException':
      return `The XKS proxy at ${ctx.url} refused the platform's signature: check apiId (access key id) and apiKey (secret access key) for this URI prefix, save the current pair, then test again.`;
    case 'KeyNotFoundException':
      return `The XKS proxy has no key ${ctx.keyId}: create it in your key manager (or correct keyId), then test again.`;
    case 'InvalidStateException':
      return `The external key ${ctx.keyId} is disabled at your key manager: enable it, then test again.`;
    case 'InvalidKeyUsageException':
      return `The external key ${ctx.keyId} is not allowed to encrypt and decrypt: give it both usages (ENCRYPT, DECRYPT) in your key manager.`;
    case 'AccessDeniedException':
      return `The XKS proxy's authorization policy refuses the platform for key ${ctx.keyId}: allow it in the proxy's policy, then test again.`;
    case 'InvalidUriPathException':
      return `The XKS proxy does not serve the path of ${ctx.url}: correct the path prefix (…/kms/xks/v1) in the URL.`;
    case 'ThrottlingException':
      return 'The XKS proxy throttled the request: try again in a moment, or raise its request limits.';
    case 'DependencyTimeoutException':
      return 'The XKS proxy could not reach your key manager in time: check the key manager behind it, then test again.';
    case 'UnsupportedOperationException':
      return 'The XKS proxy does not support an operation the platform needs (Encrypt, Decrypt, GetKeyMetadata, GetHealthStatus with AES_GCM): upgrade or reconfigure it.';
    case 'InvalidCiphertextException':
      return 'The XKS proxy could not decrypt the wrapped key: it was wrapped under another key or for another organization or record, or it was altered.';
    case 'ValidationException':
    case 'InternalException':
      return `The XKS proxy answered ${name}: ${failure.message}. Check the proxy's log for the request; if it persists, contact the platform operator.`;
    case ADDRESS_REFUSED:
      return `${failure.message}: the platform does not call internal addresses; use the proxy's public name.`;
    default:
      break;
  }
  switch (failure.kind) {
    case 'Disabled':
      return `The external key ${ctx.keyId} is disabled at your key manager: enable it, then test again.`;
    case 'Unavailable':
      return `The XKS proxy at ${ctx.url} could not be reached or did not answer in time: check that it runs and that the platform can reach it, then test again.`;
    case 'Misconfigured':
      return `The TLS connection to ${ctx.url} failed (${failure.message}): the proxy's certificate must be valid for its host name and chain to a public CA or to the CA bundle of this configuration.`;
    case 'InvalidCiphertext':
      return 'The wrapped key does not open under this key for this organization and record: it belongs elsewhere or was altered.';
    default:
      return `The XKS proxy call failed: ${failure.message}.`;
  }
}
