import type { Kysely } from 'kysely';
import type { ApiTokensTable, Database } from '../../store/schema.js';

export type TokenDal = ReturnType<typeof createTokenDal>;

export function createTokenDal(db: Kysely<Database>) {
  return {
    async insertToken(row: ApiTokensTable): Promise<void> {
      await db.insertInto('api_tokens').values(row).execute();
    },
    /** The token row and its principal, looked up by the token's hash (the index never sees the token). */
    async findActiveByHash(tokenHash: string): Promise<(ApiTokensTable & { permissions: string; principal_name: string }) | undefined> {
      return db
        .selectFrom('api_tokens')
        .innerJoin('principals', 'principals.id', 'api_tokens.principal_id')
        .selectAll('api_tokens')
        .select(['principals.permissions as permissions', 'principals.name as principal_name'])
        .where('api_tokens.token_hash', '=', tokenHash)
        .where('api_tokens.revoked_at', 'is', null)
        .executeTakeFirst();
    },
  };
}
