import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALIAS_ARN_FORM, parseAliasArn } from './alias-arn.js';

const allowed = ['us-east-1', 'eu-west-1', 'us-gov-west-1'];

describe('parseAliasArn', () => {
  it('accepts a well-formed alias ARN in an allowed region', () => {
    const r = parseAliasArn('arn:aws:kms:us-east-1:111122223333:alias/contact-center', allowed);
    expect(r).toEqual({
      ok: true,
      value: { partition: 'aws', region: 'us-east-1', accountId: '111122223333', aliasName: 'alias/contact-center', arn: 'arn:aws:kms:us-east-1:111122223333:alias/contact-center' },
    });
    expect(parseAliasArn('arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a/b_c-d', allowed).ok).toBe(true);
    expect(parseAliasArn('  arn:aws:kms:eu-west-1:111122223333:alias/x  ', allowed).ok).toBe(true);
  });

  it.each([
    ['', /required/],
    ['   ', /required/],
    ['urn:aws:kms:us-east-1:111122223333:alias/x', /is not an ARN/],
    ['arn:aws:kms:Xus-east-1:111122223333:alias/x', /not an AWS region/],
    ['arn:aws:kms:us-east-1x:111122223333:alias/x', /not an AWS region/],
    ['arn:aws:kms:us-east-1:1111222233334:alias/x', /must be 12 digits/],
    [`arn:aws:kms:us-east-1:111122223333:alias/${'a'.repeat(2008)}`, /^The alias ARN is too long\./],
    [undefined, /required/],
    [42, /required/],
    ['contact-center', /is not an ARN/],
    ['arn:aws:kms:us-east-1', /is not an ARN/],
    ['arn:gcp:kms:us-east-1:111122223333:alias/x', /Partition "gcp"/],
    ['arn:aws:s3:us-east-1:111122223333:alias/x', /service "s3", not kms/],
    ['arn:aws:kms::111122223333:alias/x', /no region/],
    ['arn:aws:kms:moon-1:111122223333:alias/x', /not an AWS region/],
    ['arn:aws:kms:us-east-1:1234:alias/x', /must be 12 digits/],
    ['arn:aws:kms:us-east-1:11112222333a:alias/x', /must be 12 digits/],
    ['arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab', /key ARN, not an alias ARN: create an alias/],
    ['arn:aws:kms:us-east-1:111122223333:contact-center', /must start with alias\//],
    ['arn:aws:kms:us-east-1:111122223333:alias/', /1-256 characters/],
    ['arn:aws:kms:us-east-1:111122223333:alias/bad name', /1-256 characters/],
    ['arn:aws:kms:us-east-1:111122223333:alias/bad:name', /1-256 characters/],
    [`arn:aws:kms:us-east-1:111122223333:alias/${'a'.repeat(257)}`, /1-256 characters/],
    ['arn:aws:kms:us-east-1:111122223333:alias/aws/ebs', /AWS managed keys/],
  ])('rejects %j with a message saying what is wrong and showing the form', (input, problem) => {
    const r = parseAliasArn(input, allowed);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toMatch(problem);
      expect(r.message).toContain(ALIAS_ARN_FORM);
    }
  });

  it('refuses a region the deployment does not allow, naming the allowed ones and not the form (the form is right)', () => {
    const r = parseAliasArn('arn:aws:kms:ap-south-1:111122223333:alias/x', allowed);
    expect(r).toEqual({ ok: false, message: 'Region ap-south-1 is not allowed for this deployment: use a key in one of us-east-1, eu-west-1, us-gov-west-1.' });
  });

  it('takes an ARN up to 2048 characters, and shows long input cut to 80 characters', () => {
    const prefix = 'arn:aws:kms:us-east-1:111122223333:alias/';
    const longest = parseAliasArn(prefix + 'a'.repeat(2048 - prefix.length), allowed);
    expect(longest.ok || longest.message).toMatch(/1-256 characters/);
    const garbage = 'x'.repeat(100);
    expect(parseAliasArn(garbage, allowed)).toEqual({ ok: false, message: `"${'x'.repeat(77)}..." is not an ARN. Use the form ${ALIAS_ARN_FORM}.` });
    expect(parseAliasArn('y'.repeat(80), allowed)).toEqual({ ok: false, message: `"${'y'.repeat(80)}" is not an ARN. Use the form ${ALIAS_ARN_FORM}.` });
    expect(parseAliasArn(`arn:aws:kms:us-east-1:111122223333:${'k'.repeat(81)}`, allowed)).toMatchObject({ message: expect.stringContaining(`"${'k'.repeat(77)}..." must start with alias/`) });
  });

  it('knows the China partition and regions with two-digit numbers', () => {
    expect(parseAliasArn('arn:aws-cn:kms:cn-north-1:111122223333:alias/x', ['cn-north-1'])).toMatchObject({ ok: true, value: { partition: 'aws-cn', region: 'cn-north-1' } });
    expect(parseAliasArn('arn:aws:kms:us-east-12:111122223333:alias/x', allowed)).toMatchObject({ ok: false, message: expect.stringMatching(/^Region us-east-12 is not allowed/) });
  });

  it('names the one allowed region plainly', () => {
    expect(parseAliasArn('arn:aws:kms:eu-west-1:111122223333:alias/x', ['us-east-1'])).toEqual({
      ok: false,
      message: 'Region eu-west-1 is not allowed for this deployment: use a key in us-east-1.',
    });
  });

  it("refuses an alias in the platform's own account", () => {
    expect(parseAliasArn('arn:aws:kms:us-east-1:444455556666:alias/x', allowed, '444455556666')).toEqual({
      ok: false,
      message: `Account 444455556666 is the platform's own AWS account: its keys are never an organization's key. Enter an alias of a key in your own account. Use the form ${ALIAS_ARN_FORM}.`,
    });
    expect(parseAliasArn('arn:aws:kms:us-east-1:111122223333:alias/x', allowed, '444455556666').ok).toBe(true);
  });

  const region = fc.constantFrom(...allowed.filter((r) => !r.startsWith('us-gov')));
  const account = fc.stringMatching(/^\d{12}$/);
  const aliasName = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9/_-]{0,40}$/).filter((n) => !n.startsWith('aws/'));

  it('accepts every ARN built by the rules and returns its parts (property)', () => {
    fc.assert(
      fc.property(region, account, aliasName, (r, a, n) => {
        const arn = `arn:aws:kms:${r}:${a}:alias/${n}`;
        const parsed = parseAliasArn(arn, allowed);
        return parsed.ok && parsed.value.region === r && parsed.value.accountId === a && parsed.value.aliasName === `alias/${n}`;
      }),
    );
  });

  it('never throws and never accepts a string that breaks the alias name rule (property)', () => {
    fc.assert(
      fc.property(region, account, fc.string({ maxLength: 40 }), (r, a, n) => {
        const parsed = parseAliasArn(`arn:aws:kms:${r}:${a}:alias/${n}`, allowed);
        // Surrounding white space is trimmed (pasted ARNs often carry it); only the end of n can have any.
        const name = n.trimEnd();
        const valid = /^[A-Za-z0-9/_-]{1,256}$/.test(name) && !name.startsWith('aws/');
        return parsed.ok === valid;
      }),
    );
  });
});
