import type { OrgDal } from '../orgs/org-dal.js';
import { forbidden, unauthorized } from '../errors.js';
import { isPermission, PLATFORM_PERMISSIONS, type Permission } from './permissions.js';
import type { TokenDal } from './token-dal.js';
import { createTokenCache } from './token-cache.js';
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
  /** How long a verified token is believed without asking the database again (0-5000 ms; 0: every request asks). */
  tokenCacheMaxAgeMs?: number;
  clock?: () => number;
}

export type AuthService = ReturnType<typeof createAuthService>;

/** The bootstrap organization is the platform organization; its id is a meta row written once. */
export function platformOrgIdFrom(orgDal: Pick<OrgDal, 'getMeta'>): () => Promise<string | undefined> {
  let known: string | undefined;
  return async () => (known ??= await orgDal.getMeta('bootstrap.organization'));
}

export function createAuthService({ tokenDal, platformOrgId, tokenCacheMaxAgeMs = 0, clock = Date.now }: AuthServiceDeps) {
  // A cached caller also keeps its token's expiry: the cache may shorten how long a revocation takes
  // to apply everywhere (its bound), never extend a token past the instant it expires.
  const verified = createTokenCache<{ caller: Caller; expiresAt: number | null }>({ maxAgeMs: tokenCacheMaxAgeMs, clock });
  return {
    /**
     * Resolves a bearer token to its caller: only a token that is neither revoked nor expired now,
     * read from the database. Any failure is the same 401 so tokens cannot be probed.
     */
    async authenticate(token: string | undefined): Promise<Caller> {
      if (!token || token.length > 512) throw unauthorized();
      const hash = hashToken(token);
      const cached = verified.get(hash);
      if (cached && (cached.expiresAt === null || cached.expiresAt > clock())) return cached.caller;
      const row = await tokenDal.findActiveByHash(hash, clock());
      if (!row || !sameTokenHash(row.token_hash, hash)) throw unauthorized();
      const permissions = new Set((JSON.parse(row.permissions) as string[]).filter(isPermission));
      if ([...permissions].some((p) => PLATFORM_PERMISSIONS.has(p)) && row.org_id !== (await platformOrgId())) {
        for (const p of PLATFORM_PERMISSIONS) permissions.delete(p);
      }
      const caller: Caller = Object.freeze({ orgId: row.org_id, principalId: row.principal_id, principalName: row.principal_name, permissions });
      verified.set(hash, { caller, expiresAt: row.expires_at ?? null });
      return caller;
    },

    authorize(caller: Caller, permission: Permission): void {
      if (!caller.permissions.has(permission)) throw forbidden(permission);
    },
  };
}
