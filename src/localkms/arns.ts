import { KmsError, validationError } from './errors.js';

/** Key ids, ARNs and alias names: how callers name keys, and how the local KMS names them back. */

export const PARTITION = 'aws';

const KEY_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const KMS_ARN = /^arn:([a-z-]+):kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;
const ALIAS_CHARS = /^[a-zA-Z0-9:/_-]+$/;

export type KeyIdentifier =
  | { kind: 'keyId'; keyId: string }
  | { kind: 'keyArn'; keyId: string; region: string; accountId: string }
  | { kind: 'aliasName'; aliasName: string }
  | { kind: 'aliasArn'; aliasName: string; region: string; accountId: string };

export function isKeyId(value: string): boolean {
  return KEY_ID.test(value);
}

export function isAccountId(value: string): boolean {
  return ACCOUNT_ID.test(value);
}

export function isRegion(value: string): boolean {
  return REGION.test(value);
}

export function keyArn(region: string, accountId: string, keyId: string): string {
  return `arn:${PARTITION}:kms:${region}:${accountId}:key/${keyId}`;
}

export function aliasArn(region: string, accountId: string, aliasName: string): string {
  return `arn:${PARTITION}:kms:${region}:${accountId}:${aliasName}`;
}

export function accountRootArn(accountId: string): string {
  return `arn:${PARTITION}:iam::${accountId}:root`;
}

/**
 * Classifies a KeyId parameter. A string that is none of the four forms is a NotFoundException in
 * AWS ("Invalid keyId"), an `arn:` that is not a KMS key or alias ARN an InvalidArnException.
 */
export function parseKeyIdentifier(value: string): KeyIdentifier {
  if (value.startsWith('arn:')) {
    const m = KMS_ARN.exec(value);
    if (!m || m[1] !== PARTITION || !isRegion(m[2]!) || !isAccountId(m[3]!)) {
      throw new KmsError('InvalidArnException', `Invalid arn ${value}`);
    }
    const [, , region, accountId, kind, rest] = m as unknown as [string, string, string, string, string, string];
    if (kind === 'key') {
      if (!isKeyId(rest)) throw new KmsError('NotFoundException', `Invalid keyId ${value}`);
      return { kind: 'keyArn', keyId: rest, region, accountId };
    }
    return { kind: 'aliasArn', aliasName: `alias/${rest}`, region, accountId };
  }
  if (value.startsWith('alias/')) return { kind: 'aliasName', aliasName: value };
  if (isKeyId(value)) return { kind: 'keyId', keyId: value };
  throw new KmsError('NotFoundException', `Invalid keyId ${value}`);
}

/**
 * Alias name rules of CreateAlias/UpdateAlias: the API pattern is checked first (ValidationException),
 * then the alias-specific rules (InvalidAliasNameException), as AWS reports them.
 */
export function validateAliasName(aliasName: string, { forCreate }: { forCreate: boolean }): void {
  if (aliasName.length < 1 || aliasName.length > 256) {
    throw validationError('AliasName', 'Member must have length between 1 and 256');
  }
  if (!ALIAS_CHARS.test(aliasName)) {
    throw validationError('AliasName', 'Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$');
  }
  if (!aliasName.startsWith('alias/') || aliasName.length === 'alias/'.length) {
    throw new KmsError('InvalidAliasNameException', `Alias must start with the prefix "alias/" followed by a name: ${aliasName}`);
  }
  if (aliasName.includes(':')) {
    throw new KmsError('InvalidAliasNameException', `Alias name may contain only alphanumerics, '/', '_' and '-': ${aliasName}`);
  }
  if (forCreate && aliasName.toLowerCase().startsWith('alias/aws/')) {
    throw new KmsError('InvalidAliasNameException', `Alias names beginning with "alias/aws/" are reserved for AWS managed keys: ${aliasName}`);
  }
}
