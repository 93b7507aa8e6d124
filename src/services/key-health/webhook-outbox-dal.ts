import type { Kysely } from 'kysely';
import type { Database, WebhookDeliveriesTable } from '../../store/schema.js';

export type WebhookOutboxDal = ReturnType<typeof createWebhookOutboxDal>;

/**
 * Queries of the webhook outbox. The sender's (`due`, `mark*`, `stats`) look across organizations
 * on purpose: one node sends every organization's deliveries. The API's take the organization id.
 */
export function createWebhookOutboxDal(db: Kysely<Database>) {
  return {
    /** Called with the transaction that records the transition, so both commit or neither. */
    async insert(row: WebhookDeliveriesTable, executor: Kysely<Database> = db): Promise<void> {
      await executor.insertInto('webhook_deliveries').values(row).execute();
    },

    async due(now: number, limit: number): Promise<WebhookDeliveriesTable[]> {
      return db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('state', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(limit)
        .execute();
    },

    /** When the earliest pending delivery is due (undefined when none is pending). */
    async nextDueAt(): Promise<number | undefined> {
      const row = await db.selectFrom('webhook_deliveries').select((eb) => eb.fn.min('next_attempt_at').as('at')).where('state', '=', 'pending').executeTakeFirst();
      return row?.at == null ? undefined : Number(row.at);
    },

    async markDelivered(id: string, attempts: number, now: number): Promise<void> {
      await db.updateTable('webhook_deliveries').set({ state: 'delivered', attempts, last_error: null, delivered_at: now, updated_at: now }).where('id', '=', id).execute();
    },

    async markRetry(id: string, attempts: number, nextAttemptAt: number, error: string, now: number): Promise<void> {
      await db.updateTable('webhook_deliveries').set({ attempts, next_attempt_at: nextAttemptAt, last_error: error, updated_at: now }).where('id', '=', id).execute();
    },

    async markFailed(id: string, attempts: number, error: string, now: number): Promise<void> {
      await db.updateTable('webhook_deliveries').set({ state: 'failed', attempts, last_error: error, updated_at: now }).where('id', '=', id).execute();
    },

    async listForOrg(orgId: string, q: { configId: string; state?: WebhookDeliveriesTable['state']; limit: number }): Promise<WebhookDeliveriesTable[]> {
      let query = db.selectFrom('webhook_deliveries').selectAll().where('org_id', '=', orgId).where('config_id', '=', q.configId);
      if (q.state) query = query.where('state', '=', q.state);
      return query.orderBy('created_at', 'desc').orderBy('id').limit(q.limit).execute();
    },

    async findForOrg(orgId: string, id: string): Promise<WebhookDeliveriesTable | undefined> {
      return db.selectFrom('webhook_deliveries').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    },

    /** A failed delivery of the organization back to pending, due now, with a fresh attempt budget. */
    async requeueFailed(orgId: string, id: string, now: number): Promise<boolean> {
      const res = await db
        .updateTable('webhook_deliveries')
        .set({ state: 'pending', attempts: 0, next_attempt_at: now, updated_at: now })
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .where('state', '=', 'failed')
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    },

    /** Aggregates for /metrics. */
    async stats(now: number): Promise<{ pending: number; failed: number; oldestPendingAgeSeconds: number }> {
      const rows = await db
        .selectFrom('webhook_deliveries')
        .select(['state', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.min('created_at').as('oldest')])
        .where('state', 'in', ['pending', 'failed'])
        .groupBy('state')
        .execute();
      const pending = rows.find((r) => r.state === 'pending');
      const failed = rows.find((r) => r.state === 'failed');
      return {
        pending: Number(pending?.n ?? 0),
        failed: Number(failed?.n ?? 0),
        oldestPendingAgeSeconds: pending?.oldest == null ? 0 : Math.max(0, (now - Number(pending.oldest)) / 1000),
      };
    },
  };
}
