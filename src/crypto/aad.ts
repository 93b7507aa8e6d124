// Additional authenticated data: what a ciphertext is bound to, besides its key.
//
//   AAD = u32be(len(label)) || label || u8(version) || for each field: u32be(len(field)) || field
//
// Labels and fields are UTF-8. Every variable part carries its length, so the byte string parses
// back into exactly one (label, version, fields) tuple: ("ab","c") and ("a","bc") differ. The label
// separates uses, so a wrapped-key AAD never equals a value AAD even for equal field strings.

import { Buffer } from 'node:buffer';

export const AAD_LABEL_CONVERSATION_KEY = 'convault/conversation-key';
export const AAD_LABEL_VALUE = 'convault/value';

// A lone surrogate has no UTF-8 form; Buffer.from would replace it with U+FFFD, so "\uD800" and
// "\uFFFD" would share an AAD. Refuse instead: the string cannot be an id or a name anyway.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** String.prototype.isWellFormed for runtimes without it. Exported so a test holds it to the native one. */
export function hasNoLoneSurrogate(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

// String.prototype.isWellFormed (V8 11+) answers the same question without a regex scan.
const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: () => boolean }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : hasNoLoneSurrogate;

function checkedByteLength(s: string, what: string): number {
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string`);
  if (!isWellFormed(s)) {
    throw new RangeError(`${what} is not well-formed Unicode (lone surrogate); reject it at the API boundary`);
  }
  return Buffer.byteLength(s, 'utf8');
}

// u32be(len(label)) || label || u8(version) is the same for every AAD of one use: built once.
const prefixes = new Map<string, Buffer>();
function prefixFor(label: string, version: number): Buffer {
  const key = `${version}\u0000${label}`;
  let prefix = prefixes.get(key);
  if (!prefix) {
    const n = checkedByteLength(label, 'AAD label');
    prefix = Buffer.alloc(4 + n + 1);
    prefix.writeUInt32BE(n, 0);
    prefix.write(label, 4, 'utf8');
    prefix.writeUInt8(version, 4 + n);
    prefixes.set(key, prefix);
  }
  return prefix;
}

export function encodeAad(label: string, version: number, fields: readonly string[]): Buffer {
  if (!Number.isInteger(version) || version < 0 || version > 0xff) {
    throw new RangeError('AAD version must be one byte');
  }
  const prefix = prefixFor(label, version);
  const lengths = fields.map((field, i) => checkedByteLength(field, `AAD field ${i}`));
  // One allocation, every byte written below (no uninitialised memory can leak into the AAD).
  const out = Buffer.allocUnsafe(prefix.length + lengths.reduce((sum, n) => sum + 4 + n, 0));
  let at = prefix.copy(out, 0);
  fields.forEach((field, i) => {
    at = out.writeUInt32BE(lengths[i]!, at); // throws past 2^32 - 1; no string that long reaches us
    at += out.write(field, at, 'utf8');
  });
  return out;
}

export function conversationKeyAad(
  version: number,
  ids: { orgId: string; conversationId: string; dataKeyId: string },
): Buffer {
  return encodeAad(AAD_LABEL_CONVERSATION_KEY, version, [ids.orgId, ids.conversationId, ids.dataKeyId]);
}

export function valueAad(version: number, ids: { orgId: string; conversationId: string; name: string }): Buffer {
  return encodeAad(AAD_LABEL_VALUE, version, [ids.orgId, ids.conversationId, ids.name]);
}
