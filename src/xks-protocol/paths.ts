import { EXTERNAL_KEY_ID, MAX_URI_PATH_CHARS, URI_PATH, URI_PATH_SUFFIX } from './protocol.js';

/** The four operations and the URI each is reached at, below `XksProxyUriPath`. */
export type XksOperation = 'GetKeyMetadata' | 'Encrypt' | 'Decrypt' | 'GetHealthStatus';

const KEY_OPERATION_SUFFIX: Record<string, XksOperation> = { metadata: 'GetKeyMetadata', encrypt: 'Encrypt', decrypt: 'Decrypt' };
const OPERATION_SUFFIX: Record<Exclude<XksOperation, 'GetHealthStatus'>, string> = {
  GetKeyMetadata: 'metadata',
  Encrypt: 'encrypt',
  Decrypt: 'decrypt',
};

export interface XksRoute {
  /** `[/<path-prefix>]/kms/xks/v1`: the logical key store the request is for. */
  uriPath: string;
  operation: XksOperation;
  keyId?: string;
}

/** Splits a request path (no query) into key store, operation and key id; undefined when it names none of the four APIs. */
export function parseXksPath(pathname: string): XksRoute | undefined {
  const at = pathname.lastIndexOf(`${URI_PATH_SUFFIX}/`);
  if (at < 0) return undefined;
  const uriPath = pathname.slice(0, at + URI_PATH_SUFFIX.length);
  if (uriPath.length > MAX_URI_PATH_CHARS || !URI_PATH.test(uriPath)) return undefined;
  const rest = pathname.slice(uriPath.length + 1).split('/');
  if (rest.length === 1 && rest[0] === 'health') return { uriPath, operation: 'GetHealthStatus' };
  if (rest.length === 3 && rest[0] === 'keys' && EXTERNAL_KEY_ID.test(rest[1]!)) {
    const operation = KEY_OPERATION_SUFFIX[rest[2]!];
    if (operation) return { uriPath, operation, keyId: rest[1]! };
  }
  return undefined;
}

export function xksPath(uriPath: string, operation: XksOperation, keyId?: string): string {
  if (operation === 'GetHealthStatus') return `${uriPath}/health`;
  if (keyId === undefined || !EXTERNAL_KEY_ID.test(keyId)) throw new RangeError(`external key id ${JSON.stringify(keyId)} is not 1-128 of A-Z a-z 0-9 - . _`);
  return `${uriPath}/keys/${keyId}/${OPERATION_SUFFIX[operation]}`;
}
