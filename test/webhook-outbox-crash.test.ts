import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { freePort, spawnServe, type ServeProcess } from './support/process.js';

/**
 * The webhook outbox is durable: a delivery that is being retried when `convault serve` is killed
 * with SIGKILL is sent by the restarted process, with the same delivery id, no earlier than the
 * backoff recorded before the crash.
 */

const TOKEN = 'outbox-crash-bootstrap-token-0123456789';
const SECRET = 'outbox-crash-webhook-secret';

describe('webhook deliveries survive kill -9', () => {
  const dataDir = tempDir();
  let node: ServeProcess | undefined;
  let receiver: http.Server | undefined;
  afterAll(async () => {
    await node?.stop('SIGKILL');
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a pending delivery is sent after the crash and restart', async () => {
    const hookPort = await freePort(); // nothing listens there until after the crash
    const env = {
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_BOOTSTRAP_TOKEN: TOKEN,
      CONVAULT_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/hook`,
      CONVAULT_WEBHOOK_SECRET: SECRET,
      CONVAULT_WEBHOOK_MAX_ATTEMPTS: '30',
      CONVAULT_KEY_PROBE_INTERVAL_S: '31536000',
      PORT: String(await freePort()),
      CONVAULT_LOCAL_KMS_PORT: String(await freePort()),
    };
    node = await spawnServe(env);
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(node!.url + path, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const aliasArn = /Demo customer key \(local KMS, account \d+\): (\S+)/.exec(node.stdout())![1]!;
    const config = await call('POST', '/api/v2/conversations/keyconfigurations', { keyConfigurationType: 'KmsSymmetric', url: aliasArn });
    expect(config.status).toBe(201);
    const base = `/api/v2/conversations/keyconfigurations/${config.body.id}/health`;
    expect((await call('POST', `${base}/probe`)).status).toBe(200); // unknown → ok: one delivery

    // Wait for at least one failed attempt (connection refused) and its backoff to be recorded.
    let pending: any;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      pending = (await call('GET', `${base}/webhooks`)).body.entities[0];
      if (pending?.attempts >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending).toMatchObject({ state: 'pending', lastError: 'ECONNREFUSED', nextAttemptAt: expect.any(String) });
    const nextAttemptAt = Date.parse(pending.nextAttemptAt);

    node.proc.kill('SIGKILL');
    await node.stop();

    const received: Array<{ headers: http.IncomingHttpHeaders; body: string; at: number }> = [];
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(hookPort, '127.0.0.1', resolve));

    node = await spawnServe(env);
    // The crashed node's sender lease (10 s) runs out, then the restarted node sends.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && received.length === 0; ) await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(1);
    const [got] = received;
    expect(got!.headers['x-convault-delivery']).toBe(pending.id);
    expect(got!.headers['idempotency-key']).toBe(pending.id);
    expect(got!.at).toBeGreaterThanOrEqual(nextAttemptAt);
    const timestamp = String(got!.headers['x-convault-timestamp']);
    expect(got!.headers['x-convault-signature']).toBe('sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${got!.body}`).digest('hex'));
    expect(JSON.parse(got!.body)).toMatchObject({ event: 'keyhealth.transition', from: 'unknown', to: 'ok', configurationId: config.body.id });

    let delivered: any;
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; ) {
      delivered = (await call('GET', `${base}/webhooks`)).body.entities[0];
      if (delivered.state === 'delivered') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(delivered).toMatchObject({ id: pending.id, state: 'delivered' });
    expect(delivered.attempts).toBeGreaterThan(pending.attempts);
  }, 60_000);
});
