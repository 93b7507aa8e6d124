import type { Kysely } from 'kysely';
import type { ApiTokensTable, Database } from '../../store/schema.js';

export type TokenDal = ReturnType<typeof createTokenDal>;

export interface TokenListRow extends ApiTokensTable {
  principal_name: string;
  permissions: string;
}

export function createTokenDal(db: Kysely<Database>) {
  /** Token rows with their principal's name and permissions. */
  const withPrincipal = () =>
    db
      .selectFrom('api_tokens')
      .innerJoin('principals', 'principals.id', 'api_tokens.principal_id')
      .selectAll('api_tokens')
      .select(['principals.permissions as permissions', 'principals.name as principal_name']);

  return {
    async insertToken(row: ApiTokensTable): Promise<void> {
      await db.insertInto('api_tokens').values(row).execute();
    },
    /**
     * The token row and its principal, looked up by the token's hash (the index never sees the
     * token) — only while it is neither revoked nor expired at `now`.
     */
    async findActiveByHash(tokenHash: string, now: number): Promise<(ApiTokensTable & { permissions: string; principal_name: string }) | undefined> {
      return withPrincipal()
        .where('api_tokens.token_hash', '=', tokenHash)
        .where('api_tokens.revoked_at', 'is', null)
        .where((eb) => eb.or([eb('api_tokens.expires_at', 'is', null), eb('api_tokens.expires_at', '>', now)]))
        .executeTakeFirst();
    },
    async listTokens(orgId: string): Promise<TokenListRow[]> {
      return withPrincipal()
        .where('api_tokens.org_id', '=', orgId)
        .orderBy('api_tokens.created_at', 'desc')
        .orderBy('api_tokens.id')
        .execute();
    },
    async findToken(orgId: string, id: string): Promise<TokenListRow | undefined> {
      return withPrincipal()
        .where('api_tokens.org_id', '=', orgId)
        .where('api_tokens.id', '=', id)
        .executeTakeFirst();
    },
    /** Revokes once: false when the token was already revoked (or is not this org's). */
    async revokeToken(orgId: string, id: string, now: number): Promise<boolean> {
      const result = await db
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}
