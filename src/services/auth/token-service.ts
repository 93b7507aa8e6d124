import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { AuditEventInput } from '../audit/types.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { parseInstant } from '../instant.js';
import { createOrgDal } from '../orgs/org-dal.js';
import { isPermission, PLATFORM_PERMISSIONS, unknownPermissionsMessage, type Permission } from './permissions.js';
import { validatePrincipalName } from './principal-name.js';
import { createTokenDal, type TokenListRow } from './token-dal.js';
import { generateToken, hashToken, tokenDisplayPrefix } from './token-format.js';

/**
 * The token lifecycle: create (principal + token + audit in one transaction), list (never the
 * secret), revoke, rotate, with an optional expiry. Revocation and expiry are database state that
 * every authentication checks (token-dal findActiveByHash), so they hold on every node at once.
 */

/** Who acts: an API caller (its org and permissions bound what it may grant), or the system/CLI. */
export interface TokenActor {
  principal: string;
  /** The acting principal's organization; absent for the operator's CLI and the bootstrap. */
  orgId?: string;
  /** Present for API callers: they may grant only permissions they hold themselves. */
  permissions?: ReadonlySet<Permission>;
}

export interface CreatedToken {
  token: string;
  /** The token's id (for list, revoke, rotate). */
  id: string;
  /** Same as `id`; kept for clients of earlier versions. */
  tokenId: string;
  prefix: string;
  principalId: string;
  orgId: string;
  permissions: Permission[];
  expiresAt?: string;
}

export interface TokenModel {
  id: string;
  orgId: string;
  principalId: string;
  name: string;
  prefix: string;
  permissions: Permission[];
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  state: 'active' | 'revoked' | 'expired';
}

export interface CreateTokenInput {
  orgId: string;
  name: string;
  kind?: 'user' | 'client';
  permissions: string[];
  /** RFC 3339 instant in the future; absent → no expiry. */
  expiresAt?: string;
  /** The exact secret (CONVAULT_BOOTSTRAP_TOKEN); absent → random. */
  token?: string;
}

export interface TokenServiceDeps {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  /** The platform organization (the bootstrap one): the only one whose principals may hold platform permissions. */
  platformOrgId: () => Promise<string | undefined>;
  clock?: () => number;
}

export type TokenService = ReturnType<typeof createTokenService>;

export function createTokenService({ db, audit, platformOrgId, clock = Date.now }: TokenServiceDeps) {
  const inTransaction = <T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> => (db.isTransaction ? fn(db) : db.transaction().execute(fn));

  /** Audit events of one change, in a fixed order of organizations so concurrent changes lock chain heads alike. */
  async function recordAll(trx: Kysely<Database>, events: AuditEventInput[]): Promise<void> {
    for (const event of [...events].sort((a, b) => (a.orgId < b.orgId ? -1 : a.orgId > b.orgId ? 1 : 0))) await audit.record(event, trx);
  }

  /** The event in the token's organization, and — when the actor is of another one — its mirror there. */
  function eventsFor(actor: TokenActor, orgId: string, action: string, target: string, details: Record<string, unknown>): AuditEventInput[] {
    const events: AuditEventInput[] = [{ orgId, principal: actor.principal, action, target, outcome: 'success', details }];
    if (actor.orgId && actor.orgId !== orgId) {
      events.push({ orgId: actor.orgId, principal: actor.principal, action: `admin.${action}`, target, outcome: 'success', details: { ...details, organizationId: orgId } });
    }
    return events;
  }

  async function checkGrant(actor: TokenActor, orgId: string, permissions: string[]): Promise<Permission[]> {
    const unknown = permissions.filter((p) => !isPermission(p));
    if (unknown.length) throw badRequest(unknownPermissionsMessage(unknown), { field: 'permissions', unknown });
    if (permissions.length === 0) throw badRequest('At least one permission is required.', { field: 'permissions' });
    const wanted = [...new Set(permissions)] as Permission[];
    const platformOnly = wanted.filter((p) => PLATFORM_PERMISSIONS.has(p));
    if (platformOnly.length > 0 && orgId !== (await platformOrgId())) {
      throw new AppError(
        403,
        'platform.permission',
        `${platformOnly.join(', ')} is a platform permission: only principals of the platform organization can hold it.`,
        undefined,
        { field: 'permissions', platformPermissions: platformOnly },
      );
    }
    if (actor.permissions) {
      const notHeld = wanted.filter((p) => !actor.permissions!.has(p));
      if (notHeld.length) {
        throw new AppError(403, 'missing.permissions', `A token can be given only permissions its creator holds; this one lacks ${notHeld.join(', ')}.`, undefined, {
          missingPermissions: notHeld,
        });
      }
    }
    return wanted;
  }

  function parseExpiry(value: string | undefined, now: number): number | null {
    if (value === undefined) return null;
    const at = parseInstant(value, 'expiresAt');
    if (at <= now) throw badRequest('expiresAt must be in the future.', { field: 'expiresAt' });
    return at;
  }

  return {
    async create(actor: TokenActor, input: CreateTokenInput): Promise<CreatedToken> {
      const name = validatePrincipalName(input.name);
      const permissions = await checkGrant(actor, input.orgId, input.permissions);
      const now = clock();
      const expiresAt = parseExpiry(input.expiresAt, now);
      return inTransaction(async (trx) => {
        const orgDal = createOrgDal(trx);
        const org = await orgDal.findOrganization(input.orgId);
        if (!org) throw notFound(`Organization ${input.orgId}`);
        const principalId = randomUUID();
        await orgDal.insertPrincipal({ id: principalId, org_id: org.id, name, kind: input.kind ?? 'client', permissions: JSON.stringify(permissions), created_at: now });
        const token = input.token ?? generateToken();
        const id = randomUUID();
        const prefix = tokenDisplayPrefix(token);
        await createTokenDal(trx).insertToken({ id, org_id: org.id, principal_id: principalId, token_hash: hashToken(token), prefix, created_at: now, revoked_at: null, expires_at: expiresAt });
        const details = { principalId, principalName: name, permissions, prefix, ...(expiresAt !== null ? { expiresAt: iso(expiresAt) } : {}) };
        await recordAll(trx, eventsFor(actor, org.id, 'auth.token.create', id, details));
        return { token, id, tokenId: id, prefix, principalId, orgId: org.id, permissions, ...(expiresAt !== null ? { expiresAt: iso(expiresAt) } : {}) };
      });
    },

    async list(orgId: string): Promise<TokenModel[]> {
      const now = clock();
      return (await createTokenDal(db).listTokens(orgId)).map((row) => toModel(row, now));
    },

    /** Revokes the token; every node refuses it within the token cache bound (CONVAULT_TOKEN_CACHE_MAX_AGE_MS). Revoking a revoked token changes nothing. */
    async revoke(actor: TokenActor, orgId: string, id: string): Promise<TokenModel> {
      return inTransaction(async (trx) => {
        const dal = createTokenDal(trx);
        const now = clock();
        if (await dal.revokeToken(orgId, id, now)) {
          const row = (await dal.findToken(orgId, id))!;
          await recordAll(trx, eventsFor(actor, orgId, 'auth.token.revoke', id, { principalId: row.principal_id, principalName: row.principal_name, prefix: row.prefix }));
        }
        const row = await dal.findToken(orgId, id);
        if (!row) throw notFound('Token');
        return toModel(row, now);
      });
    },

    /** A new secret for the same principal; the old token is revoked in the same transaction. */
    async rotate(actor: TokenActor, orgId: string, id: string, input: { expiresAt?: string } = {}): Promise<CreatedToken> {
      const now = clock();
      const newExpiry = parseExpiry(input.expiresAt, now);
      return inTransaction(async (trx) => {
        const dal = createTokenDal(trx);
        const old = await dal.findToken(orgId, id);
        if (!old) throw notFound('Token');
        if (old.revoked_at !== null) throw conflict('The token is revoked; create a new one instead.', { tokenId: id });
        if (old.expires_at !== null && old.expires_at <= now) throw conflict('The token has expired; create a new one instead.', { tokenId: id });
        if (!(await dal.revokeToken(orgId, id, now))) throw conflict('The token was revoked meanwhile.', { tokenId: id });
        const token = generateToken();
        const newId = randomUUID();
        const prefix = tokenDisplayPrefix(token);
        const expiresAt = newExpiry ?? old.expires_at;
        await dal.insertToken({ id: newId, org_id: orgId, principal_id: old.principal_id, token_hash: hashToken(token), prefix, created_at: now, revoked_at: null, expires_at: expiresAt });
        await recordAll(
          trx,
          eventsFor(actor, orgId, 'auth.token.rotate', newId, { replaces: id, principalId: old.principal_id, principalName: old.principal_name, prefix }),
        );
        const permissions = (JSON.parse(old.permissions) as string[]).filter(isPermission);
        return { token, id: newId, tokenId: newId, prefix, principalId: old.principal_id, orgId, permissions, ...(expiresAt !== null ? { expiresAt: iso(expiresAt) } : {}) };
      });
    },
  };
}

function toModel(row: TokenListRow, now: number): TokenModel {
  const state = row.revoked_at !== null ? 'revoked' : row.expires_at !== null && row.expires_at <= now ? 'expired' : 'active';
  return {
    id: row.id,
    orgId: row.org_id,
    principalId: row.principal_id,
    name: row.principal_name,
    prefix: row.prefix,
    permissions: (JSON.parse(row.permissions) as string[]).filter(isPermission),
    createdAt: iso(row.created_at),
    ...(row.expires_at !== null ? { expiresAt: iso(row.expires_at) } : {}),
    ...(row.revoked_at !== null ? { revokedAt: iso(row.revoked_at) } : {}),
    state,
  };
}

function iso(ms: number): string {
  return new Date(Number(ms)).toISOString();
}
