import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  PutKeyPolicyCommand,
  UpdateAliasCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { customerKeyPolicy } from '../../src/kms/key-policy.js';
import { PERMISSIONS } from '../../src/services/auth/permissions.js';
import { localKmsClient } from './local-kms.js';
import type { TestServer } from './runtime.js';

/** Customer keys in the test server's local KMS, made the way a customer makes them in AWS. */

export const CUSTOMER_ACCOUNT = '111122223333';
export const PLATFORM_ACCOUNT = '444455556666';
export const CONTEXT_KEY = 'convault-organization-id';
export const REGION = 'us-east-1';

export interface CustomerKey {
  keyId: string;
  keyArn: string;
  aliasName: string;
  aliasArn: string;
  accountId: string;
  /** The customer's own client (its account root): what its back end or admin uses. */
  client: KMSClient;
  disable(): Promise<void>;
  enable(): Promise<void>;
  /** Replaces the key policy: the platform may use the key for these organizations only (none: denied). */
  grantPlatform(orgIds: string[]): Promise<void>;
}

export interface CustomerKeyOptions {
  /** Organizations the platform may use the key for (the key policy statement of the key configuration page). */
  orgIds: string[];
  accountId?: string;
  aliasName?: string;
  contextKey?: string;
  platformAccountId?: string;
  /** false: the platform statement leaves out kms:ReEncrypt* (a policy a customer trimmed or wrote before the helper granted it). */
  reEncrypt?: boolean;
}

/** A KMS client of the given account against the server's local KMS. */
export function customerKmsClient(server: TestServer, accountId = CUSTOMER_ACCOUNT): KMSClient {
  const localKms = server.runtime.kms.localKms;
  if (!localKms) throw new Error('the test server runs no local KMS');
  return localKmsClient(localKms, accountId, { region: REGION, maxAttempts: 1 });
}

/** Creates a symmetric key with the customer key policy and an alias, in the customer's account. */
export async function createCustomerKey(server: TestServer, opts: CustomerKeyOptions): Promise<CustomerKey> {
  const accountId = opts.accountId ?? CUSTOMER_ACCOUNT;
  const client = customerKmsClient(server, accountId);
  const policyFor = (orgIds: string[]) => {
    const policy = customerKeyPolicy({
      customerAccountId: accountId,
      platformAccountId: opts.platformAccountId ?? PLATFORM_ACCOUNT,
      encryptionContextKey: opts.contextKey ?? CONTEXT_KEY,
      orgIds,
    });
    if (opts.reEncrypt === false) {
      for (const s of policy.Statement) if (Array.isArray(s.Action)) s.Action = s.Action.filter((a) => a !== 'kms:ReEncrypt*');
    }
    return JSON.stringify(policy);
  };
  const created = await client.send(new CreateKeyCommand({ Policy: policyFor(opts.orgIds), Description: 'test customer key' }));
  const keyId = created.KeyMetadata!.KeyId!;
  const aliasName = opts.aliasName ?? `alias/test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyId }));
  return {
    keyId,
    keyArn: created.KeyMetadata!.Arn!,
    aliasName,
    aliasArn: `arn:aws:kms:${REGION}:${accountId}:${aliasName}`,
    accountId,
    client,
    disable: async () => void (await client.send(new DisableKeyCommand({ KeyId: keyId }))),
    enable: async () => void (await client.send(new EnableKeyCommand({ KeyId: keyId }))),
    grantPlatform: async (orgIds) => void (await client.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: policyFor(orgIds) }))),
  };
}

/** Points an existing alias at another key (the customer's "retarget the alias" rotation). */
export async function retargetAlias(key: CustomerKey, targetKeyId: string): Promise<void> {
  await key.client.send(new UpdateAliasCommand({ AliasName: key.aliasName, TargetKeyId: targetKeyId }));
}

/**
 * Saves the organization's key configuration through the key configuration API: creates it, or
 * updates it at its current version. `aliasArn` null → type None.
 */
export async function configureOrgKey(server: TestServer, token: string, aliasArn: string | null): Promise<{ id: string; version: number; keyArn?: string }> {
  const body = aliasArn === null ? { keyConfigurationType: 'None' } : { keyConfigurationType: 'KmsSymmetric', url: aliasArn };
  const list = await server.call('GET', '/api/v2/conversations/keyconfigurations', { token });
  if (list.status !== 200) throw new Error(`list key configurations failed: ${JSON.stringify(list.body)}`);
  const current = list.body.entities[0] as { id: string; version: number } | undefined;
  const res = current
    ? await server.call('PUT', `/api/v2/conversations/keyconfigurations/${current.id}`, { token, body: { ...body, version: current.version } })
    : await server.call('POST', '/api/v2/conversations/keyconfigurations', { token, body });
  if (res.status !== 200 && res.status !== 201) throw new Error(`save key configuration failed (${res.status}): ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every permission the key and data suites use. */
export const ORG_ADMIN_PERMISSIONS: string[] = PERMISSIONS.filter((p) => !p.startsWith('admin:'));

/** An organization with a token of every permission this suite needs and its own customer key, configured. */
export async function orgWithCustomerKey(
  server: TestServer,
  name: string,
  createOrg: (server: TestServer, name: string, permissions: string[]) => Promise<{ orgId: string; token: string }>,
  opts: Omit<CustomerKeyOptions, 'orgIds'> = {},
): Promise<{ orgId: string; token: string; key: CustomerKey; configId: string }> {
  const org = await createOrg(server, name, ORG_ADMIN_PERMISSIONS);
  const key = await createCustomerKey(server, { ...opts, orgIds: [org.orgId] });
  const config = (await configureOrgKey(server, org.token, key.aliasArn)) as { id: string };
  return { ...org, key, configId: config.id };
}
