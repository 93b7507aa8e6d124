import type { Kysely } from 'kysely';
import type { Database, OrganizationsTable, PrincipalsTable } from '../../store/schema.js';

export type OrgDal = ReturnType<typeof createOrgDal>;

export function createOrgDal(db: Kysely<Database>) {
  return {
    async insertOrganization(row: OrganizationsTable): Promise<void> {
      await db.insertInto('organizations').values(row).execute();
    },
    async findOrganization(id: string): Promise<OrganizationsTable | undefined> {
      return db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async listOrganizations(): Promise<OrganizationsTable[]> {
      return db.selectFrom('organizations').selectAll().orderBy('created_at').execute();
    },
    async insertPrincipal(row: PrincipalsTable): Promise<void> {
      await db.insertInto('principals').values(row).execute();
    },
    async findPrincipal(orgId: string, id: string): Promise<PrincipalsTable | undefined> {
      return db.selectFrom('principals').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    },
    async getMeta(key: string): Promise<string | undefined> {
      const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    },
    /** Inserts unless present; returns whether this call inserted it (first writer wins across processes). */
    async claimMeta(key: string, value: string): Promise<boolean> {
      const result = await db
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
  };
}
