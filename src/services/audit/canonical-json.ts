// Canonical JSON: the one serialization the audit hash chain is computed over, so anyone can
// recompute a hash from an exported event. Keys are sorted by UTF-16 code units (JavaScript's
// default sort, as in RFC 8785), there is no whitespace, and strings and numbers are written
// exactly as JSON.stringify writes them.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Serializes a JSON value canonically. Object members whose value is `undefined` are left out
 * (as JSON.stringify does, so a value survives a store-and-parse round trip unchanged); anything
 * JSON cannot represent faithfully (NaN, Infinity, bigint, functions, class instances such as
 * Date or Buffer) throws, because silently turning it into `null` or `{}` would hash a different
 * event from the one the caller meant to record.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is ${value}, which JSON cannot represent; record it as a string`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: ${path} is a ${typeof value}, which JSON cannot represent; convert it to a string or number`);
  }
  if (Array.isArray(value)) {
    return '[' + value.map((item, i) => (item === undefined ? 'null' : write(item, `${path}[${i}]`))).join(',') + ']';
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as object).constructor?.name ?? 'object';
    throw new TypeError(`canonicalJson: ${path} is a ${name}; convert it to a plain value first (e.g. a Date to toISOString())`);
  }
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const member = record[key];
    if (member === undefined) continue;
    members.push(JSON.stringify(key) + ':' + write(member, `${path}.${key}`));
  }
  return '{' + members.join(',') + '}';
}
