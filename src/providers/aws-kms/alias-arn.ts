/** Validation of the KMS key alias ARN an admin enters: each rule has its own message. */

export const ALIAS_ARN_FORM = 'arn:aws:kms:{region}:{accountId}:alias/{your-alias}';

export interface AliasArn {
  partition: 'aws' | 'aws-us-gov' | 'aws-cn';
  region: string;
  accountId: string;
  /** Including the `alias/` prefix, as KMS names it. */
  aliasName: string;
  arn: string;
}

export type AliasArnResult = { ok: true; value: AliasArn } | { ok: false; message: string };

const PARTITIONS = new Set(['aws', 'aws-us-gov', 'aws-cn']);
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const ALIAS_NAME = /^[A-Za-z0-9/_-]{1,256}$/;

const fail = (problem: string): AliasArnResult => ({ ok: false, message: `${problem} Use the form ${ALIAS_ARN_FORM}.` });
/** For an ARN of the right form whose content is refused: the form would be no help. */
const refuse = (problem: string): AliasArnResult => ({ ok: false, message: problem });

/**
 * `platformAccountId`: the platform's own account. Its keys (the platform key among them) are never
 * an organization's key — "disable my key and my data is gone" would not hold for a key the
 * organization does not own — so an alias there is refused like any other malformed entry.
 */
export function parseAliasArn(input: unknown, allowedRegions: readonly string[], platformAccountId?: string): AliasArnResult {
  if (typeof input !== 'string' || input.trim() === '') return fail('The alias ARN is required for AWS KMS Symmetric.');
  const value = input.trim();
  if (value.length > 2048) return fail('The alias ARN is too long.');
  const parts = value.split(':');
  if (parts[0] !== 'arn' || parts.length < 6) return fail(`"${truncate(value)}" is not an ARN.`);
  const [, partition, service, region, accountId] = parts as [string, string, string, string, string];
  const resource = parts.slice(5).join(':');
  if (!PARTITIONS.has(partition)) return fail(`Partition "${partition}" is not one of aws, aws-us-gov, aws-cn.`);
  if (service !== 'kms') return fail(`The ARN is for service "${service}", not kms.`);
  if (!region) return fail('The ARN has no region.');
  if (!REGION.test(region)) return fail(`"${region}" is not an AWS region.`);
  if (!allowedRegions.includes(region)) {
    return refuse(`Region ${region} is not allowed for this deployment: use a key in ${allowedRegions.length === 1 ? allowedRegions[0] : `one of ${allowedRegions.join(', ')}`}.`);
  }
  if (!/^\d{12}$/.test(accountId)) return fail(`The account id "${accountId}" must be 12 digits.`);
  if (platformAccountId !== undefined && accountId === platformAccountId) {
    return fail(`Account ${accountId} is the platform's own AWS account: its keys are never an organization's key. Enter an alias of a key in your own account.`);
  }
  if (resource.startsWith('key/')) {
    return fail('This is a key ARN, not an alias ARN: create an alias for the key (kms:CreateAlias) and enter its ARN, so you can rotate by retargeting the alias.');
  }
  if (!resource.startsWith('alias/')) return fail(`The resource "${truncate(resource)}" must start with alias/.`);
  const name = resource.slice('alias/'.length);
  if (!ALIAS_NAME.test(name)) return fail('The alias name must be 1-256 characters of A-Z, a-z, 0-9, /, _ and -.');
  if (resource.startsWith('alias/aws/')) return fail('alias/aws/… names AWS managed keys, which cannot be shared with another account: use a customer managed key.');
  return { ok: true, value: { partition: partition as AliasArn['partition'], region, accountId, aliasName: resource, arn: value } };
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
