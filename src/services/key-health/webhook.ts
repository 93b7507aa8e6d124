import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Key health webhooks on the wire: a JSON POST per status change, signed with HMAC-SHA256 over
 * `<timestamp>.<raw body>` (docs/KEY_HEALTH.md). One call of `post` is one attempt; retries,
 * backoff and giving up belong to the durable outbox (webhook-outbox.ts).
 */

export const SIGNATURE_HEADER = 'x-convault-signature';
export const TIMESTAMP_HEADER = 'x-convault-timestamp';
export const DELIVERY_HEADER = 'x-convault-delivery';
export const EVENT_HEADER = 'x-convault-event';
/** The delivery id again, under the name idempotent receivers commonly look for. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

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
  /** Attempts in all, the first included; then the delivery is marked failed (retryable by hand). */
  attempts: number;
  /** Delay before the second attempt; doubled each time, ±20 % jitter, capped by maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt: a receiver that has not answered by then counts as failed. */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_RETRY: WebhookRetry = { attempts: 8, baseDelayMs: 1000, maxDelayMs: 30_000, timeoutMs: 10_000 };

/** Delay before attempt number `attempt` (2, 3, …): exponential with ±20 % jitter. */
export function retryDelayMs(retry: WebhookRetry, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 2));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

export type AttemptOutcome = { ok: true } | { ok: false; reason: string; retry: boolean };

export interface WebhookPosterOptions {
  url: string;
  secret: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  nowSeconds?: () => number;
}

export type WebhookPoster = ReturnType<typeof createWebhookPoster>;

export class WebhookConfigError extends Error {}

/** Statuses worth another attempt: the receiver may answer differently later. */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export function createWebhookPoster(opts: WebhookPosterOptions) {
  let target: URL;
  try {
    target = new URL(opts.url);
  } catch {
    throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_URL: not a URL');
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_URL: must be an http(s) URL');
  if (opts.secret.length < 16) throw new WebhookConfigError('Invalid CONVAULT_WEBHOOK_SECRET: must be at least 16 characters');
  const doFetch = opts.fetch ?? fetch;
  const nowSeconds = opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_WEBHOOK_RETRY.timeoutMs;

  return {
    /** Logged and audited: the host and path only, since a query string may carry a receiver's token. */
    target: `${target.origin}${target.pathname}`,

    /** One signed attempt; `signal` aborts it (shutdown). Never throws. */
    async post(deliveryId: string, event: string, body: string, signal?: AbortSignal): Promise<AttemptOutcome> {
      const timestamp = String(nowSeconds());
      const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
      try {
        const res = await doFetch(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'convault-key-health',
            [EVENT_HEADER]: event,
            [DELIVERY_HEADER]: deliveryId,
            [IDEMPOTENCY_HEADER]: deliveryId,
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: signWebhook(opts.secret, timestamp, body),
          },
          body,
          // A signed payload is never forwarded to wherever a redirect points.
          redirect: 'manual',
          signal: AbortSignal.any(signals),
        });
        await res.arrayBuffer().catch(() => undefined); // drain, so the connection is reused
        if (res.status >= 200 && res.status < 300) return { ok: true };
        return { ok: false, reason: `HTTP ${res.status}`, retry: retryable(res.status) };
      } catch (err) {
        if (signal?.aborted) return { ok: false, reason: 'shutdown', retry: true };
        const e = err as { name?: string; code?: string; cause?: { code?: string }; message?: string };
        const reason = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.code ?? e.message ?? 'network error');
        return { ok: false, reason, retry: true };
      }
    },
  };
}
