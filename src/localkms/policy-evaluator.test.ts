import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customerKeyPolicy, platformKeyPolicyStatement } from '../kms/key-policy.js';
import { conditionHolds, evaluateKeyPolicy, parseKeyPolicy, PolicyDocumentError, type AuthorizationRequest } from './policy-evaluator.js';

const KEY = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const CUSTOMER = { arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333' };
const PLATFORM = { arn: 'arn:aws:iam::444455556666:root', accountId: '444455556666' };
const CTX = 'convault-organization-id';

function policy(...statements: unknown[]) {
  return parseKeyPolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }));
}

function request(overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
  return { principal: PLATFORM, action: 'kms:Decrypt', resource: KEY, ...overrides };
}

const allowPlatform = (extra: object = {}) => ({ Effect: 'Allow', Principal: { AWS: PLATFORM.arn }, Action: 'kms:*', Resource: '*', ...extra });

describe('key policy evaluation', () => {
  it('denies by default', () => {
    expect(evaluateKeyPolicy(policy({ Effect: 'Allow', Principal: { AWS: '999999999999' }, Action: '*', Resource: '*' }), request())).toBe('ImplicitDeny');
  });

  it('lets an explicit deny win over any allow', () => {
    const p = policy(allowPlatform(), { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' });
    expect(evaluateKeyPolicy(p, request())).toBe('ExplicitDeny');
    expect(evaluateKeyPolicy(p, request({ action: 'kms:Encrypt' }))).toBe('Allow');
  });

  it.each([
    ['account root ARN', 'arn:aws:iam::444455556666:root', true],
    ['bare account id', '444455556666', true],
    ['any', '*', true],
    ['another account', '111122223333', false],
  ])('matches the principal given as %s', (_name, principal, allowed) => {
    const p = policy({ Effect: 'Allow', Principal: { AWS: principal }, Action: 'kms:Decrypt', Resource: '*' });
    expect(evaluateKeyPolicy(p, request())).toBe(allowed ? 'Allow' : 'ImplicitDeny');
  });

  it('matches principal ARNs exactly, and a role also admits its sessions', () => {
    const p = policy({ Effect: 'Allow', Principal: { AWS: ['arn:aws:iam::444455556666:role/convault'] }, Action: 'kms:Decrypt', Resource: '*' });
    const as = (arn: string) => evaluateKeyPolicy(p, request({ principal: { arn, accountId: '444455556666' } }));
    expect(as('arn:aws:iam::444455556666:role/convault')).toBe('Allow');
    expect(as('arn:aws:sts::444455556666:assumed-role/convault/node-1')).toBe('Allow');
    expect(as('arn:aws:iam::444455556666:role/other')).toBe('ImplicitDeny');
    expect(as('arn:aws:iam::444455556666:root')).toBe('ImplicitDeny');
  });

  it('takes "Principal": "*" and never matches service principals', () => {
    expect(evaluateKeyPolicy(policy({ Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*' }), request())).toBe('Allow');
    const service = policy({ Effect: 'Allow', Principal: { Service: 'logs.amazonaws.com' }, Action: '*', Resource: '*' });
    expect(evaluateKeyPolicy(service, request())).toBe('ImplicitDeny');
  });

  it.each([
    ['kms:GenerateDataKey*', 'kms:GenerateDataKeyWithoutPlaintext', true],
    ['kms:GenerateDataKey*', 'kms:GenerateDataKey', true],
    ['kms:GenerateDataKey*', 'kms:Decrypt', false],
    ['kms:*', 'kms:PutKeyPolicy', true],
    ['KMS:decrypt', 'kms:Decrypt', true],
    ['kms:Re*', 'kms:ReEncryptFrom', true],
  ])('action %s vs %s', (pattern, action, allowed) => {
    const p = policy({ Effect: 'Allow', Principal: '*', Action: [pattern], Resource: '*' });
    expect(evaluateKeyPolicy(p, request({ action })) === 'Allow').toBe(allowed);
  });

  it('matches the Resource against the key ARN', () => {
    expect(evaluateKeyPolicy(policy(allowPlatform({ Resource: KEY })), request())).toBe('Allow');
    expect(evaluateKeyPolicy(policy(allowPlatform({ Resource: 'arn:aws:kms:*:111122223333:key/*' })), request())).toBe('Allow');
    expect(evaluateKeyPolicy(policy(allowPlatform({ Resource: 'arn:aws:kms:eu-west-1:111122223333:key/*' })), request())).toBe('ImplicitDeny');
  });

  describe('the platform statement (org ids in kms:EncryptionContext)', () => {
    const p = parseKeyPolicy(
      JSON.stringify(customerKeyPolicy({ customerAccountId: '111122223333', platformAccountId: '444455556666', encryptionContextKey: CTX, orgIds: ['org-a', 'org-b'] })),
    );

    it.each([
      ['kms:Decrypt', { [CTX]: 'org-a' }, 'Allow'],
      ['kms:GenerateDataKey', { [CTX]: 'org-b' }, 'Allow'],
      ['kms:Encrypt', { [CTX]: 'org-c' }, 'ImplicitDeny'],
      ['kms:Decrypt', {}, 'ImplicitDeny'],
      ['kms:Decrypt', { other: 'org-a' }, 'ImplicitDeny'],
      ['kms:Decrypt', { [CTX]: 'ORG-A' }, 'ImplicitDeny'],
      // The helper grants ReEncrypt* under the same org condition as the other uses (src/kms/key-policy.ts).
      ['kms:ReEncryptFrom', { [CTX]: 'org-a' }, 'Allow'],
      ['kms:ReEncryptTo', { [CTX]: 'org-c' }, 'ImplicitDeny'],
      ['kms:PutKeyPolicy', undefined, 'ImplicitDeny'],
      ['kms:DescribeKey', undefined, 'Allow'],
    ])('platform %s with %j → %s', (action, encryptionContext, decision) => {
      expect(evaluateKeyPolicy(p, request({ action, encryptionContext }))).toBe(decision);
    });

    it('matches the context key name case-insensitively, the value case-sensitively', () => {
      expect(evaluateKeyPolicy(p, request({ encryptionContext: { 'CONVAULT-Organization-Id': 'org-a' } }))).toBe('Allow');
    });

    it('leaves the customer account everything', () => {
      expect(evaluateKeyPolicy(p, request({ principal: CUSTOMER, action: 'kms:ScheduleKeyDeletion' }))).toBe('Allow');
    });

    it('could never allow DescribeKey if it were in the conditioned statement (why it has its own)', () => {
      const conditioned = { ...platformKeyPolicyStatement({ platformAccountId: '444455556666', encryptionContextKey: CTX, orgIds: ['org-a'] }), Action: 'kms:DescribeKey' };
      expect(evaluateKeyPolicy(policy(conditioned), request({ action: 'kms:DescribeKey' }))).toBe('ImplicitDeny');
    });
  });

  describe('conditions', () => {
    const cond = (Condition: object) => policy(allowPlatform({ Condition }));
    const decide = (Condition: object, encryptionContext?: Record<string, string>) =>
      evaluateKeyPolicy(cond(Condition), request({ encryptionContext }));

    it('StringLike takes wildcards', () => {
      expect(decide({ StringLike: { [`kms:EncryptionContext:${CTX}`]: 'org-eu-*' } }, { [CTX]: 'org-eu-7' })).toBe('Allow');
      expect(decide({ StringLike: { [`kms:EncryptionContext:${CTX}`]: 'org-eu-*' } }, { [CTX]: 'org-us-7' })).toBe('ImplicitDeny');
    });

    it('ForAllValues:StringEquals on kms:EncryptionContextKeys allows only the listed keys (and an empty context)', () => {
      const c = { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CTX] } };
      expect(decide(c, { [CTX]: 'x' })).toBe('Allow');
      expect(decide(c, { [CTX]: 'x', other: 'y' })).toBe('ImplicitDeny');
      expect(decide(c, {})).toBe('Allow');
    });

    it('ForAnyValue:StringEquals on kms:EncryptionContextKeys needs at least one listed key', () => {
      const c = { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': [CTX, 'tenant'] } };
      expect(decide(c, { tenant: 'x', other: 'y' })).toBe('Allow');
      expect(decide(c, { other: 'y' })).toBe('ImplicitDeny');
      expect(decide(c, {})).toBe('ImplicitDeny');
    });

    it('IfExists holds when the key is absent; negated operators hold on absence too', () => {
      expect(decide({ StringEqualsIfExists: { [`kms:EncryptionContext:${CTX}`]: 'org-a' } }, {})).toBe('Allow');
      expect(decide({ StringEqualsIfExists: { [`kms:EncryptionContext:${CTX}`]: 'org-a' } }, { [CTX]: 'org-b' })).toBe('ImplicitDeny');
      expect(decide({ StringNotEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-a' } }, {})).toBe('Allow');
      expect(decide({ StringNotEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-a' } }, { [CTX]: 'org-a' })).toBe('ImplicitDeny');
    });

    it('Null tests presence; several operators and keys must all hold', () => {
      expect(decide({ Null: { 'kms:EncryptionContextKeys': 'false' } }, {})).toBe('ImplicitDeny');
      expect(decide({ Null: { 'kms:EncryptionContextKeys': 'false' } }, { a: 'b' })).toBe('Allow');
      const both = { StringEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-a', 'kms:CallerAccount': '444455556666' } };
      expect(decide(both, { [CTX]: 'org-a' })).toBe('Allow');
      expect(decide({ ...both, Null: { 'kms:EncryptionContext:team': 'false' } }, { [CTX]: 'org-a' })).toBe('ImplicitDeny');
    });

    it('a Deny with a context condition only bites when it holds', () => {
      const p = policy(allowPlatform(), {
        Effect: 'Deny',
        Principal: { AWS: PLATFORM.arn },
        Action: 'kms:*',
        Resource: '*',
        Condition: { StringEquals: { [`kms:EncryptionContext:${CTX}`]: 'org-revoked' } },
      });
      expect(evaluateKeyPolicy(p, request({ encryptionContext: { [CTX]: 'org-revoked' } }))).toBe('ExplicitDeny');
      expect(evaluateKeyPolicy(p, request({ encryptionContext: { [CTX]: 'org-a' } }))).toBe('Allow');
    });

    it('ForAllValues is vacuously true and ForAnyValue false on absent keys, for any values', () => {
      fc.assert(
        fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 4 }), (values) => {
          const base = { operator: 'StringEquals' as const, ifExists: false, key: 'kms:encryptioncontextkeys', values };
          return conditionHolds({ ...base, qualifier: 'ForAllValues' }, undefined) && !conditionHolds({ ...base, qualifier: 'ForAnyValue' }, undefined);
        }),
      );
    });
  });

  describe('parsing', () => {
    it.each([
      ['not JSON', '{'],
      ['no statements', JSON.stringify({ Version: '2012-10-17', Statement: [] })],
      ['bad effect', JSON.stringify({ Statement: [{ Effect: 'Maybe', Principal: '*', Action: '*', Resource: '*' }] })],
      ['NotAction', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', NotAction: 'kms:Decrypt', Resource: '*' }] })],
      ['invalid principal', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'bob' }, Action: '*', Resource: '*' }] })],
      ['missing Action', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Resource: '*' }] })],
      ['unsupported operator', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*', Condition: { NumericLessThan: { 'kms:x': '1' } } }] })],
      ['bad version', JSON.stringify({ Version: '2020-01-01', Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }] })],
    ])('rejects %s', (_name, text) => {
      expect(() => parseKeyPolicy(text)).toThrow(PolicyDocumentError);
    });

    it('accepts a single statement object and string or array forms', () => {
      const p = parseKeyPolicy(JSON.stringify({ Statement: { Effect: 'Allow', Principal: { AWS: ['111122223333'] }, Action: 'kms:*', Resource: ['*'] } }));
      expect(p.statements).toHaveLength(1);
    });
  });
});
