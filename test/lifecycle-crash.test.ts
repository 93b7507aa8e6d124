import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/databases.js';
import { readLocalKmsAdminSecret } from '../src/localkms/index.js';
import { freePort, runCli, spawnServe, type ServeProcess } from './support/process.js';

const BASE = '/api/v2/conversations/keyconfigurations';
const TOKEN = 'crash-test-bootstrap-token-0123456789';
const CONVERSATIONS = 2000;

/** Runs `fn` over 0..n-1 with `width` calls in flight. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

describe('rewrap survives kill -9 of the server (real process, SQLite)', () => {
  const dataDir = tempDir();
  let env: Record<string, string>;
  let serve: ServeProcess;

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(serve.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const createKey = async (alias: string, orgId: string) => {
    const res = await runCli(['kms', 'create-key', '--account', '111122223333', '--region', 'us-east-1', '--alias', alias, '--allow-org', orgId, '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { keyArn: string; aliasArn: string };
  };

  beforeAll(async () => {
    env = {
      CONVAULT_DATA_DIR: dataDir,
      PORT: String(await freePort()),
      CONVAULT_LOCAL_KMS_PORT: String(await freePort()),
      CONVAULT_BOOTSTRAP_TOKEN: TOKEN,
      CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1',
      CONVAULT_LOCAL_KMS_FAULTS: 'true',
    };
    serve = await spawnServe(env);
    // A token the operator chose is not echoed to the log; the start says where it is.
    expect(serve.stdout()).not.toContain(TOKEN);
    expect(serve.stdout()).toContain('the value of CONVAULT_BOOTSTRAP_TOKEN');
  });
  afterAll(async () => {
    await serve?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it(`finishes a rewrap of ${CONVERSATIONS} data keys after a kill -9 and a restart, with every value still decryptable`, async () => {
    const orgId = (await call('GET', '/api/v2/organizations/me')).body.id;
    const a = await createKey('alias/crash-a', orgId);
    const created = await call('POST', BASE, { keyConfigurationType: 'KmsSymmetric', url: a.aliasArn });
    expect(created.status).toBe(201);
    // One at a time: the per-key conversation limit is exact for sequential writes (concurrent first
    // writes of an org may share a data key).
    await pool(CONVERSATIONS, 1, async (i) => {
      const res = await call('PUT', `/api/v2/conversations/conv-${i}/secureddata`, { data: { card: `card-${i}` } });
      if (res.status !== 200) throw new Error(JSON.stringify(res.body));
    });
    const before = (await call('GET', `${BASE}/${created.body.id}/usage`)).body.entities;
    expect(before.find((r: any) => r.keyArn === a.keyArn).dataKeys).toBe(CONVERSATIONS);
    const b = await createKey('alias/crash-b', orgId);
    expect((await call('PUT', `${BASE}/${created.body.id}`, { keyConfigurationType: 'KmsSymmetric', url: b.aliasArn, version: 1 })).status).toBe(200);

    // Slow down ReEncrypt — the call this job makes per data key, its key policy granting kms:ReEncrypt* —
    // through the local KMS's fault endpoint (enabled for this test), so the kill lands mid-job.
    const faults = `http://127.0.0.1:${env.CONVAULT_LOCAL_KMS_PORT}/_localkms/faults`;
    const adminSecret = readLocalKmsAdminSecret(dataDir);
    const slowed = await fetch(faults, { method: 'PUT', headers: { authorization: `Bearer ${adminSecret}` }, body: JSON.stringify({ latencyMs: { ReEncrypt: 5 } }) });
    expect(slowed.status).toBe(200);
    const started = await call('POST', `${BASE}/${created.body.id}/rewrap`);
    expect(started.status).toBe(202);
    let seen = started.body;
    while (seen.done < 200 && seen.state !== 'succeeded') seen = (await call('GET', `/api/v2/jobs/${started.body.id}`)).body;
    expect(seen.state).toBe('running'); // killed mid-job, not after it
    expect(await serve.stop('SIGKILL')).toBeNull();

    serve = await spawnServe(env);
    let job = (await call('GET', `/api/v2/jobs/${started.body.id}`)).body;
    expect(job.done).toBeLessThan(CONVERSATIONS);
    for (let i = 0; i < 1200 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await call('GET', `/api/v2/jobs/${started.body.id}`)).body;
    }
    expect(job).toMatchObject({ state: 'succeeded', total: CONVERSATIONS, done: CONVERSATIONS, failed: 0 });

    const usage = (await call('GET', `${BASE}/${created.body.id}/usage`)).body.entities;
    expect(usage.find((r: any) => r.keyArn === a.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true });
    expect(usage.find((r: any) => r.keyArn === b.keyArn)).toMatchObject({ dataKeys: CONVERSATIONS, values: CONVERSATIONS });

    // A is no longer needed: disable it, restart (empty caches), and read everything back.
    expect((await runCli(['kms', 'disable-key', '--account', '111122223333', '--key', 'alias/crash-a'], env)).code).toBe(0);
    expect(await serve.stop()).toBe(0);
    serve = await spawnServe(env);
    await pool(CONVERSATIONS, 16, async (i) => {
      const res = await call('GET', `/api/v2/conversations/conv-${i}/secureddata`);
      if (res.status !== 200 || res.body.data.card !== `card-${i}`) throw new Error(`conv-${i}: ${JSON.stringify(res.body)}`);
    });
  }, 300_000);

  it('convault rewrap --org --wait runs a job to the end with progress', async () => {
    const orgId = (await call('GET', '/api/v2/organizations/me')).body.id;
    const config = (await call('GET', BASE)).body.entities[0];
    const c = await createKey('alias/crash-c', orgId);
    expect((await call('PUT', `${BASE}/${config.id}`, { keyConfigurationType: 'KmsSymmetric', url: c.aliasArn, version: config.version })).status).toBe(200);
    const res = await runCli(['rewrap', '--org', orgId, '--wait'], env, 300_000);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout, res.stdout).toMatch(new RegExp(`succeeded: ${CONVERSATIONS} of ${CONVERSATIONS} data keys rewrapped, 0 failed`));
    expect(res.stderr).toMatch(/\] \d+\/2000 rewrapped, 0 failed/);
    const bad = await runCli(['rewrap', '--org', 'no-such-org'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Organization no-such-org was not found');
  }, 300_000);
});
