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

function utf8(s: string, what: string): Buffer {
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string`);
  if (LONE_SURROGATE.test(s)) {
    throw new RangeError(`${what} is not well-formed Unicode (lone surrogate); reject it at the API boundary`);
  }
  return Buffer.from(s, 'utf8');
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0); // throws past 2^32 - 1; no string that long reaches us
  return b;
}

export function encodeAad(label: string, version: number, fields: readonly string[]): Buffer {
  if (!Number.isInteger(version) || version < 0 || version > 0xff) {
    throw new RangeError('AAD version must be one byte');
  }
  const parts: Buffer[] = [];
  const labelBytes = utf8(label, 'AAD label');
  parts.push(u32be(labelBytes.length), labelBytes, Buffer.of(version));
  fields.forEach((field, i) => {
    const bytes = utf8(field, `AAD field ${i}`);
    parts.push(u32be(bytes.length), bytes);
  });
  return Buffer.concat(parts);
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
