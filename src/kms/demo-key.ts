import { CreateAliasCommand, CreateKeyCommand, ScheduleKeyDeletionCommand, DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { customerKeyPolicy } from './key-policy.js';

export const DEMO_ACCOUNT_ID = '111122223333';
export const DEMO_ALIAS = 'alias/demo-customer-key';

/**
 * On the first start of the embedded default, a customer key to try the product with: it plays
 * the organization's own key in account 111122223333, with the policy the key-policy helper
 * generates for the bootstrap organization. Never created against an external KMS.
 */
export async function ensureDemoCustomerKey(
  client: KMSClient,
  opts: { region: string; platformAccountId: string; encryptionContextKey: string; orgId: string },
): Promise<string> {
  const aliasArn = `arn:aws:kms:${opts.region}:${DEMO_ACCOUNT_ID}:${DEMO_ALIAS}`;
  try {
    await client.send(new DescribeKeyCommand({ KeyId: DEMO_ALIAS }));
    return aliasArn;
  } catch (err) {
    if ((err as Error).name !== 'NotFoundException') throw err;
  }
  const policy = customerKeyPolicy({
    customerAccountId: DEMO_ACCOUNT_ID,
    platformAccountId: opts.platformAccountId,
    encryptionContextKey: opts.encryptionContextKey,
    orgIds: [opts.orgId],
  });
  const created = await client.send(new CreateKeyCommand({ Description: 'convault demo customer key', Policy: JSON.stringify(policy) }));
  try {
    await client.send(new CreateAliasCommand({ AliasName: DEMO_ALIAS, TargetKeyId: created.KeyMetadata!.KeyId! }));
  } catch (err) {
    // Two nodes starting together on one database both found no demo key: the other one's alias won.
    // Ours is left without an alias, so it is scheduled for deletion (the shortest window) rather than kept.
    if ((err as Error).name !== 'AlreadyExistsException') throw err;
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: created.KeyMetadata!.KeyId!, PendingWindowInDays: 7 })).catch(() => undefined);
  }
  return aliasArn;
}
