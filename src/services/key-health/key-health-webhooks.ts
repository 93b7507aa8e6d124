import type { Kysely } from 'kysely';
import { createNamedLease } from '../../store/named-lease.js';
import type { Database } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import { KEY_HEALTH_PRINCIPAL } from './key-health-service.js';
import { silentLog, type HealthLog } from './types.js';
import { createWebhookOutbox, type OutboxSettings, type WebhookOutbox } from './webhook-outbox.js';
import { createWebhookOutboxDal } from './webhook-outbox-dal.js';
import { createWebhookPoster } from './webhook.js';

export const WEBHOOK_SENDER_LEASE = 'keyhealth.webhook-sender';

export interface KeyHealthWebhookOptions extends OutboxSettings {
  url: string;
  secret: string;
  /** Names this node's lease. */
  nodeId: string;
  audit: Pick<AuditService, 'record'>;
  log?: HealthLog;
  onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void;
  fetch?: typeof fetch;
}

/**
 * The key health webhooks of one node: signed POSTs to CONVAULT_WEBHOOK_URL through the durable
 * outbox, a delivery that ends failed recorded in the organization's audit trail.
 */
export function createKeyHealthWebhooks(db: Kysely<Database>, opts: KeyHealthWebhookOptions): WebhookOutbox {
  const log = opts.log ?? silentLog;
  const poster = createWebhookPoster({ url: opts.url, secret: opts.secret, timeoutMs: opts.retry?.timeoutMs, fetch: opts.fetch });
  return createWebhookOutbox({
    dal: createWebhookOutboxDal(db),
    lease: createNamedLease(db, WEBHOOK_SENDER_LEASE, opts.nodeId),
    poster,
    settings: opts,
    log,
    onAttempt: opts.onAttempt,
    onFailed: async (failure) => {
      await opts.audit.record({
        orgId: failure.payload.orgId,
        principal: KEY_HEALTH_PRINCIPAL,
        action: 'keyhealth.webhook',
        target: failure.payload.configurationId,
        outcome: 'failure',
        details: { deliveryId: failure.deliveryId, attempts: failure.attempts, reason: failure.reason, webhook: poster.target, from: failure.payload.from, to: failure.payload.to },
      });
    },
  });
}
