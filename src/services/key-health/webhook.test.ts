import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransitionPayload } from './types.js';
import { createWebhookPoster, retryDelayMs, signWebhook, verifyWebhook } from './webhook.js';

const SECRET = 'a-webhook-secret-of-some-length';
const payload: TransitionPayload = {
  event: 'keyhealth.transition',
  orgId: 'org-1',
  configurationId: 'kc-1',
  from: 'ok',
  to: 'failed',
  checkedAt: '2030-01-01T00:00:00.000Z',
  lastError: { message: 'The KMS key is disabled', code: 'customer.key.error', errorType: 'CustomerKeyUnavailable' },
};

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 answering each request with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[]) {
  const received: Received[] = [];
  let waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)]!;
      res.writeHead(status, status >= 300 && status < 400 ? { location: 'http://127.0.0.1:1/elsewhere' } : {}).end();
      for (const w of waiters) w();
      waiters = [];
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/convault?token=receiver-secret`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function setup(statuses: number[]) {
  const r = await receiver(statuses);
  closers.push(r.close);
  return { r, poster: createWebhookPoster({ url: r.url, secret: SECRET, timeoutMs: 2000 }) };
}

describe('webhook signatures', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256; verification refuses a changed body, another secret, an old timestamp', () => {
    const body = JSON.stringify(payload);
    const ts = '1900000000';
    const sig = signWebhook(SECRET, ts, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifyWebhook(SECRET, { signature: sig, timestamp: ts }, body, { nowSeconds: 1900000010 })).toBe(true);
    expect(verifyWebhook(SECRET, { signature: sig, timestamp: ts }, body.replace('failed', 'ok'), { nowSeconds: 1900000010 })).toBe(false);
    expect(verifyWebhook('another-secret-of-some-length', { signature: sig, timestamp: ts }, body, { nowSeconds: 1900000010 })).toBe(false);
    expect(verifyWebhook(SECRET, { signature: sig, timestamp: '1900000001' }, body, { nowSeconds: 1900000010 })).toBe(false); // timestamp is signed
    expect(verifyWebhook(SECRET, { signature: sig, timestamp: ts }, body, { nowSeconds: 1900000000 + 301 })).toBe(false); // replayed later
    expect(verifyWebhook(SECRET, { timestamp: ts }, body)).toBe(false);
  });

  it('refuses a secret shorter than 16 characters and a URL that is not http(s)', () => {
    expect(() => createWebhookPoster({ url: 'http://127.0.0.1/x', secret: 'short' })).toThrow(/at least 16/);
    expect(() => createWebhookPoster({ url: 'ftp://127.0.0.1/x', secret: SECRET })).toThrow(/http\(s\)/);
  });
});

describe('one webhook attempt', () => {
  it('is a signed JSON POST with the event, delivery id (also Idempotency-Key) and timestamp headers', async () => {
    const { r, poster } = await setup([204]);
    const body = JSON.stringify(payload);
    expect(await poster.post('delivery-1', 'keyhealth.transition', body)).toEqual({ ok: true });
    expect(r.received).toHaveLength(1);
    const [got] = r.received;
    expect(JSON.parse(got!.body)).toEqual(payload);
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers['x-convault-event']).toBe('keyhealth.transition');
    expect(got!.headers['x-convault-delivery']).toBe('delivery-1');
    expect(got!.headers['idempotency-key']).toBe('delivery-1');
    const headers = { signature: got!.headers['x-convault-signature'] as string, timestamp: got!.headers['x-convault-timestamp'] as string };
    expect(verifyWebhook(SECRET, headers, got!.body)).toBe(true);
    expect(poster.target).not.toContain('receiver-secret'); // the query string never reaches logs or the audit trail
  });

  it('says whether another attempt may help: 5xx and 429 yes, a refusal (4xx) or a redirect (not followed) no', async () => {
    const body = JSON.stringify(payload);
    for (const [status, retry] of [[500, true], [503, true], [429, true], [401, false], [404, false], [302, false]] as const) {
      const { r, poster } = await setup([status]);
      expect(await poster.post('d', 'keyhealth.transition', body)).toEqual({ ok: false, reason: `HTTP ${status}`, retry });
      expect(r.received).toHaveLength(1);
    }
  });

  it('an unreachable receiver is worth retrying and names the network error; an aborted attempt says shutdown', async () => {
    const r = await receiver([200]);
    await r.close(); // nothing listens on that port any more
    const poster = createWebhookPoster({ url: r.url, secret: SECRET, timeoutMs: 2000 });
    expect(await poster.post('d', 'keyhealth.transition', '{}')).toEqual({ ok: false, reason: 'ECONNREFUSED', retry: true });
    const aborted = new AbortController();
    aborted.abort();
    expect(await poster.post('d', 'keyhealth.transition', '{}', aborted.signal)).toMatchObject({ ok: false, reason: 'shutdown' });
  });

  it('backs off exponentially with ±20 % jitter, capped', () => {
    const retry = { attempts: 10, baseDelayMs: 1000, maxDelayMs: 30_000, timeoutMs: 1 };
    expect(retryDelayMs(retry, 2, () => 0.5)).toBe(1000);
    expect(retryDelayMs(retry, 4, () => 0.5)).toBe(4000);
    expect(retryDelayMs(retry, 4, () => 0)).toBe(3200);
    expect(retryDelayMs(retry, 4, () => 1)).toBe(4800);
    expect(retryDelayMs(retry, 20, () => 0.5)).toBe(30_000);
  });
});
