import { KmsError, validationError } from '../errors.js';

/**
 * Readers for request fields. A field of the wrong JSON type is a SerializationException (the
 * request does not fit the API model); a well-typed value outside its constraints a ValidationException.
 */

export type Input = Record<string, unknown>;

export function optionalString(input: Input, field: string, limits: { min?: number; max?: number } = {}): string | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw wrongType(field, 'a string');
  if (limits.min !== undefined && v.length < limits.min) throw validationError(field, `Member must have length greater than or equal to ${limits.min}`);
  if (limits.max !== undefined && v.length > limits.max) throw validationError(field, `Member must have length less than or equal to ${limits.max}`);
  return v;
}

export function requiredString(input: Input, field: string, limits: { min?: number; max?: number } = { min: 1 }): string {
  const v = optionalString(input, field, limits);
  if (v === undefined) throw validationError(field, 'Member must not be null');
  return v;
}

export function optionalEnum<T extends string>(input: Input, field: string, allowed: readonly T[]): T | undefined {
  const v = optionalString(input, field);
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw validationError(field, `Member must satisfy enum value set: [${allowed.join(', ')}]`);
  return v as T;
}

export function optionalInteger(input: Input, field: string, min: number, max: number): number | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw wrongType(field, 'an integer');
  if (v < min) throw validationError(field, `Member must have value greater than or equal to ${min}`);
  if (v > max) throw validationError(field, `Member must have value less than or equal to ${max}`);
  return v;
}

export function optionalBoolean(input: Input, field: string): boolean | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw wrongType(field, 'a boolean');
  return v;
}

/** A base64 blob field. Strict decoding: Node's decoder would silently skip garbage. */
export function optionalBlob(input: Input, field: string, min: number, max: number): Buffer | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw wrongType(field, 'base64-encoded binary data');
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length < min) throw validationError(field, `Member must have length greater than or equal to ${min}`);
  if (bytes.length > max) throw validationError(field, `Member must have length less than or equal to ${max}`);
  return bytes;
}

export function requiredBlob(input: Input, field: string, min: number, max: number): Buffer {
  const v = optionalBlob(input, field, min, max);
  if (v === undefined) throw validationError(field, 'Member must not be null');
  return v;
}

const MAX_CONTEXT_CHARS = 8192;

/** An encryption context: a map of string to string; absent means empty. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function encryptionContext(input: Input, field: string): Record<string, string> {
  const v = input[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw wrongType(field, 'a map of string to string');
  // No prototype: a `__proto__` pair is an ordinary pair here, kept and bound like any other
  // (assigning it to a plain object would set the prototype and silently drop the pair).
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let size = 0;
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw wrongType(`${field}.${key}`, 'a string');
    // A lone surrogate has no UTF-8 form: encoded it would become U+FFFD, so two different
    // contexts would bind the same bytes.
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) throw validationError(field, 'Member keys and values must be well-formed Unicode');
    size += key.length + value.length;
    out[key] = value;
  }
  // Bounds the blob's AAD encoding (u16 lengths) and keeps contexts to the sizes KMS users expect.
  if (size > MAX_CONTEXT_CHARS) throw validationError(field, `Member must have at most ${MAX_CONTEXT_CHARS} characters in its keys and values`);
  return out;
}

export function optionalStringList(input: Input, field: string): string[] | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw wrongType(field, 'a list of strings');
  return v as string[];
}

function wrongType(field: string, expected: string): KmsError {
  return new KmsError('SerializationException', `${field} must be ${expected}`);
}

/** Pagination markers are opaque to callers; here they carry the last id returned. */
export function encodeMarker(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeMarker(marker: string | undefined, valid: (id: string) => boolean): string | undefined {
  if (marker === undefined) return undefined;
  const id = /^[A-Za-z0-9_-]+$/.test(marker) ? Buffer.from(marker, 'base64url').toString('utf8') : '';
  if (!valid(id)) throw new KmsError('InvalidMarkerException', 'The marker is not valid; pass the NextMarker of the previous response.');
  return id;
}

export function epochSeconds(ms: number): number {
  return ms / 1000;
}
