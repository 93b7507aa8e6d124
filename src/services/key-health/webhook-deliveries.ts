import type { WebhookDeliveriesTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { badRequest, conflict, notFound } from '../errors.js';
import type { KeyConfigDal } from '../keyconfig/keyconfig-dal.js';
import type { TransitionPayload } from './types.js';
import type { WebhookOutbox } from './webhook-outbox.js';
import type { WebhookOutboxDal } from './webhook-outbox-dal.js';

/** GET …/health/webhooks: one delivery as the organization sees it. */
export interface WebhookDeliveryModel {
  id: string;
  event: string;
  state: WebhookDeliveriesTable['state'];
  attempts: number;
  /** ISO 8601: when the next attempt is due (pending only). */
  nextAttemptAt?: string;
  /** The last attempt's failure: `HTTP 500`, `timeout`, `ECONNREFUSED` … */
  lastError?: string;
  createdAt: string;
  deliveredAt?: string;
  payload: TransitionPayload;
}

const STATES = ['pending', 'delivered', 'failed'] as const;

export type WebhookDeliveryService = ReturnType<typeof createWebhookDeliveryService>;

/** The organization's view of its key health webhook deliveries, and the retry of a failed one. */
export function createWebhookDeliveryService(deps: {
  dal: Pick<WebhookOutboxDal, 'listForOrg' | 'requeueFailed' | 'findForOrg'>;
  keyConfigDal: Pick<KeyConfigDal, 'findById'>;
  /** Absent when no webhook is configured: there is nothing to retry to. */
  outbox?: Pick<WebhookOutbox, 'wake'>;
  audit: Pick<AuditService, 'record'>;
  clock?: () => number;
}) {
  const clock = deps.clock ?? Date.now;

  async function ownConfig(caller: Caller, configId: string): Promise<void> {
    if (!(await deps.keyConfigDal.findById(caller.orgId, configId))) throw notFound('Key configuration');
  }

  return {
    async list(caller: Caller, configId: string, query: { state?: string; limit?: number }): Promise<{ entities: WebhookDeliveryModel[] }> {
      if (query.state !== undefined && !(STATES as readonly string[]).includes(query.state)) {
        throw badRequest(`Invalid request: state must be one of ${STATES.join(', ')}.`, { field: 'querystring.state' });
      }
      await ownConfig(caller, configId);
      const rows = await deps.dal.listForOrg(caller.orgId, { configId, state: query.state as WebhookDeliveriesTable['state'] | undefined, limit: query.limit ?? 100 });
      return { entities: rows.map(toModel) };
    },

    async retry(caller: Caller, configId: string, deliveryId: string): Promise<WebhookDeliveryModel> {
      await ownConfig(caller, configId);
      const row = await deps.dal.findForOrg(caller.orgId, deliveryId);
      if (!row || row.config_id !== configId) throw notFound('Webhook delivery');
      if (!deps.outbox) throw conflict('No key health webhook is configured (CONVAULT_WEBHOOK_URL): there is nowhere to deliver to.');
      if (row.state !== 'failed' || !(await deps.dal.requeueFailed(caller.orgId, deliveryId, clock()))) {
        throw conflict(`Only a failed delivery can be retried; this one is ${row.state}.`, { state: row.state });
      }
      await deps.audit.record({
        orgId: caller.orgId,
        principal: caller.principalId,
        action: 'keyhealth.webhook.retry',
        target: configId,
        outcome: 'success',
        details: { principalName: caller.principalName, deliveryId },
      });
      deps.outbox.wake();
      return toModel((await deps.dal.findForOrg(caller.orgId, deliveryId))!);
    },
  };
}

function toModel(row: WebhookDeliveriesTable): WebhookDeliveryModel {
  return {
    id: row.id,
    event: row.event,
    state: row.state,
    attempts: Number(row.attempts),
    ...(row.state === 'pending' ? { nextAttemptAt: new Date(Number(row.next_attempt_at)).toISOString() } : {}),
    ...(row.last_error ? { lastError: row.last_error } : {}),
    createdAt: new Date(Number(row.created_at)).toISOString(),
    ...(row.delivered_at !== null ? { deliveredAt: new Date(Number(row.delivered_at)).toISOString() } : {}),
    payload: JSON.parse(row.payload) as TransitionPayload,
  };
}
