import { wildcardMatch } from './wildcard.js';

/**
 * The key policy language subset the local KMS understands, and its evaluation. Pure: no I/O, no
 * clock, no knowledge of keys beyond the ARN it is asked about.
 *
 * Evaluation follows IAM: an explicit Deny wins over any Allow, and without a matching Allow the
 * answer is an implicit deny. There are no IAM identity policies here, so a key policy statement
 * naming an account (`123456789012` or `arn:aws:iam::123456789012:root`) admits every principal of
 * that account — as if each had an IAM policy allowing everything.
 */

export type Effect = 'Allow' | 'Deny';

export type PrincipalPattern =
  | { kind: 'any' }
  | { kind: 'account'; accountId: string }
  | { kind: 'arn'; arn: string }
  /** Service, Federated, CanonicalUser: accepted in a document, never matched by a caller here. */
  | { kind: 'unmatchable' };

export type SetQualifier = 'ForAnyValue' | 'ForAllValues';

export interface ParsedCondition {
  operator: ConditionOperator;
  qualifier?: SetQualifier;
  ifExists: boolean;
  /** Condition key names are case-insensitive in IAM; kept lower-cased. */
  key: string;
  values: string[];
}

export interface ParsedStatement {
  sid?: string;
  effect: Effect;
  principals: PrincipalPattern[];
  actions: string[];
  resources: string[];
  conditions: ParsedCondition[];
}

export interface ParsedPolicy {
  statements: ParsedStatement[];
}

export interface AuthorizationRequest {
  principal: { arn: string; accountId: string };
  /** e.g. `kms:Decrypt`. */
  action: string;
  /** The key ARN the action is on. */
  resource: string;
  /** Present only for operations that take an encryption context (Encrypt, Decrypt, …). */
  encryptionContext?: Record<string, string>;
}

export type Decision = 'Allow' | 'ExplicitDeny' | 'ImplicitDeny';

export class PolicyDocumentError extends Error {}

const OPERATORS = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'Null',
] as const;
export type ConditionOperator = (typeof OPERATORS)[number];

const NEGATED: ReadonlySet<ConditionOperator> = new Set(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike']);

const STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Principal', 'Action', 'Resource', 'Condition']);
const UNSUPPORTED_FIELDS = new Set(['NotPrincipal', 'NotAction', 'NotResource']);

const ACCOUNT = /^\d{12}$/;
const ROOT_ARN = /^arn:aws:iam::(\d{12}):root$/;
const IAM_PRINCIPAL_ARN = /^arn:aws:iam::\d{12}:(user|role)\/[\w+=,.@/-]+$/;
const ASSUMED_ROLE_ARN = /^arn:aws:sts::(\d{12}):assumed-role\/([\w+=,.@-]+)\/[\w+=,.@-]+$/;

// ---------------------------------------------------------------------------------------------
// Parsing: a JSON document in, a validated ParsedPolicy out (or a PolicyDocumentError saying why).
// ---------------------------------------------------------------------------------------------

export function parseKeyPolicy(text: string): ParsedPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PolicyDocumentError('The policy is not valid JSON.');
  }
  if (!isObject(doc)) throw new PolicyDocumentError('The policy must be a JSON object.');
  for (const field of Object.keys(doc)) {
    if (!['Version', 'Id', 'Statement'].includes(field)) throw new PolicyDocumentError(`Unsupported policy element ${field}.`);
  }
  if (doc.Version !== undefined && doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17') {
    throw new PolicyDocumentError(`Unsupported policy Version ${JSON.stringify(doc.Version)}; use "2012-10-17".`);
  }
  const raw = doc.Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) throw new PolicyDocumentError('The policy must contain at least one Statement.');
  return { statements: list.map((s, i) => parseStatement(s, i)) };
}

function parseStatement(raw: unknown, index: number): ParsedStatement {
  const where = `Statement ${index}`;
  if (!isObject(raw)) throw new PolicyDocumentError(`${where} must be an object.`);
  for (const field of Object.keys(raw)) {
    if (UNSUPPORTED_FIELDS.has(field)) throw new PolicyDocumentError(`${where}: ${field} is not supported by the local KMS.`);
    if (!STATEMENT_FIELDS.has(field)) throw new PolicyDocumentError(`${where}: unknown element ${field}.`);
  }
  if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') throw new PolicyDocumentError(`${where}: Effect must be "Allow" or "Deny".`);
  if (raw.Sid !== undefined && typeof raw.Sid !== 'string') throw new PolicyDocumentError(`${where}: Sid must be a string.`);
  return {
    sid: raw.Sid as string | undefined,
    effect: raw.Effect,
    principals: parsePrincipal(raw.Principal, where),
    actions: stringList(raw.Action, `${where}: Action`),
    resources: stringList(raw.Resource, `${where}: Resource`),
    conditions: raw.Condition === undefined ? [] : parseConditions(raw.Condition, where),
  };
}

function parsePrincipal(raw: unknown, where: string): PrincipalPattern[] {
  if (raw === '*') return [{ kind: 'any' }];
  if (!isObject(raw) || Object.keys(raw).length === 0) {
    throw new PolicyDocumentError(`${where}: Principal must be "*" or an object such as {"AWS": [...]}.`);
  }
  const patterns: PrincipalPattern[] = [];
  for (const [type, value] of Object.entries(raw)) {
    const entries = stringList(value, `${where}: Principal.${type}`);
    if (type !== 'AWS') {
      if (!['Service', 'Federated', 'CanonicalUser'].includes(type)) {
        throw new PolicyDocumentError(`${where}: unknown principal type ${type}.`);
      }
      patterns.push({ kind: 'unmatchable' });
      continue;
    }
    for (const entry of entries) patterns.push(parseAwsPrincipal(entry, where));
  }
  return patterns;
}

function parseAwsPrincipal(entry: string, where: string): PrincipalPattern {
  if (entry === '*') return { kind: 'any' };
  if (ACCOUNT.test(entry)) return { kind: 'account', accountId: entry };
  const root = ROOT_ARN.exec(entry);
  if (root) return { kind: 'account', accountId: root[1]! };
  if (IAM_PRINCIPAL_ARN.test(entry) || ASSUMED_ROLE_ARN.test(entry)) return { kind: 'arn', arn: entry };
  // AWS's own wording for this case, which tools and people search for.
  throw new PolicyDocumentError(`Policy contains a statement with one or more invalid principals (${where}: ${JSON.stringify(entry)}).`);
}

function parseConditions(raw: unknown, where: string): ParsedCondition[] {
  if (!isObject(raw)) throw new PolicyDocumentError(`${where}: Condition must be an object.`);
  const out: ParsedCondition[] = [];
  for (const [rawOperator, block] of Object.entries(raw)) {
    const { operator, qualifier, ifExists } = parseOperator(rawOperator, where);
    if (!isObject(block)) throw new PolicyDocumentError(`${where}: Condition.${rawOperator} must be an object of condition keys.`);
    for (const [key, value] of Object.entries(block)) {
      const values = conditionValues(value, `${where}: Condition.${rawOperator}.${key}`);
      if (operator === 'Null' && values.some((v) => v !== 'true' && v !== 'false')) {
        throw new PolicyDocumentError(`${where}: Null conditions take "true" or "false".`);
      }
      out.push({ operator, qualifier, ifExists, key: key.toLowerCase(), values });
    }
  }
  return out;
}

function parseOperator(raw: string, where: string): { operator: ConditionOperator; qualifier?: SetQualifier; ifExists: boolean } {
  let rest = raw;
  let qualifier: SetQualifier | undefined;
  for (const q of ['ForAnyValue', 'ForAllValues'] as const) {
    if (rest.startsWith(`${q}:`)) {
      qualifier = q;
      rest = rest.slice(q.length + 1);
    }
  }
  const ifExists = rest.endsWith('IfExists');
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  const operator = OPERATORS.find((o) => o === rest);
  if (!operator || (operator === 'Null' && (ifExists || qualifier))) {
    throw new PolicyDocumentError(
      `${where}: condition operator ${raw} is not supported by the local KMS (supported: ${OPERATORS.join(', ')}, with optional IfExists and ForAnyValue:/ForAllValues:).`,
    );
  }
  return { operator, qualifier, ifExists };
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

export function evaluateKeyPolicy(policy: ParsedPolicy, request: AuthorizationRequest): Decision {
  const context = conditionContext(request);
  let allowed = false;
  for (const statement of policy.statements) {
    if (!statementApplies(statement, request, context)) continue;
    if (statement.effect === 'Deny') return 'ExplicitDeny';
    allowed = true;
  }
  return allowed ? 'Allow' : 'ImplicitDeny';
}

function statementApplies(s: ParsedStatement, request: AuthorizationRequest, context: Map<string, string[]>): boolean {
  return (
    s.principals.some((p) => principalMatches(p, request.principal)) &&
    s.actions.some((a) => wildcardMatch(a, request.action, true)) &&
    s.resources.some((r) => wildcardMatch(r, request.resource)) &&
    s.conditions.every((c) => conditionHolds(c, context.get(c.key)))
  );
}

export function principalMatches(pattern: PrincipalPattern, principal: { arn: string; accountId: string }): boolean {
  switch (pattern.kind) {
    case 'any':
      return true;
    case 'account':
      return pattern.accountId === principal.accountId;
    case 'arn': {
      if (pattern.arn === principal.arn) return true;
      // A role named in a policy also admits its sessions, as in AWS.
      const session = ASSUMED_ROLE_ARN.exec(principal.arn);
      return session !== null && pattern.arn === `arn:aws:iam::${session[1]}:role/${session[2]}`;
    }
    case 'unmatchable':
      return false;
  }
}

/** The request's condition keys (lower-cased names) and their values; an absent key is not in the map. */
export function conditionContext(request: AuthorizationRequest): Map<string, string[]> {
  const ctx = new Map<string, string[]>();
  const add = (key: string, value: string) => {
    const list = ctx.get(key);
    if (list) list.push(value);
    else ctx.set(key, [value]);
  };
  add('kms:calleraccount', request.principal.accountId);
  add('aws:principalarn', request.principal.arn);
  add('aws:principalaccount', request.principal.accountId);
  for (const [key, value] of Object.entries(request.encryptionContext ?? {})) {
    // The context key inside the condition key name is matched case-insensitively, as condition key
    // names are; pairs that differ only by case both count. Values stay case-sensitive.
    add(`kms:encryptioncontext:${key.toLowerCase()}`, value);
    add('kms:encryptioncontextkeys', key);
  }
  return ctx;
}

export function conditionHolds(c: ParsedCondition, requestValues: string[] | undefined): boolean {
  const present = requestValues !== undefined && requestValues.length > 0;
  if (c.operator === 'Null') return c.values.every((v) => (v === 'true') === !present);
  if (c.qualifier === 'ForAllValues') return !present || requestValues.every((v) => valueSatisfies(c, v));
  if (c.qualifier === 'ForAnyValue') return present && requestValues.some((v) => valueSatisfies(c, v));
  if (!present) return c.ifExists || NEGATED.has(c.operator);
  return NEGATED.has(c.operator)
    ? requestValues.every((v) => valueSatisfies(c, v))
    : requestValues.some((v) => valueSatisfies(c, v));
}

/** One request value against the condition's values (which are OR-ed). Negated operators: matches none. */
function valueSatisfies(c: ParsedCondition, value: string): boolean {
  switch (c.operator) {
    case 'StringEquals':
      return c.values.includes(value);
    case 'StringNotEquals':
      return !c.values.includes(value);
    case 'StringEqualsIgnoreCase':
      return c.values.some((v) => v.toLowerCase() === value.toLowerCase());
    case 'StringNotEqualsIgnoreCase':
      return !c.values.some((v) => v.toLowerCase() === value.toLowerCase());
    case 'StringLike':
      return c.values.some((v) => wildcardMatch(v, value));
    case 'StringNotLike':
      return !c.values.some((v) => wildcardMatch(v, value));
    case 'Null':
      return false;
  }
}

// ---------------------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(raw: unknown, where: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0 || list.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new PolicyDocumentError(`${where} must be a non-empty string or array of non-empty strings.`);
  }
  return list as string[];
}

function conditionValues(raw: unknown, where: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0 || list.some((v) => !['string', 'boolean', 'number'].includes(typeof v))) {
    throw new PolicyDocumentError(`${where} must be a string or an array of strings.`);
  }
  return list.map(String);
}
