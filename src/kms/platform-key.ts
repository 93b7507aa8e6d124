import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';

export const PLATFORM_KEY_ALIAS = 'alias/convault-platform-key';

/**
 * The platform's own key protects new data of organizations whose type is None (never plaintext).
 * With the embedded local KMS it is created on the first start; with an external KMS it must exist.
 */
export async function ensurePlatformKey(client: KMSClient, opts: { create: boolean; aliasName?: string }): Promise<string> {
  const alias = opts.aliasName ?? PLATFORM_KEY_ALIAS;
  try {
    const out = await client.send(new DescribeKeyCommand({ KeyId: alias }));
    return out.KeyMetadata!.Arn!;
  } catch (err) {
    if ((err as Error).name !== 'NotFoundException') throw err;
    if (!opts.create) {
      throw new Error(`The platform key ${alias} does not exist in the platform account: create a symmetric KMS key with that alias (it protects data of organizations without their own key).`);
    }
  }
  try {
    const created = await client.send(new CreateKeyCommand({ Description: 'convault platform key (key configuration type None)' }));
    await client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: created.KeyMetadata!.KeyId! }));
    return created.KeyMetadata!.Arn!;
  } catch (err) {
    // Another node created it at the same moment: use theirs.
    if ((err as Error).name !== 'AlreadyExistsException') throw err;
    const out = await client.send(new DescribeKeyCommand({ KeyId: alias }));
    return out.KeyMetadata!.Arn!;
  }
}
