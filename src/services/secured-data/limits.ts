import { AppError, badRequest, tooLarge } from '../errors.js';

/** Limits of secured data (docs/SECURED_DATA.md, "Limits"). */
export const MAX_ATTRIBUTES = 100;
/** Characters as JavaScript counts them (UTF-16 code units; equal to characters outside rare scripts and emoji). */
export const MAX_VALUE_LENGTH = 32_000;
export const MAX_NAME_LENGTH = 128;
const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
/**
 * Conversation ids of the platform are UUIDs; other ids of this shape are accepted too. 100 is also
 * the longest path parameter the HTTP router takes (longer → 414).
 */
const CONVERSATION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkConversationId(id: unknown): string {
  if (typeof id !== 'string' || !CONVERSATION_ID_PATTERN.test(id)) {
    throw badRequest('Invalid conversationId: use 1-100 characters of A-Z a-z 0-9 _ . : - (a conversation UUID).', { field: 'conversationId' });
  }
  return id;
}

export function checkAttributeName(name: string): void {
  const field = `data.${name.length > 40 ? `${name.slice(0, 40)}…` : name}`;
  if (name.length > MAX_NAME_LENGTH) {
    throw badRequest(`Attribute name too long: at most ${MAX_NAME_LENGTH} characters.`, { field }, 'MaximumDataSizeExceeded');
  }
  if (!NAME_PATTERN.test(name)) {
    throw badRequest('Invalid attribute name: use 1-128 characters of A-Z a-z 0-9 _ . -', { field });
  }
}

/** Checks one value; a value that is not a string is a 400, one over the limit a 413. */
export function checkValue(name: string, value: unknown, what = `data.${name}`): string {
  if (typeof value !== 'string') throw badRequest(`Invalid ${what}: values are strings.`, { field: what });
  if (value.length > MAX_VALUE_LENGTH) {
    throw tooLarge(`${what} has ${value.length} characters; a value may have at most ${MAX_VALUE_LENGTH}.`);
  }
  // A lone surrogate has no UTF-8 form: it would come back as U+FFFD, i.e. not the value that was sent.
  if (LONE_SURROGATE.test(value)) throw badRequest(`Invalid ${what}: not well-formed Unicode (lone surrogate).`, { field: what });
  return value;
}

export function tooManyAttributes(count: number): AppError {
  return tooLarge(`A conversation may hold at most ${MAX_ATTRIBUTES} secured attributes; this change would leave ${count}.`);
}

/** What a PUT or PATCH asks for: values to set, and (PATCH only, `null`) names to delete. */
export interface SecuredDataChange {
  set: Map<string, string>;
  remove: string[];
}

/** Parses `{ data: { name: value | null } }`; null (delete) is allowed only when merging. */
export function parseSecuredDataBody(body: unknown, opts: { allowNull: boolean }): SecuredDataChange {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('Send a JSON object { "data": { "<name>": "<value>", … } }.', { field: 'body' });
  }
  const data = (body as { data?: unknown }).data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw badRequest('data is required: an object of attribute name → string value.', { field: 'data' });
  }
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length > MAX_ATTRIBUTES) throw tooManyAttributes(entries.length);
  const set = new Map<string, string>();
  const remove: string[] = [];
  for (const [name, value] of entries) {
    checkAttributeName(name);
    if (value === null && opts.allowNull) remove.push(name);
    else if (value === null) throw badRequest(`Invalid data.${name}: null deletes an attribute only with PATCH; PUT replaces all attributes.`, { field: `data.${name}` });
    else set.set(name, checkValue(name, value));
  }
  return { set, remove };
}
