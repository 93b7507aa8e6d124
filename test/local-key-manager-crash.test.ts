import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLocalKmsAdminSecret } from '../src/localkms/index.js';
import { tempDir } from './support/databases.js';
import { freePort, runCli, spawnServe, type ServeProcess } from './support/process.js';
import { spawnXksServe, type XksServeProcess } from './support/xks.js';

/**
 * Real processes: `convault serve` (LOG_LEVEL=trace) and `convault xks serve`, set up with the CLI
 * as a newcomer does. A rewrap from an AWS KMS key to a key behind the XKS proxy is cut by kill -9,
 * resumed by the next start, and every value reads back; then the organization moves back to AWS.
 * The proxy's secret is in no log line, no answer and no audit event.
 */

const BASE = '/api/v2/conversations/keyconfigurations';
const TOKEN = 'lkm-crash-bootstrap-token-0123456789';
const CONVERSATIONS = 600;

async function pool(n: number, width: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

describe('LocalKeyManager: rewrap AWS → XKS survives kill -9 (real processes, SQLite)', () => {
  const dataDir = tempDir();
  const xksDir = tempDir('convault-lkm-crash-xks-');
  let env: Record<string, string>;
  const xksEnv = { CONVAULT_DATA_DIR: xksDir };
  let serve: ServeProcess;
  let xks: XksServeProcess;
  let creds: { uriPrefix: string; accessKeyId: string; secretAccessKey: string };
  const logs: string[] = [];
  const answers: string[] = [];

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(serve.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    answers.push(text);
    return { status: res.status, body: JSON.parse(text) as any };
  };
  const restart = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const code = await serve.stop(signal);
    logs.push(serve.stdout(), serve.stderr());
    serve = await spawnServe(env);
    return code;
  };
  const createAwsKey = async (alias: string, orgId: string) => {
    const res = await runCli(['kms', 'create-key', '--account', '111122223333', '--region', 'us-east-1', '--alias', alias, '--allow-org', orgId, '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { keyArn: string; aliasArn: string };
  };
  const waitForJob = async (jobId: string) => {
    let job = (await call('GET', `/api/v2/jobs/${jobId}`)).body;
    for (let i = 0; i < 1200 && job.state !== 'succeeded' && job.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await call('GET', `/api/v2/jobs/${jobId}`)).body;
    }
    return job;
  };
  const readAll = () =>
    pool(CONVERSATIONS, 16, async (i) => {
      const res = await call('GET', `/api/v2/conversations/conv-${i}/secureddata`);
      if (res.status !== 200 || res.body.data.card !== `card-${i}`) throw new Error(`conv-${i}: ${JSON.stringify(res.body)}`);
    });

  beforeAll(async () => {
    xks = await spawnXksServe([], xksEnv);
    const key = await runCli(['xks', 'create-key', '--key-id', 'bank-key'], xksEnv);
    expect(key.code, key.stderr).toBe(0);
    const issued = await runCli(['xks', 'credentials', '--uri-prefix', '/bank', '--json'], xksEnv);
    expect(issued.code, issued.stderr).toBe(0);
    creds = JSON.parse(issued.stdout);
    env = {
      CONVAULT_DATA_DIR: dataDir,
      PORT: String(await freePort()),
      CONVAULT_LOCAL_KMS_PORT: String(await freePort()),
      CONVAULT_BOOTSTRAP_TOKEN: TOKEN,
      CONVAULT_DATA_KEY_MAX_CONVERSATIONS: '1',
      CONVAULT_LOCAL_KMS_FAULTS: 'true',
      CONVAULT_XKS_ALLOW_HTTP_LOOPBACK: 'true',
      LOG_LEVEL: 'trace',
    };
    serve = await spawnServe(env);
  });
  afterAll(async () => {
    await serve?.stop();
    xks?.proc.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(xksDir, { recursive: true, force: true });
  });

  it(`moves ${CONVERSATIONS} data keys to the XKS key across a kill -9, then back to AWS, losing nothing`, async () => {
    const orgId = (await call('GET', '/api/v2/organizations/me')).body.id;
    const a = await createAwsKey('alias/lkm-crash-a', orgId);
    const created = await call('POST', BASE, { keyConfigurationType: 'KmsSymmetric', url: a.aliasArn });
    expect(created.status).toBe(201);
    await pool(CONVERSATIONS, 1, async (i) => {
      const res = await call('PUT', `/api/v2/conversations/conv-${i}/secureddata`, { data: { card: `card-${i}` } });
      if (res.status !== 200) throw new Error(JSON.stringify(res.body));
    });

    const lkm = { keyConfigurationType: 'LocalKeyManager', url: `${xks.url}${creds.uriPrefix}`, keyId: 'bank-key', apiId: creds.accessKeyId, apiKey: creds.secretAccessKey };
    const tested = await call('POST', `${BASE}/validate`, lkm);
    expect(tested.body.ok, JSON.stringify(tested.body)).toBe(true);
    const saved = await call('PUT', `${BASE}/${created.body.id}`, { ...lkm, version: 1 });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    const xksRef = saved.body.keyArn as string;
    expect(xksRef).toBe(`${xks.url}${creds.uriPrefix}/keys/bank-key`);

    // Slow down the Decrypt under the old AWS key, so the kill lands mid-job.
    const faults = `http://127.0.0.1:${env.CONVAULT_LOCAL_KMS_PORT}/_localkms/faults`;
    const slowed = await fetch(faults, { method: 'PUT', headers: { authorization: `Bearer ${readLocalKmsAdminSecret(dataDir)}` }, body: JSON.stringify({ latencyMs: { Decrypt: 20 } }) });
    expect(slowed.status).toBe(200);
    const started = await call('POST', `${BASE}/${created.body.id}/rewrap`);
    expect(started.status).toBe(202);
    let seen = started.body;
    while (seen.done < 60 && seen.state !== 'succeeded') seen = (await call('GET', `/api/v2/jobs/${started.body.id}`)).body;
    expect(seen.state).toBe('running'); // killed mid-job, not after it
    expect(await restart('SIGKILL')).toBeNull();

    let job = (await call('GET', `/api/v2/jobs/${started.body.id}`)).body;
    expect(job.done).toBeLessThan(CONVERSATIONS);
    job = await waitForJob(started.body.id);
    expect(job).toMatchObject({ state: 'succeeded', total: CONVERSATIONS, done: CONVERSATIONS, failed: 0 });
    let usage = (await call('GET', `${BASE}/${created.body.id}/usage`)).body.entities;
    expect(usage.find((r: any) => r.keyArn === a.keyArn)).toMatchObject({ dataKeys: 0, safeToRetire: true, status: 'SafeToRetire' });
    expect(usage.find((r: any) => r.keyArn === xksRef)).toMatchObject({ current: true, dataKeys: CONVERSATIONS, values: CONVERSATIONS });

    // The AWS key is not needed any more: disabled, restarted (empty caches), everything reads through the proxy.
    expect((await runCli(['kms', 'disable-key', '--account', '111122223333', '--key', 'alias/lkm-crash-a'], env)).code).toBe(0);
    await restart();
    await readAll();

    // Back to AWS KMS: XKS → AWS, then the proxy's key is disabled and everything still reads.
    const b = await createAwsKey('alias/lkm-crash-b', orgId);
    const back = await call('PUT', `${BASE}/${created.body.id}`, { keyConfigurationType: 'KmsSymmetric', url: b.aliasArn, version: 2 });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    const rewrapBack = await call('POST', `${BASE}/${created.body.id}/rewrap`);
    job = await waitForJob(rewrapBack.body.id);
    expect(job).toMatchObject({ state: 'succeeded', done: CONVERSATIONS, failed: 0 });
    usage = (await call('GET', `${BASE}/${created.body.id}/usage`)).body.entities;
    expect(usage.find((r: any) => r.keyArn === xksRef)).toMatchObject({ dataKeys: 0, safeToRetire: true, status: 'SafeToRetire' });
    expect((await runCli(['xks', 'disable-key', '--key-id', 'bank-key'], xksEnv)).code).toBe(0);
    await restart();
    await readAll();

    // The secret: in no log line of any run (trace level), no answer, no audit event.
    logs.push(serve.stdout(), serve.stderr(), xks.output());
    expect(logs.join('').length).toBeGreaterThan(10_000);
    for (const text of [...logs, ...answers]) expect(text.includes(creds.secretAccessKey)).toBe(false);
    const audit = await runCli(['audit', 'export', '--org', orgId], env);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain('keyconfig.save');
    expect(audit.stdout.includes(creds.secretAccessKey)).toBe(false);
  }, 300_000);
});
