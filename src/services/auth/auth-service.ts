import type { OrgDal } from '../orgs/org-dal.js';
import { forbidden, unauthorized } from '../errors.js';
import { isPermission, PLATFORM_PERMISSIONS, type Permission } from './permissions.js';
import type { TokenDal } from './token-dal.js';
import { hashToken, sameTokenHash } from './token-format.js';

/** Who is calling: every query a request makes is scoped by `orgId`. */
export interface Caller {
  orgId: string;
  principalId: string;
  principalName: string;
  permissions: ReadonlySet<Permission>;
}

export interface AuthServiceDeps {
  tokenDal: Pick<TokenDal, 'findActiveByHash'>;
  /** The platform organization's id (see PLATFORM_PERMISSIONS). */
  platformOrgId: () => Promise<string | undefined>;
  clock?: () => number;
}

export type AuthService = ReturnType<typeof createAuthService>;

/** The bootstrap organization is the platform organization; its id is a meta row written once. */
export function platformOrgIdFrom(orgDal: Pick<OrgDal, 'getMeta'>): () => Promise<string | undefined> {
  let known: string | undefined;
  return async () => (known ??= await orgDal.getMeta('bootstrap.organization'));
}

export function createAuthService({ tokenDal, platformOrgId, clock = Date.now }: AuthServiceDeps) {
  return {
    /**
     * Resolves a bearer token to its caller: only a token that is neither revoked nor expired now,
     * read from the database. Any failure is the same 401 so tokens cannot be probed.
     */
    async authenticate(token: string | undefined): Promise<Caller> {
      if (!token || token.length > 512) throw unauthorized();
      const hash = hashToken(token);
      const row = await tokenDal.findActiveByHash(hash, clock());
      if (!row || !sameTokenHash(row.token_hash, hash)) throw unauthorized();
      const permissions = new Set((JSON.parse(row.permissions) as string[]).filter(isPermission));
      if ([...permissions].some((p) => PLATFORM_PERMISSIONS.has(p)) && row.org_id !== (await platformOrgId())) {
        for (const p of PLATFORM_PERMISSIONS) permissions.delete(p);
      }
      return { orgId: row.org_id, principalId: row.principal_id, principalName: row.principal_name, permissions };
    },

    authorize(caller: Caller, permission: Permission): void {
      if (!caller.permissions.has(permission)) throw forbidden(permission);
    },
  };
}
