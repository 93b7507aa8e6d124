import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export type NamedLease = ReturnType<typeof createNamedLease>;

/**
 * A lease one node at a time holds on a name (e.g. the webhook sender): taken when free or
 * expired, renewed by its owner, released on shutdown. A node that dies without releasing it
 * holds it until `expires_at`, so another node takes over within one lease time.
 */
export function createNamedLease(db: Kysely<Database>, name: string, owner: string) {
  return {
    owner,
    /** Takes or renews the lease until now + ttlMs; returns whether this owner holds it. */
    async acquire(now: number, ttlMs: number): Promise<boolean> {
      await db.insertInto('leases').values({ name, owner, expires_at: now + ttlMs }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const res = await db
        .updateTable('leases')
        .set({ owner, expires_at: now + ttlMs })
        .where('name', '=', name)
        .where((eb) => eb.or([eb('owner', '=', owner), eb('expires_at', '<=', now)]))
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },

    async release(): Promise<void> {
      await db.updateTable('leases').set({ owner: null, expires_at: 0 }).where('name', '=', name).where('owner', '=', owner).execute();
    },
  };
}
