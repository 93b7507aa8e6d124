import { describe, expect, it } from 'vitest';
import {
  accountRootStatement,
  customerKeyPolicy,
  platformDescribeKeyStatement,
  platformKeyPolicyStatement,
  platformKeyPolicyStatements,
} from '../src/kms/key-policy.js';
import { evaluateKeyPolicy, parseKeyPolicy, type Decision } from '../src/localkms/policy-evaluator.js';

/**
 * The key-policy helper's documents, judged by the local KMS's policy evaluator (the same one that
 * authorizes every local KMS call): what the platform may and may not do with a customer key.
 */

const CUSTOMER = '111122223333';
const PLATFORM = '444455556666';
const OTHER = '777788889999';
const CTX = 'convault-organization-id';
const KEY = `arn:aws:kms:us-east-1:${CUSTOMER}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const principal = (account: string) => ({ arn: `arn:aws:iam::${account}:root`, accountId: account });

function decide(document: object, account: string, action: string, org?: string): Decision {
  const request = { principal: principal(account), action, resource: KEY, ...(org !== undefined ? { encryptionContext: { [CTX]: org } } : {}) };
  return evaluateKeyPolicy(parseKeyPolicy(JSON.stringify(document)), request);
}

const USES = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'];

describe('customer key policy', () => {
  const twoOrgs = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: ['org-a', 'org-b'] });

  it.each(USES)('lets the platform %s only with the encryption context of one of its organizations', (action) => {
    expect(decide(twoOrgs, PLATFORM, action, 'org-a')).toBe('Allow');
    expect(decide(twoOrgs, PLATFORM, action, 'org-b')).toBe('Allow');
    expect(decide(twoOrgs, PLATFORM, action, 'org-c')).toBe('ImplicitDeny');
    expect(decide(twoOrgs, PLATFORM, action)).toBe('ImplicitDeny');
    expect(decide(twoOrgs, OTHER, action, 'org-a')).toBe('ImplicitDeny');
  });

  it('lets the platform describe the key without a context, and nothing else', () => {
    expect(decide(twoOrgs, PLATFORM, 'kms:DescribeKey')).toBe('Allow');
    for (const action of ['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:DisableKey', 'kms:CreateGrant']) {
      expect(decide(twoOrgs, PLATFORM, action, 'org-a')).toBe('ImplicitDeny');
    }
  });

  it("leaves the customer's account root every right", () => {
    for (const action of ['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:Decrypt', 'kms:DescribeKey']) {
      expect(decide(twoOrgs, CUSTOMER, action)).toBe('Allow');
    }
  });

  it('is the document the customer pastes, statement by statement', () => {
    expect(twoOrgs).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'EnableIAMUserPermissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${CUSTOMER}:root` }, Action: 'kms:*', Resource: '*' },
        {
          Sid: 'AllowConvaultPlatformUseForItsOrganizations',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${PLATFORM}:root` },
          Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
          Resource: '*',
          Condition: { StringEquals: { [`kms:EncryptionContext:${CTX}`]: ['org-a', 'org-b'] } },
        },
        { Sid: 'AllowConvaultPlatformDescribeKey', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${PLATFORM}:root` }, Action: 'kms:DescribeKey', Resource: '*' },
      ],
    });
    // One organization: a plain string, the form the AWS console writes.
    const one = platformKeyPolicyStatement({ platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: ['org-a'] });
    expect(one.Condition).toEqual({ StringEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-a' } });
    expect(platformKeyPolicyStatements({ platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: ['org-a'] })).toEqual([
      one,
      platformDescribeKeyStatement({ platformAccountId: PLATFORM }),
    ]);
    expect(accountRootStatement(CUSTOMER)).toEqual(twoOrgs.Statement[0]);
  });

  it("without organizations is AWS's default policy: the platform may do nothing", () => {
    const rootOnly = customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: [] });
    expect(rootOnly).toEqual({ Version: '2012-10-17', Statement: [accountRootStatement(CUSTOMER)] });
    expect(decide(rootOnly, PLATFORM, 'kms:DescribeKey')).toBe('ImplicitDeny');
    expect(decide(rootOnly, PLATFORM, 'kms:Decrypt', 'org-a')).toBe('ImplicitDeny');
  });

  it('refuses a platform statement for no organization', () => {
    expect(() => platformKeyPolicyStatement({ platformAccountId: PLATFORM, encryptionContextKey: CTX, orgIds: [] })).toThrow(
      'platformKeyPolicyStatement needs at least one organization id',
    );
  });

  it.each(['12345678901', '1234567890123', 'x12345678901', '12345678901x', 'abcdefghijkl', ''])('refuses the account id "%s"', (bad) => {
    expect(() => accountRootStatement(bad)).toThrow(`not a 12-digit AWS account id: ${bad}`);
    expect(() => platformDescribeKeyStatement({ platformAccountId: bad })).toThrow('not a 12-digit AWS account id');
    expect(() => customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: bad, encryptionContextKey: CTX, orgIds: ['org-a'] })).toThrow(
      'not a 12-digit AWS account id',
    );
  });
});
