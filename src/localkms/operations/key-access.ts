import { accountRootArn, aliasArn, keyArn, parseKeyIdentifier } from '../arns.js';
import { KmsError } from '../errors.js';
import type { KeyMaterialCache } from '../key-material-cache.js';
import type { KeyRow, KeyStore } from '../key-store.js';
import { evaluateKeyPolicy, parseKeyPolicy, PolicyDocumentError, type ParsedPolicy } from '../policy-evaluator.js';
import type { AuthenticatedCaller } from '../request-auth.js';
import { openWithRootKey, RootKeyError } from '../root-key.js';
import { epochSeconds } from './input.js';

/** What every operation gets: the store, the root key, who is calling, and "now" from the injected clock. */
export interface OperationContext {
  store: KeyStore;
  rootKey: Buffer;
  /** Opened material per key id (immutable per key); see key-material-cache.ts. */
  materials: KeyMaterialCache;
  caller: AuthenticatedCaller;
  now: number;
}

export interface ResolveOptions {
  /** Whether alias names and alias ARNs are accepted (AWS refuses them for key-management operations). */
  aliases: boolean;
  /** Whether a key of another account may be named by ARN (AWS: cryptographic operations and DescribeKey). */
  crossAccount: boolean;
}

export const materialLabel = (keyId: string) => `localkms-key-material:${keyId}`;

export function arnOf(key: KeyRow): string {
  return keyArn(key.region, key.account_id, key.key_id);
}

/**
 * Turns a KeyId parameter into a live key as AWS does: key ids and alias names are looked up in the
 * caller's account and region; ARNs name their own account (when cross-account use is allowed) but
 * must be in the caller's region. Anything the caller cannot see is a NotFoundException.
 *
 * `readInThisRequest`: a live key row this request has already read (Decrypt's blob key), used
 * instead of reading the same row again when the identifier names that key.
 */
export async function resolveKey(ctx: OperationContext, identifier: string, opts: ResolveOptions, readInThisRequest?: KeyRow): Promise<KeyRow> {
  const id = parseKeyIdentifier(identifier);
  if (!opts.aliases && (id.kind === 'aliasName' || id.kind === 'aliasArn')) {
    throw new KmsError('NotFoundException', `Invalid keyId ${identifier}: this operation takes a key id or key ARN, not an alias.`);
  }
  const accountId = id.kind === 'keyArn' || id.kind === 'aliasArn' ? id.accountId : ctx.caller.accountId;
  const region = id.kind === 'keyArn' || id.kind === 'aliasArn' ? id.region : ctx.caller.region;
  const foreign = region !== ctx.caller.region || (accountId !== ctx.caller.accountId && !opts.crossAccount);

  let keyId: string;
  let key: KeyRow | undefined;
  if (id.kind === 'aliasName' || id.kind === 'aliasArn') {
    if (foreign) throw aliasNotFound(region, accountId, id.aliasName);
    const target = await aliasTarget(ctx.store, accountId, region, id.aliasName);
    keyId = target.keyId;
    key = await liveKeyOf(ctx, target.row);
  } else {
    keyId = id.keyId;
    if (foreign) throw notFoundIn(region, accountId, keyId);
    key = readInThisRequest?.key_id === keyId ? readInThisRequest : await liveKey(ctx, keyId);
  }
  if (!key || key.account_id !== accountId || key.region !== region) throw notFoundIn(region, accountId, keyId);
  return key;
}

/** The key an alias names, its row read in the same query (by alias is how convault names keys on every call). */
async function aliasTarget(store: KeyStore, accountId: string, region: string, aliasName: string): Promise<{ keyId: string; row: KeyRow | undefined }> {
  const row = await store.findKeyByAlias(accountId, region, aliasName);
  if (row) return { keyId: row.key_id, row };
  // Nothing: tell a missing alias (the usual case) from an alias whose key row is missing.
  const alias = await store.findAlias(accountId, region, aliasName);
  if (!alias) throw aliasNotFound(region, accountId, aliasName);
  return { keyId: alias.target_key_id, row: undefined };
}

function aliasNotFound(region: string, accountId: string, aliasName: string): KmsError {
  return new KmsError('NotFoundException', `Alias ${aliasArn(region, accountId, aliasName)} is not found.`);
}

function notFoundIn(region: string, accountId: string, keyId: string): KmsError {
  return new KmsError('NotFoundException', `Key '${keyArn(region, accountId, keyId)}' does not exist`);
}

/** The key unless it is unknown or deleted; a key whose deletion window has passed is deleted now. */
export async function liveKey(ctx: OperationContext, keyId: string): Promise<KeyRow | undefined> {
  return liveKeyOf(ctx, await ctx.store.findKey(keyId));
}

/** liveKey for a row already read in this request. */
export async function liveKeyOf(ctx: OperationContext, key: KeyRow | undefined): Promise<KeyRow | undefined> {
  if (!key) return undefined;
  if (key.key_state === 'Deleted') {
    ctx.materials.forget(key.key_id);
    return undefined;
  }
  if (key.key_state === 'PendingDeletion' && key.deletion_date !== null && key.deletion_date <= ctx.now) {
    await ctx.store.purgeKey(key.key_id, ctx.now);
    ctx.materials.forget(key.key_id);
    return undefined;
  }
  return key;
}

/** Completes deletions whose window has passed, before listing an account's keys or aliases. */
export async function purgeExpiredKeys(ctx: OperationContext): Promise<void> {
  for (const keyId of await ctx.store.findExpiredKeyIds(ctx.caller.accountId, ctx.caller.region, ctx.now)) {
    await ctx.store.purgeKey(keyId, ctx.now);
  }
}

/** Evaluates the key policy for the caller; AccessDeniedException in AWS's wording when it does not allow. */
export function authorize(ctx: OperationContext, key: KeyRow, action: string, encryptionContext?: Record<string, string>): void {
  const resource = arnOf(key);
  const decision = evaluateKeyPolicy(storedPolicy(key), {
    principal: { arn: ctx.caller.arn, accountId: ctx.caller.accountId },
    action,
    resource,
    encryptionContext,
  });
  if (decision === 'Allow') return;
  const why = decision === 'ExplicitDeny' ? 'with an explicit deny in a resource-based policy' : `because no resource-based policy allows the ${action} action`;
  throw new KmsError('AccessDeniedException', `User: ${ctx.caller.arn} is not authorized to perform: ${action} on resource: ${resource} ${why}`);
}

/** Cryptographic operations need an Enabled key; the messages are AWS's. */
export function requireEnabled(key: KeyRow): void {
  if (key.key_state === 'Disabled') throw new KmsError('DisabledException', `${arnOf(key)} is disabled.`);
  if (key.key_state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${arnOf(key)} is pending deletion.`);
}

export function requireNotPendingDeletion(key: KeyRow): void {
  if (key.key_state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${arnOf(key)} is pending deletion.`);
}

/**
 * The key's AES-256 material, opened under the root key — once per key and process (the cache hands
 * it out only for a row carrying the same sealed bytes; see key-material-cache.ts). The buffer is
 * shared: use it synchronously, never alter or zero it.
 */
export function keyMaterial(ctx: OperationContext, key: KeyRow): Buffer {
  const sealed = key.material;
  if (!sealed) throw new KmsError('KMSInternalException', `${arnOf(key)} has no key material.`, 500);
  try {
    return ctx.materials.get(key.key_id, sealed, () => openWithRootKey(ctx.rootKey, materialLabel(key.key_id), sealed));
  } catch (err) {
    if (err instanceof RootKeyError) {
      throw new KmsError('KMSInternalException', 'The local KMS cannot open the key material: the root key does not match the stored keys.', 500);
    }
    throw err;
  }
}

/**
 * Validates a policy document the caller supplies, and — unless they bypass it as AWS lets them —
 * refuses one that would lock the caller out of changing the policy again (AWS's safety check).
 */
export function acceptPolicy(ctx: OperationContext, policyText: string, resource: string, bypassLockoutCheck: boolean): ParsedPolicy {
  let policy: ParsedPolicy;
  try {
    policy = parseKeyPolicy(policyText);
  } catch (err) {
    if (err instanceof PolicyDocumentError) throw new KmsError('MalformedPolicyDocumentException', err.message);
    throw err;
  }
  if (!bypassLockoutCheck) {
    const decision = evaluateKeyPolicy(policy, { principal: ctx.caller, action: 'kms:PutKeyPolicy', resource });
    if (decision !== 'Allow') {
      throw new KmsError(
        'MalformedPolicyDocumentException',
        'The new key policy will not allow you to update the key policy in the future. Grant the caller kms:PutKeyPolicy, or set BypassPolicyLockoutSafetyCheck.',
      );
    }
  }
  return policy;
}

/** AWS's default key policy: the key's own account may do everything. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: accountRootArn(accountId) }, Action: 'kms:*', Resource: '*' },
      ],
    },
    null,
    2,
  );
}

export function keyMetadata(key: KeyRow): Record<string, unknown> {
  const arn = arnOf(key);
  return {
    AWSAccountId: key.account_id,
    KeyId: key.key_id,
    Arn: arn,
    CreationDate: epochSeconds(key.created_at),
    Enabled: key.key_state === 'Enabled',
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.key_state,
    ...(key.deletion_date !== null ? { DeletionDate: epochSeconds(key.deletion_date) } : {}),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    MultiRegion: key.multi_region === 1,
    ...(key.multi_region === 1
      ? { MultiRegionConfiguration: { MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: arn, Region: key.region }, ReplicaKeys: [] } }
      : {}),
  };
}

// Policies are re-read from the database on every call (other nodes may have changed them); parsing
// is memoised by text so that costs a map lookup.
const parsedPolicies = new Map<string, ParsedPolicy>();
function storedPolicy(key: KeyRow): ParsedPolicy {
  let policy = parsedPolicies.get(key.policy);
  if (!policy) {
    policy = parseKeyPolicy(key.policy);
    if (parsedPolicies.size >= 1000) parsedPolicies.clear();
    parsedPolicies.set(key.policy, policy);
  }
  return policy;
}
