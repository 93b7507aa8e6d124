import { badRequest } from '../errors.js';
import { LONE_SURROGATE } from '../unicode.js';

/** Principal (token) names: 1–200 characters, well-formed Unicode, nothing that is not printable. */
export const MAX_PRINCIPAL_NAME = 200;

// Control (Cc), format (Cf: bidi overrides, zero-width), line/paragraph separators, private use,
// unassigned: none of them belongs in a name an admin reads in a list or an audit trail.
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]/u;

export function validatePrincipalName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string') throw badRequest(`${field} must be a string.`, { field });
  if (LONE_SURROGATE.test(name)) throw badRequest(`${field} must be well-formed Unicode (it holds a lone surrogate).`, { field });
  const length = [...name].length;
  if (length < 1 || length > MAX_PRINCIPAL_NAME) throw badRequest(`${field} must be 1-${MAX_PRINCIPAL_NAME} characters.`, { field });
  if (name.trim() !== name || name.trim() === '') throw badRequest(`${field} must not start or end with spaces.`, { field });
  if (NOT_PRINTABLE.test(name)) throw badRequest(`${field} must hold printable characters only.`, { field });
  return name;
}
