// The very rules the server applies to an alias ARN (one source, src/providers/aws-kms/alias-arn.ts),
// run as the admin types. The deployment's list of allowed regions is not known here: a region of
// the right form passes, and Test (step ArnSyntax) reports a region the deployment does not allow.
import { ALIAS_ARN_FORM, parseAliasArn } from '../../src/providers/aws-kms/alias-arn.js';

export { ALIAS_ARN_FORM };

/** undefined when the ARN is acceptable, else the sentence saying what is wrong. */
export function aliasArnProblem(input: string): string | undefined {
  const region = input.trim().split(':')[3] ?? '';
  const result = parseAliasArn(input, [region]);
  return result.ok ? undefined : result.message;
}
