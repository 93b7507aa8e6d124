import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { NamedLease } from '../../store/named-lease.js';
import type { Database, WebhookDeliveriesTable } from '../../store/schema.js';
import { silentLog, type HealthLog, type TransitionPayload } from './types.js';
import type { WebhookOutboxDal } from './webhook-outbox-dal.js';
import { DEFAULT_WEBHOOK_RETRY, retryDelayMs, type AttemptOutcome, type WebhookRetry } from './webhook.js';

/**
 * The durable webhook outbox. `enqueue` writes a delivery in the caller's transaction (the one
 * recording the transition); a sender loop on every node tries to hold one lease, and the node
 * that holds it POSTs due deliveries, one at a time, recording each attempt and the time of the
 * next one in the row. So retries and their backoff survive restarts and crashes (a crash during
 * an attempt repeats it: delivery is at least once, and the delivery id is the idempotency key),
 * and a delivery that keeps failing ends as `failed`, visible and retryable through the API.
 */

export interface OutboxSettings {
  retry?: Partial<WebhookRetry>;
  /** How often a node checks for due deliveries and renews or takes the lease (default 1 s). */
  pollMs?: number;
  /** How long the lease lasts without renewal: a crashed sender is replaced within it (default 10 s). */
  leaseMs?: number;
  /** Due deliveries read per pass (default 50). */
  batch?: number;
}

export interface DeliveryFailure {
  deliveryId: string;
  payload: TransitionPayload;
  attempts: number;
  reason: string;
}

export interface WebhookOutboxDeps {
  dal: WebhookOutboxDal;
  lease: NamedLease;
  poster: { target: string; post(deliveryId: string, event: string, body: string, signal?: AbortSignal): Promise<AttemptOutcome> };
  settings?: OutboxSettings;
  /** A delivery marked failed (logged here; the service audits it). Never throws into the sender. */
  onFailed?: (failure: DeliveryFailure) => Promise<void> | void;
  /** Each attempt's outcome, for metrics. */
  onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void;
  log?: HealthLog;
  clock?: () => number;
  random?: () => number;
}

export type WebhookOutbox = ReturnType<typeof createWebhookOutbox>;

export function createWebhookOutbox(deps: WebhookOutboxDeps) {
  const { dal, lease, poster } = deps;
  const retry = { ...DEFAULT_WEBHOOK_RETRY, ...deps.settings?.retry };
  const pollMs = deps.settings?.pollMs ?? 1000;
  const leaseMs = deps.settings?.leaseMs ?? 10_000;
  const batch = deps.settings?.batch ?? 50;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const log = deps.log ?? silentLog;
  const shutdown = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let started = false;

  async function attempt(row: WebhookDeliveriesTable): Promise<void> {
    const attempts = Number(row.attempts) + 1;
    const outcome = await poster.post(row.id, row.event, row.payload, shutdown.signal);
    const now = clock();
    // Shutdown cut the attempt short: the row stays as it was and is sent again after the restart.
    if (!outcome.ok && outcome.reason === 'shutdown' && shutdown.signal.aborted) return;
    if (outcome.ok) {
      await dal.markDelivered(row.id, attempts, now);
      deps.onAttempt?.('delivered');
      if (attempts > 1) log.info({ deliveryId: row.id, attempts, webhook: poster.target }, 'key health webhook delivered after retries');
      return;
    }
    if (outcome.retry && attempts < retry.attempts) {
      await dal.markRetry(row.id, attempts, now + retryDelayMs(retry, attempts + 1, random), outcome.reason, now);
      deps.onAttempt?.('retry');
      log.warn({ deliveryId: row.id, attempt: attempts, reason: outcome.reason, webhook: poster.target }, 'key health webhook attempt failed; retrying');
      return;
    }
    await dal.markFailed(row.id, attempts, outcome.reason, now);
    deps.onAttempt?.('failed');
    const payload = JSON.parse(row.payload) as TransitionPayload;
    log.error({ deliveryId: row.id, attempts, reason: outcome.reason, webhook: poster.target, orgId: row.org_id, to: payload.to }, 'key health webhook not delivered');
    try {
      await deps.onFailed?.({ deliveryId: row.id, payload, attempts, reason: outcome.reason });
    } catch (err) {
      log.error({ deliveryId: row.id, err: (err as Error).message }, 'key health: could not record an undelivered webhook');
    }
  }

  /** One pass: holds (or takes) the lease, then sends what is due. Returns how many it attempted. */
  async function pass(): Promise<number> {
    if (shutdown.signal.aborted) return 0;
    if (!(await lease.acquire(clock(), leaseMs))) return 0;
    let attempted = 0;
    for (;;) {
      const due = await dal.due(clock(), batch);
      for (const row of due) {
        if (shutdown.signal.aborted) return attempted;
        await attempt(row);
        attempted++;
      }
      if (due.length < batch) return attempted;
      // A long batch: keep the lease ours before reading the next one.
      if (!(await lease.acquire(clock(), leaseMs))) return attempted;
    }
  }

  /** Runs a pass unless one is running (then waits for that one). */
  function runPass(): Promise<number> {
    if (!running) {
      running = pass()
        .catch((err) => {
          log.warn({ err: (err as Error).message }, 'key health webhook sender pass failed');
          return 0;
        })
        .finally(() => {
          running = undefined;
        });
    }
    return running;
  }

  function schedule(delayMs: number): void {
    if (shutdown.signal.aborted || !started) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void runPass().finally(() => schedule(pollMs));
    }, delayMs);
    timer.unref();
  }

  return {
    /** Writes a delivery of `payload` with `executor` (the transition's transaction); returns its id. */
    async enqueue(payload: TransitionPayload, executor: Kysely<Database>): Promise<string> {
      const id = randomUUID();
      const now = clock();
      await dal.insert(
        {
          id,
          org_id: payload.orgId,
          config_id: payload.configurationId,
          event: payload.event,
          payload: JSON.stringify(payload),
          state: 'pending',
          attempts: 0,
          next_attempt_at: now,
          last_error: null,
          created_at: now,
          updated_at: now,
          delivered_at: null,
        },
        executor,
      );
      return id;
    },

    /** Call after the enqueuing transaction committed: sends soon instead of at the next poll. */
    wake(): void {
      schedule(0);
    },

    start(): void {
      if (started || shutdown.signal.aborted) return;
      started = true;
      schedule(Math.floor(random() * pollMs));
    },

    /**
     * Sends until nothing pending is left (waiting out backoff delays), or `timeoutMs` passes.
     * For tests and tools; the loop of `start` is what runs in production.
     */
    async drain(timeoutMs = 30_000): Promise<void> {
      const deadline = clock() + timeoutMs;
      for (;;) {
        await runPass();
        const next = await dal.nextDueAt();
        if (next === undefined || clock() > deadline || shutdown.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, Math.min(250, Math.max(1, next - clock()))));
      }
    },

    /** Stops the loop, aborts an attempt in flight (its delivery stays pending) and hands the lease back. */
    async stop(): Promise<void> {
      shutdown.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
      await lease.release().catch(() => undefined);
    },

    target: poster.target,
  };
}
