import { sql } from 'kysely';
import type { DialectMigration } from '../migrate.js';

/**
 * At most one active (queued or running) job per organization and type, enforced by the database:
 * two rewrap starts racing on one or two nodes both saw "no active job" and both inserted one. The
 * partial unique index makes the second insert a conflict, which the service answers with the
 * winner's job, as it answers a start while a job is under way. Same statement on SQLite and
 * PostgreSQL.
 *
 * A database written before this migration may already hold such duplicates. They are resolved
 * rather than failing the upgrade: the newest active job of each organization (the one the API
 * shows and a new start resumes) stays; the older ones end as cancelled, their lease released, so
 * a node still running one stops at its next heartbeat. Nothing is lost: every data key a cancelled
 * job moved stays moved (each swap is compare-and-set), and the job that stays moves the rest.
 */
export const rewrapSingleActive: DialectMigration = () => ({
  async up(db) {
    await sql`
      update jobs
         set state = 'cancelled', finished_at = ${Date.now()}, lease_owner = null, lease_expires_at = null, cancel_requested = 1
       where state in ('queued', 'running')
         and exists (
           select 1 from jobs as newer
            where newer.org_id = jobs.org_id
              and newer.type = jobs.type
              and newer.state in ('queued', 'running')
              and (newer.created_at > jobs.created_at or (newer.created_at = jobs.created_at and newer.id > jobs.id))
         )`.execute(db);
    await sql`create unique index jobs_one_active_uq on jobs (org_id, type) where state in ('queued', 'running')`.execute(db);
  },
});
