import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransitionPayload } from './types.js';
import { createWebhookSender, signWebhook, verifyWebhook, type WebhookGiveUp } from './webhook.js';

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

async function setup(statuses: number[], opts: { attempts?: number } = {}) {
  const r = await receiver(statuses);
  closers.push(r.close);
  const gaveUp: WebhookGiveUp[] = [];
  const sender = createWebhookSender({
    url: r.url,
    secret: SECRET,
    retry: { attempts: opts.attempts ?? 4, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 },
    onGiveUp: (f) => void gaveUp.push(f),
  });
  closers.push(() => sender.close());
  return { r, sender, gaveUp };
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
    expect(() => createWebhookSender({ url: 'http://127.0.0.1/x', secret: 'short' })).toThrow(/at least 16/);
    expect(() => createWebhookSender({ url: 'ftp://127.0.0.1/x', secret: SECRET })).toThrow(/http\(s\)/);
  });
});

describe('webhook delivery', () => {
  it('delivers a signed JSON POST with the event, delivery id and timestamp headers', async () => {
    const { r, sender, gaveUp } = await setup([204]);
    const id = sender.send(payload);
    await sender.idle();
    expect(r.received).toHaveLength(1);
    const [got] = r.received;
    expect(JSON.parse(got!.body)).toEqual(payload);
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers['x-convault-event']).toBe('keyhealth.transition');
    expect(got!.headers['x-convault-delivery']).toBe(id);
    const headers = { signature: got!.headers['x-convault-signature'] as string, timestamp: got!.headers['x-convault-timestamp'] as string };
    expect(verifyWebhook(SECRET, headers, got!.body)).toBe(true);
    expect(gaveUp).toEqual([]);
    expect(sender.target).not.toContain('receiver-secret'); // the query string never reaches logs or the audit trail
  });

  it('retries a receiver that fails twice with backoff, then delivers (same delivery id, each attempt signed)', async () => {
    const { r, sender, gaveUp } = await setup([500, 503, 200]);
    sender.send(payload);
    await sender.idle();
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((x) => x.headers['x-convault-delivery'])).size).toBe(1);
    for (const x of r.received) {
      expect(verifyWebhook(SECRET, { signature: x.headers['x-convault-signature'] as string, timestamp: x.headers['x-convault-timestamp'] as string }, x.body)).toBe(true);
    }
    expect(gaveUp).toEqual([]);
  });

  it('gives up after the last attempt and reports it, without throwing', async () => {
    const { r, sender, gaveUp } = await setup([500], { attempts: 3 });
    sender.send(payload);
    await sender.idle();
    expect(r.received).toHaveLength(3);
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]).toMatchObject({ attempts: 3, reason: 'HTTP 500', payload });
  });

  it('does not retry a refusal (4xx) nor follow a redirect', async () => {
    const refused = await setup([401]);
    refused.sender.send(payload);
    await refused.sender.idle();
    expect(refused.r.received).toHaveLength(1);
    expect(refused.gaveUp[0]).toMatchObject({ attempts: 1, reason: 'HTTP 401' });

    const redirected = await setup([302]);
    redirected.sender.send(payload);
    await redirected.sender.idle();
    expect(redirected.r.received).toHaveLength(1);
    expect(redirected.gaveUp[0]).toMatchObject({ attempts: 1, reason: 'HTTP 302' });
  });

  it('retries an unreachable receiver, then gives up with the network error', async () => {
    const r = await receiver([200]);
    await r.close(); // nothing listens on that port any more
    const gaveUp: WebhookGiveUp[] = [];
    const sender = createWebhookSender({ url: r.url, secret: SECRET, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10, timeoutMs: 2000 }, onGiveUp: (f) => void gaveUp.push(f) });
    sender.send(payload);
    await sender.idle();
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]).toMatchObject({ attempts: 2, reason: 'ECONNREFUSED' });
  });

  it('close() ends the wait between retries: the delivery is given up as shutdown', async () => {
    const r = await receiver([500]);
    closers.push(r.close);
    const gaveUp: WebhookGiveUp[] = [];
    const sender = createWebhookSender({ url: r.url, secret: SECRET, retry: { attempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000, timeoutMs: 2000 }, onGiveUp: (f) => void gaveUp.push(f) });
    sender.send(payload);
    while (r.received.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await sender.close();
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]).toMatchObject({ attempts: 1, reason: 'shutdown' });
    sender.send(payload); // after close: dropped and reported at once
    await sender.idle();
    expect(gaveUp[1]).toMatchObject({ attempts: 0, reason: 'shutdown' });
  });
});
