import { randomBytes, randomUUID } from 'node:crypto';
import { isKeyId, keyArn } from '../arns.js';
import { KmsError } from '../errors.js';
import type { KeyRow, KeyState } from '../key-store.js';
import { sealWithRootKey } from '../root-key.js';
import {
  decodeMarker,
  encodeMarker,
  epochSeconds,
  optionalBoolean,
  optionalEnum,
  optionalInteger,
  optionalString,
  requiredString,
  type Input,
} from './input.js';
import {
  acceptPolicy,
  arnOf,
  authorize,
  defaultKeyPolicy,
  keyMetadata,
  liveKey,
  materialLabel,
  purgeExpiredKeys,
  requireNotPendingDeletion,
  resolveKey,
  type OperationContext,
} from './key-access.js';

/** CreateKey, DescribeKey, ListKeys, Enable/DisableKey, Schedule/CancelKeyDeletion, Get/PutKeyPolicy. */

const DAY_MS = 86_400_000;
const OWN_KEY = { aliases: false, crossAccount: false };
const MAX_POLICY_CHARS = 32_768;

export async function createKey(input: Input, ctx: OperationContext) {
  const policyText = optionalString(input, 'Policy', { min: 1, max: MAX_POLICY_CHARS });
  const description = optionalString(input, 'Description', { min: 0, max: 8192 }) ?? '';
  const keyUsage = optionalEnum(input, 'KeyUsage', ['SIGN_VERIFY', 'ENCRYPT_DECRYPT', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT']) ?? 'ENCRYPT_DECRYPT';
  const keySpec = optionalString(input, 'KeySpec') ?? optionalString(input, 'CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT';
  const origin = optionalEnum(input, 'Origin', ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE']) ?? 'AWS_KMS';
  const multiRegion = optionalBoolean(input, 'MultiRegion') ?? false;
  const bypass = optionalBoolean(input, 'BypassPolicyLockoutSafetyCheck') ?? false;
  if (keyUsage !== 'ENCRYPT_DECRYPT' || keySpec !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('UnsupportedOperationException', 'The local KMS supports only symmetric keys: KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT.');
  }
  if (origin !== 'AWS_KMS' || input.CustomKeyStoreId !== undefined || input.XksKeyId !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'The local KMS supports only Origin AWS_KMS (no imported material, no custom key stores).');
  }

  const { accountId, region } = ctx.caller;
  const keyId = multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID();
  const policy = policyText ?? defaultKeyPolicy(accountId);
  if (policyText !== undefined) acceptPolicy(ctx, policyText, keyArn(region, accountId, keyId), bypass);

  const material = randomBytes(32);
  const row: KeyRow = {
    key_id: keyId,
    account_id: accountId,
    region,
    description,
    key_state: 'Enabled',
    multi_region: multiRegion ? 1 : 0,
    policy,
    material: sealWithRootKey(ctx.rootKey, materialLabel(keyId), material),
    created_at: ctx.now,
    deletion_date: null,
    pending_window_days: null,
    updated_at: ctx.now,
  };
  material.fill(0);
  await ctx.store.insertKey(row);
  return { KeyMetadata: keyMetadata(row) };
}

export async function describeKey(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), { aliases: true, crossAccount: true });
  authorize(ctx, key, 'kms:DescribeKey');
  return { KeyMetadata: keyMetadata(key) };
}

export async function listKeys(input: Input, ctx: OperationContext) {
  const limit = optionalInteger(input, 'Limit', 1, 1000) ?? 100;
  const after = decodeMarker(optionalString(input, 'Marker', { min: 1, max: 1024 }), isKeyId);
  await purgeExpiredKeys(ctx);
  const rows = await ctx.store.listKeys(ctx.caller.accountId, ctx.caller.region, after, limit + 1);
  const page = rows.slice(0, limit);
  const truncated = rows.length > limit;
  return {
    Keys: page.map((k) => ({ KeyId: k.key_id, KeyArn: arnOf(k) })),
    Truncated: truncated,
    ...(truncated ? { NextMarker: encodeMarker(page[page.length - 1]!.key_id) } : {}),
  };
}

export async function enableKey(input: Input, ctx: OperationContext) {
  await setEnabled(input, ctx, 'Enabled', 'kms:EnableKey');
  return {};
}

export async function disableKey(input: Input, ctx: OperationContext) {
  await setEnabled(input, ctx, 'Disabled', 'kms:DisableKey');
  return {};
}

async function setEnabled(input: Input, ctx: OperationContext, to: KeyState, action: string): Promise<void> {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), OWN_KEY);
  authorize(ctx, key, action);
  requireNotPendingDeletion(key);
  const changed = await ctx.store.transitionKey(key.key_id, ['Enabled', 'Disabled'], {
    key_state: to,
    deletion_date: null,
    pending_window_days: null,
    updated_at: ctx.now,
  });
  // Lost a race with a deletion scheduled meanwhile (perhaps by another node): report that state.
  if (!changed) await reportCurrentState(ctx, key);
}

export async function scheduleKeyDeletion(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), OWN_KEY);
  const days = optionalInteger(input, 'PendingWindowInDays', 7, 30) ?? 30;
  authorize(ctx, key, 'kms:ScheduleKeyDeletion');
  requireNotPendingDeletion(key);
  const deletionDate = ctx.now + days * DAY_MS;
  const changed = await ctx.store.transitionKey(key.key_id, ['Enabled', 'Disabled'], {
    key_state: 'PendingDeletion',
    deletion_date: deletionDate,
    pending_window_days: days,
    updated_at: ctx.now,
  });
  if (!changed) await reportCurrentState(ctx, key);
  return { KeyId: arnOf(key), DeletionDate: epochSeconds(deletionDate), KeyState: 'PendingDeletion', PendingWindowInDays: days };
}

export async function cancelKeyDeletion(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), OWN_KEY);
  authorize(ctx, key, 'kms:CancelKeyDeletion');
  const notPending = () => new KmsError('KMSInvalidStateException', `${arnOf(key)} is not pending deletion.`);
  if (key.key_state !== 'PendingDeletion') throw notPending();
  // AWS leaves a key whose deletion was cancelled Disabled; the owner enables it deliberately.
  const changed = await ctx.store.transitionKey(key.key_id, ['PendingDeletion'], {
    key_state: 'Disabled',
    deletion_date: null,
    pending_window_days: null,
    updated_at: ctx.now,
  });
  if (!changed) throw notPending();
  return { KeyId: arnOf(key) };
}

export async function getKeyPolicy(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), OWN_KEY);
  const policyName = optionalString(input, 'PolicyName', { min: 1, max: 128 }) ?? 'default';
  if (policyName !== 'default') throw new KmsError('NotFoundException', `No such policy exists: ${policyName} (the only key policy is "default").`);
  authorize(ctx, key, 'kms:GetKeyPolicy');
  return { Policy: key.policy, PolicyName: 'default' };
}

export async function putKeyPolicy(input: Input, ctx: OperationContext) {
  const key = await resolveKey(ctx, requiredString(input, 'KeyId', { min: 1, max: 2048 }), OWN_KEY);
  const policyText = requiredString(input, 'Policy', { min: 1, max: MAX_POLICY_CHARS });
  const policyName = optionalString(input, 'PolicyName', { min: 1, max: 128 }) ?? 'default';
  if (policyName !== 'default') throw new KmsError('NotFoundException', `No such policy exists: ${policyName} (the only key policy is "default").`);
  authorize(ctx, key, 'kms:PutKeyPolicy');
  acceptPolicy(ctx, policyText, arnOf(key), optionalBoolean(input, 'BypassPolicyLockoutSafetyCheck') ?? false);
  await ctx.store.updatePolicy(key.key_id, policyText, ctx.now);
  return {};
}

async function reportCurrentState(ctx: OperationContext, key: KeyRow): Promise<never> {
  const current = await liveKey(ctx, key.key_id);
  if (!current) throw new KmsError('NotFoundException', `Key '${arnOf(key)}' does not exist`);
  requireNotPendingDeletion(current);
  throw new KmsError('KMSInvalidStateException', `${arnOf(key)} changed state concurrently; retry.`);
}

// Re-exported for the dispatcher's table.
export const keyManagementOperations = {
  CreateKey: createKey,
  DescribeKey: describeKey,
  ListKeys: listKeys,
  EnableKey: enableKey,
  DisableKey: disableKey,
  ScheduleKeyDeletion: scheduleKeyDeletion,
  CancelKeyDeletion: cancelKeyDeletion,
  GetKeyPolicy: getKeyPolicy,
  PutKeyPolicy: putKeyPolicy,
} as const;

