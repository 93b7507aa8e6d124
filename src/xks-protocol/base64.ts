/**
 * Standard Base64 (RFC 4648 §4, padded). Buffer.from(…, 'base64') silently skips characters it
 * does not know and accepts the URL alphabet, so a damaged field would decode to other bytes
 * instead of being refused; this checks the text first.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64Strict(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}
