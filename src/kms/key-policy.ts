/**
 * Key policy documents convault asks customers to put on their KMS keys.
 *
 * The platform may use a customer's key only for that customer's organizations: Encrypt, Decrypt,
 * GenerateDataKey* and ReEncrypt* are allowed only when the encryption context pair `<ctxKey>: <orgId>`
 * names one of them. ReEncrypt* grants nothing Decrypt + Encrypt do not already grant, but lets a
 * rewrap move a data key in one KMS call with the plaintext never leaving KMS. kms:DescribeKey takes no encryption context in AWS, so a `kms:EncryptionContext:` condition
 * can never hold for it; it therefore gets its own statement without the condition (DescribeKey
 * reveals metadata only — state, ARN, key spec — never uses the key). Granting DescribeKey is
 * optional: without it the platform cannot check a key's state ahead of use.
 */

export interface KeyPolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal: { AWS: string | string[] };
  Action: string | string[];
  Resource: string;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface KeyPolicyDocument {
  Version: '2012-10-17';
  Id?: string;
  Statement: KeyPolicyStatement[];
}

export interface PlatformStatementOptions {
  platformAccountId: string;
  encryptionContextKey: string;
  orgIds: string[];
}

export const PLATFORM_USAGE_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'] as const;

/** Lets the platform account use the key, but only with the encryption context of the given organizations. */
export function platformKeyPolicyStatement({ platformAccountId, encryptionContextKey, orgIds }: PlatformStatementOptions): KeyPolicyStatement {
  if (orgIds.length === 0) throw new Error('platformKeyPolicyStatement needs at least one organization id');
  return {
    Sid: 'AllowConvaultPlatformUseForItsOrganizations',
    Effect: 'Allow',
    Principal: { AWS: rootArn(platformAccountId) },
    Action: [...PLATFORM_USAGE_ACTIONS],
    Resource: '*',
    Condition: {
      StringEquals: { [`kms:EncryptionContext:${encryptionContextKey}`]: orgIds.length === 1 ? orgIds[0]! : [...orgIds] },
    },
  };
}

/** Lets the platform account read the key's metadata (no condition: DescribeKey carries no encryption context). */
export function platformDescribeKeyStatement({ platformAccountId }: { platformAccountId: string }): KeyPolicyStatement {
  return {
    Sid: 'AllowConvaultPlatformDescribeKey',
    Effect: 'Allow',
    Principal: { AWS: rootArn(platformAccountId) },
    Action: 'kms:DescribeKey',
    Resource: '*',
  };
}

/** Both platform statements, in the order a customer pastes them into the key policy's Statement list. */
export function platformKeyPolicyStatements(opts: PlatformStatementOptions): KeyPolicyStatement[] {
  return [platformKeyPolicyStatement(opts), platformDescribeKeyStatement(opts)];
}

/** The key's own account may do everything — AWS's default key policy statement. */
export function accountRootStatement(accountId: string): KeyPolicyStatement {
  return { Sid: 'EnableIAMUserPermissions', Effect: 'Allow', Principal: { AWS: rootArn(accountId) }, Action: 'kms:*', Resource: '*' };
}

/**
 * A complete key policy for a customer key: the customer's account root may do everything, and the
 * platform may use the key for the given organizations. With no organization ids it is AWS's default
 * policy (the account root only).
 */
export function customerKeyPolicy(opts: { customerAccountId: string } & PlatformStatementOptions): KeyPolicyDocument {
  const statements = [accountRootStatement(opts.customerAccountId)];
  if (opts.orgIds.length > 0) statements.push(...platformKeyPolicyStatements(opts));
  return { Version: '2012-10-17', Statement: statements };
}

function rootArn(accountId: string): string {
  if (!/^\d{12}$/.test(accountId)) throw new Error(`not a 12-digit AWS account id: ${accountId}`);
  return `arn:aws:iam::${accountId}:root`;
}
