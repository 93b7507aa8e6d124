import { HEALTH_PROBED_TYPES } from '../providers/registry.js';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

/**
 * The scrape's database reads. They look across organizations on purpose and return only
 * aggregate counts: no organization id, key or conversation leaves these queries.
 */
export function createScrapeDal(db: Kysely<Database>) {
  return {
    async rewrapJobs(): Promise<{ running: number; queued: number; done: number; total: number }> {
      const rows = await db
        .selectFrom('jobs')
        .select(['state', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.sum<number>('done').as('done'), (eb) => eb.fn.sum<number>('total').as('total')])
        .where('type', '=', 'rewrap')
        .where('state', 'in', ['queued', 'running'])
        .groupBy('state')
        .execute();
      const out = { running: 0, queued: 0, done: 0, total: 0 };
      for (const r of rows) {
        if (r.state === 'running') out.running = Number(r.n);
        if (r.state === 'queued') out.queued = Number(r.n);
        out.done += Number(r.done ?? 0);
        out.total += Number(r.total ?? 0);
      }
      return out;
    },

    async keyHealth(): Promise<Record<string, number>> {
      const rows = await db
        .selectFrom('key_health as kh')
        .innerJoin('key_configurations as kc', 'kc.org_id', 'kh.org_id')
        .select(['kh.status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('kc.type', 'in', HEALTH_PROBED_TYPES)
        .groupBy('kh.status')
        .execute();
      return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    },
  };
}
