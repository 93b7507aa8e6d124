import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthLog, TransitionPayload } from './types.js';

/**
 * Key health webhooks: a JSON POST per status change, signed with HMAC-SHA256 over
 * `<timestamp>.<raw body>` (docs/KEY_HEALTH.md), retried with bounded exponential backoff in the
 * background. A delivery that finally fails is reported to `onGiveUp` (logged and audited by the
 * service), never thrown.
 */

export const SIGNATURE_HEADER = 'x-convault-signature';
export const TIMESTAMP_HEADER = 'x-convault-timestamp';
export const DELIVERY_HEADER = 'x-convault-delivery';
export const EVENT_HEADER = 'x-convault-event';

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/**
 * What a receiver does (kept here so the recipe in the docs is tested): recompute the signature
 * over the timestamp header and the raw body, compare in constant time, and refuse timestamps
 * older (or newer) than `toleranceSeconds` so a captured request cannot be replayed later.
 */
export function verifyWebhook(
  secret: string,
  headers: { signature?: string; timestamp?: string },
  rawBody: string,
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): boolean {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, rawBody), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebhookRetry {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Delay before the second attempt; doubled each time, ±20 % jitter, capped by maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt: a receiver that has not answered by then counts as failed. */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_RETRY: WebhookRetry = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, timeoutMs: 10_000 };

export interface WebhookGiveUp {
  deliveryId: string;
  payload: TransitionPayload;
  attempts: number;
  /** The last answer: `HTTP 500`, `timeout`, `ECONNREFUSED`, `shutdown` … */
  reason: string;
}

export interface WebhookSenderOptions {
  url: string;
  secret: string;
  retry?: Partial<WebhookRetry>;
  /** At most this many deliveries wait at once; more are dropped (and reported) rather than piling up. */
  maxPending?: number;
  log?: HealthLog;
  onGiveUp?: (failure: WebhookGiveUp) => Promise<void> | void;
  fetch?: typeof fetch;
  random?: () => number;
  nowSeconds?: () => number;
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

export class WebhookConfigError extends Error {}

/** Statuses worth another attempt: the receiver may answer differently later. */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export function createWebhookSender(opts: WebhookSenderOptions) {
  let target: URL;
  try {
    target = new URL(opts.url);
  } catch {
    throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_URL: not a URL');
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_URL: must be an http(s) URL');
  if (opts.secret.length < 16) throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_SECRET: must be at least 16 characters');
  const retry = { ...DEFAULT_WEBHOOK_RETRY, ...opts.retry };
  const doFetch = opts.fetch ?? fetch;
  const random = opts.random ?? Math.random;
  const nowSeconds = opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const log = opts.log;
  const maxPending = opts.maxPending ?? 1000;
  /** Logged and audited: the host and path only, since a query string may carry a receiver's token. */
  const where = `${target.origin}${target.pathname}`;
  const pending = new Set<Promise<void>>();
  const shutdown = new AbortController();

  const delayBefore = (attempt: number) => {
    const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 2));
    return Math.round(exp * (0.8 + 0.4 * random()));
  };

  async function attemptOnce(deliveryId: string, body: string): Promise<{ ok: true } | { ok: false; reason: string; retry: boolean }> {
    const timestamp = String(nowSeconds());
    const signal = AbortSignal.any([shutdown.signal, AbortSignal.timeout(retry.timeoutMs)]);
    try {
      const res = await doFetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'convault-key-health',
          [EVENT_HEADER]: 'keyhealth.transition',
          [DELIVERY_HEADER]: deliveryId,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhook(opts.secret, timestamp, body),
        },
        body,
        // A signed payload is never forwarded to wherever a redirect points.
        redirect: 'manual',
        signal,
      });
      await res.arrayBuffer().catch(() => undefined); // drain, so the connection is reused
      if (res.status >= 200 && res.status < 300) return { ok: true };
      return { ok: false, reason: `HTTP ${res.status}`, retry: retryable(res.status) };
    } catch (err) {
      if (shutdown.signal.aborted) return { ok: false, reason: 'shutdown', retry: false };
      const e = err as { name?: string; code?: string; cause?: { code?: string }; message?: string };
      const reason = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.code ?? e.message ?? 'network error');
      return { ok: false, reason, retry: true };
    }
  }

  async function idle(): Promise<void> {
    while (pending.size > 0) await Promise.all([...pending]);
  }

  async function deliver(deliveryId: string, payload: TransitionPayload): Promise<void> {
    const body = JSON.stringify(payload);
    let attempts = 0;
    let reason = '';
    for (;;) {
      if (attempts > 0) {
        try {
          await sleep(delayBefore(attempts + 1), undefined, { signal: shutdown.signal, ref: false });
        } catch {
          reason = 'shutdown';
          break;
        }
      }
      attempts++;
      const outcome = await attemptOnce(deliveryId, body);
      if (outcome.ok) {
        if (attempts > 1) log?.info({ deliveryId, attempts, webhook: where }, 'key health webhook delivered after retries');
        return;
      }
      reason = outcome.reason;
      if (!outcome.retry || attempts >= retry.attempts) break;
      log?.warn({ deliveryId, attempt: attempts, reason, webhook: where }, 'key health webhook attempt failed; retrying');
    }
    log?.error({ deliveryId, attempts, reason, webhook: where, orgId: payload.orgId, to: payload.to }, 'key health webhook not delivered');
    await opts.onGiveUp?.({ deliveryId, payload, attempts, reason });
  }

  return {
    /** Where deliveries go, without query string (for logs and audit details). */
    target: where,

    /** Queues a delivery and returns at once; the id is sent as X-Convault-Delivery on every attempt. */
    send(payload: TransitionPayload): string {
      const deliveryId = randomUUID();
      const run = (async () => {
        if (shutdown.signal.aborted || pending.size >= maxPending) {
          const reason = shutdown.signal.aborted ? 'shutdown' : `more than ${maxPending} deliveries pending`;
          log?.error({ deliveryId, reason, webhook: where, orgId: payload.orgId }, 'key health webhook dropped');
          await opts.onGiveUp?.({ deliveryId, payload, attempts: 0, reason });
          return;
        }
        await deliver(deliveryId, payload);
      })().catch((err) => log?.error({ deliveryId, err: (err as Error).message }, 'key health webhook failed unexpectedly'));
      pending.add(run);
      void run.finally(() => pending.delete(run));
      return deliveryId;
    },

    /** Resolves when every queued delivery has been delivered or given up. */
    idle,

    /** Stops waiting between retries and aborts attempts in flight; each unfinished delivery is given up as `shutdown`. */
    async close(): Promise<void> {
      shutdown.abort();
      await idle();
    },
  };
}
