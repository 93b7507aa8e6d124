import { aliasArn, validateAliasName } from '../arns.js';
import { KmsError } from '../errors.js';
import type { AliasRow } from '../key-store.js';
import { decodeMarker, encodeMarker, epochSeconds, optionalInteger, optionalString, requiredString, type Input } from './input.js';
import { authorize, liveKey, purgeExpiredKeys, requireNotPendingDeletion, resolveKey, type OperationContext } from './key-access.js';

/**
 * CreateAlias, UpdateAlias, DeleteAlias, ListAliases. Aliases live per account and region; their
 * targets are named by key id or key ARN only, and only in the caller's own account, as in AWS.
 */

const OWN_KEY = { aliases: false, crossAccount: false };

export async function createAlias(input: Input, ctx: OperationContext) {
  const aliasName = requiredString(input, 'AliasName', {});
  validateAliasName(aliasName, { forCreate: true });
  const key = await resolveKey(ctx, requiredString(input, 'TargetKeyId', { min: 1, max: 2048 }), OWN_KEY);
  authorize(ctx, key, 'kms:CreateAlias');
  requireNotPendingDeletion(key);
  const { accountId, region } = ctx.caller;
  const inserted = await ctx.store.insertAlias({
    account_id: accountId,
    region,
    alias_name: aliasName,
    target_key_id: key.key_id,
    created_at: ctx.now,
    updated_at: ctx.now,
  });
  if (!inserted) throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasArn(region, accountId, aliasName)} already exists`);
  return {};
}

export async function updateAlias(input: Input, ctx: OperationContext) {
  const aliasName = requiredString(input, 'AliasName', {});
  validateAliasName(aliasName, { forCreate: false });
  const alias = await existingAlias(ctx, aliasName);
  const newKey = await resolveKey(ctx, requiredString(input, 'TargetKeyId', { min: 1, max: 2048 }), OWN_KEY);
  // AWS wants kms:UpdateAlias on both the key the alias leaves and the key it moves to.
  const oldKey = await liveKey(ctx, alias.target_key_id);
  if (oldKey) authorize(ctx, oldKey, 'kms:UpdateAlias');
  authorize(ctx, newKey, 'kms:UpdateAlias');
  requireNotPendingDeletion(newKey);
  await ctx.store.retargetAlias(ctx.caller.accountId, ctx.caller.region, aliasName, newKey.key_id, ctx.now);
  return {};
}

export async function deleteAlias(input: Input, ctx: OperationContext) {
  const aliasName = requiredString(input, 'AliasName', {});
  validateAliasName(aliasName, { forCreate: false });
  const alias = await existingAlias(ctx, aliasName);
  const key = await liveKey(ctx, alias.target_key_id);
  if (key) authorize(ctx, key, 'kms:DeleteAlias');
  await ctx.store.deleteAlias(ctx.caller.accountId, ctx.caller.region, aliasName);
  return {};
}

export async function listAliases(input: Input, ctx: OperationContext) {
  const keyIdParam = optionalString(input, 'KeyId', { min: 1, max: 2048 });
  const limit = optionalInteger(input, 'Limit', 1, 1000) ?? 100;
  const after = decodeMarker(optionalString(input, 'Marker', { min: 1, max: 1024 }), (id) => id.startsWith('alias/'));
  const targetKeyId = keyIdParam === undefined ? undefined : (await resolveKey(ctx, keyIdParam, OWN_KEY)).key_id;
  await purgeExpiredKeys(ctx);
  const rows = await ctx.store.listAliases(ctx.caller.accountId, ctx.caller.region, { targetKeyId, afterAliasName: after, limit: limit + 1 });
  const page = rows.slice(0, limit);
  const truncated = rows.length > limit;
  return {
    Aliases: page.map(aliasEntry),
    Truncated: truncated,
    ...(truncated ? { NextMarker: encodeMarker(page[page.length - 1]!.alias_name) } : {}),
  };
}

async function existingAlias(ctx: OperationContext, aliasName: string): Promise<AliasRow> {
  const { accountId, region } = ctx.caller;
  const alias = await ctx.store.findAlias(accountId, region, aliasName);
  // An alias whose key was deleted goes with it; liveKey() purges lazily, so check the target too.
  if (!alias || !(await liveKey(ctx, alias.target_key_id))) {
    throw new KmsError('NotFoundException', `Alias ${aliasArn(region, accountId, aliasName)} is not found.`);
  }
  return alias;
}

function aliasEntry(a: AliasRow) {
  return {
    AliasName: a.alias_name,
    AliasArn: aliasArn(a.region, a.account_id, a.alias_name),
    TargetKeyId: a.target_key_id,
    CreationDate: epochSeconds(a.created_at),
    LastUpdatedDate: epochSeconds(a.updated_at),
  };
}

export const aliasOperations = {
  CreateAlias: createAlias,
  UpdateAlias: updateAlias,
  DeleteAlias: deleteAlias,
  ListAliases: listAliases,
} as const;
