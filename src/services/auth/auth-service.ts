import { randomUUID } from 'node:crypto';
import type { AuditService } from '../audit/audit-service.js';
import { AppError, badRequest, forbidden, unauthorized } from '../errors.js';
import type { OrgDal } from '../orgs/org-dal.js';
import { isPermission, unknownPermissionsMessage, type Permission } from './permissions.js';
import type { TokenDal } from './token-dal.js';
import { generateToken, hashToken, sameTokenHash, tokenDisplayPrefix } from './token-format.js';

/** Who is calling: every query a request makes is scoped by `orgId`. */
export interface Caller {
  orgId: string;
  principalId: string;
  principalName: string;
  permissions: ReadonlySet<Permission>;
}

export interface CreatedToken {
  token: string;
  tokenId: string;
  prefix: string;
  principalId: string;
  orgId: string;
  permissions: Permission[];
}

export interface AuthServiceDeps {
  tokenDal: Pick<TokenDal, 'insertToken' | 'findActiveByHash'>;
  orgDal: Pick<OrgDal, 'findOrganization' | 'insertPrincipal'>;
  /** Token creation is an audit event of the token's organization (never the token itself). */
  audit?: Pick<AuditService, 'record'>;
  clock?: () => number;
}

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService({ tokenDal, orgDal, audit, clock = Date.now }: AuthServiceDeps) {
  return {
    /** Resolves a bearer token to its caller; any failure is the same 401 so tokens cannot be probed. */
    async authenticate(token: string | undefined): Promise<Caller> {
      if (!token || token.length > 512) throw unauthorized();
      const hash = hashToken(token);
      const row = await tokenDal.findActiveByHash(hash);
      if (!row || !sameTokenHash(row.token_hash, hash)) throw unauthorized('The bearer token is not valid.');
      const permissions = new Set((JSON.parse(row.permissions) as string[]).filter(isPermission));
      return { orgId: row.org_id, principalId: row.principal_id, principalName: row.principal_name, permissions };
    },

    authorize(caller: Caller, permission: Permission): void {
      if (!caller.permissions.has(permission)) throw forbidden(permission);
    },

    /** Creates a principal holding `permissions` and its first token. The token is returned once and never stored. */
    async createPrincipalWithToken(input: {
      orgId: string;
      name: string;
      kind?: 'user' | 'client';
      permissions: string[];
      token?: string;
      /** Who asked: a principal id, or `system:<component>` / `cli:<command>`. */
      createdBy?: string;
    }): Promise<CreatedToken> {
      const unknown = input.permissions.filter((p) => !isPermission(p));
      if (unknown.length) throw badRequest(unknownPermissionsMessage(unknown), { field: 'permissions', unknown });
      if (input.permissions.length === 0) throw badRequest('At least one permission is required.', { field: 'permissions' });
      const org = await orgDal.findOrganization(input.orgId);
      if (!org) throw new AppError(404, 'not.found', `Organization ${input.orgId} was not found.`);
      const now = clock();
      const principalId = randomUUID();
      const permissions = [...new Set(input.permissions)] as Permission[];
      await orgDal.insertPrincipal({
        id: principalId,
        org_id: org.id,
        name: input.name,
        kind: input.kind ?? 'client',
        permissions: JSON.stringify(permissions),
        created_at: now,
      });
      const token = input.token ?? generateToken();
      const tokenId = randomUUID();
      const prefix = tokenDisplayPrefix(token);
      await tokenDal.insertToken({
        id: tokenId,
        org_id: org.id,
        principal_id: principalId,
        token_hash: hashToken(token),
        prefix,
        created_at: now,
        revoked_at: null,
      });
      await audit?.record({
        orgId: org.id,
        principal: input.createdBy ?? 'system',
        action: 'auth.token.create',
        target: tokenId,
        outcome: 'success',
        details: { principalId, principalName: input.name, permissions, prefix },
      });
      return { token, tokenId, prefix, principalId, orgId: org.id, permissions };
    },
  };
}
