import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgWithCustomerKey } from './support/customer-keys.js';
import { databaseTargets, postgresUrl, tempDir, uniqueSchema } from './support/databases.js';
import { freePort, spawnServe, type ServeProcess } from './support/process.js';
import { createOrgWithToken, dropSchema, startTestServer, type TestServer } from './support/runtime.js';
import { runTraffic, type TrafficSample } from './support/traffic.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Short versions of the soak's faults (`npm run soak`, docs/RELIABILITY.md), a few seconds each
 * under concurrent mixed traffic: nothing acknowledged is lost, nothing wrong is read, errors are
 * 503/424 in the error shape with Retry-After on 503, and service comes back once the fault ends.
 * What "lost" and "wrong" mean, answer by answer, is in bench/soak/conversation-model.ts.
 */

function expectFaultErrors(samples: TrafficSample[]) {
  const errors = samples.filter((s) => s.status >= 400 && s.status !== 404);
  for (const e of errors) {
    expect([503, 424], JSON.stringify(e)).toContain(e.status);
    expect(e.body, JSON.stringify(e)).toMatchObject({ status: e.status, code: expect.any(String), message: expect.any(String), contextId: expect.any(String), errorType: expect.any(String) });
    if (e.status === 503) expect(Number(e.retryAfter), JSON.stringify(e)).toBeGreaterThanOrEqual(1);
  }
  return errors;
}

for (const target of databaseTargets) describe.skipIf(!target.available)(`KMS faults under traffic (in-process server, ${target.name})`, () => {
  let server: TestServer;
  let org: Awaited<ReturnType<typeof orgWithCustomerKey>>;
  beforeAll(async () => {
    // Keys leave the cache after 1 s, so the traffic keeps calling KMS (Decrypt, GenerateDataKey).
    server = await startTestServer(target.name, { CONVAULT_KEY_CACHE_MAX_AGE_S: '1', CONVAULT_DATA_KEY_ROTATE_S: '1', CONVAULT_KEY_PROBE_INTERVAL_S: '31536000' });
    org = await orgWithCustomerKey(server, 'Fault cases', createOrgWithToken);
  });
  afterAll(async () => server?.close());

  it('30 % throttling for 3 s: the SDK retries absorb it; nothing lost, nothing wrong, no 5xx', async () => {
    const faults = server.runtime.kms.localKms!.faults;
    const kmsCallsBefore = server.runtime.kms.metrics.count();
    faults.set({ throttle: { ratio: 0.3 } });
    let traffic;
    try {
      traffic = await runTraffic({ urls: () => [server.url], token: org.token, conversations: 60, workers: 6, ms: 3000, prefix: 'throttle' });
    } finally {
      faults.set({ throttle: { ratio: 0 } });
    }
    expect(traffic.samples.length).toBeGreaterThan(10);
    expectFaultErrors(traffic.samples);
    expect(traffic.samples.filter((s) => s.status >= 500 || s.status === 0)).toEqual([]);
    expect(traffic.wrongReads).toEqual([]);
    expect(await traffic.lostWrites(server.url)).toEqual([]);
    // Enough KMS calls went through the throttling for some to be refused (exactly 30 % of them are).
    expect(server.runtime.kms.metrics.count() - kmsCallsBefore).toBeGreaterThanOrEqual(4);
  }, 15_000);

  it('a 3 s KMS outage: errors are 503 with Retry-After in the error shape, service is back within 5 s, nothing lost', async () => {
    const faults = server.runtime.kms.localKms!.faults;
    const outageMs = 3000;
    const trafficMs = outageMs + 4000;
    const traffic = runTraffic({ urls: () => [server.url], token: org.token, conversations: 60, workers: 6, ms: trafficMs, prefix: 'outage' });
    faults.set({ outage: 'unavailable', outageForMs: outageMs });
    const done = await traffic;
    const errors = expectFaultErrors(done.samples);
    expect(errors.length).toBeGreaterThan(0); // the outage was felt (the cache holds keys for 1 s only)
    // Recovery: no failure later than 5 s after the outage ended.
    const lastFailure = Math.max(0, ...done.samples.filter((s) => s.status >= 500).map((s) => s.at));
    expect(lastFailure).toBeLessThan(outageMs + 5000);
    expect(done.samples.filter((s) => s.at > outageMs + 1500 && s.status === 200).length).toBeGreaterThan(0);
    expect(done.wrongReads).toEqual([]);
    expect(await done.lostWrites(server.url)).toEqual([]);
    // Creates refused during the outage leave conversations that were never written: their 404 is right.
    expect(done.samples.some((s) => s.status === 404)).toBe(true);
  }, 15_000);
});

for (const target of databaseTargets) describe.skipIf(!target.available)(`SIGKILL of a node under traffic (real process, ${target.name})`, () => {
  const dataDir = tempDir();
  const schema = target.name === 'postgres' ? uniqueSchema() : undefined;
  let node: ServeProcess | undefined;
  afterAll(async () => {
    await node?.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (schema) await dropSchema(schema);
  });

  // SQLite acknowledges through the group commit (src/store/group-commit.ts), PostgreSQL through a transaction per write.
  it('every write acknowledged before the kill is there after the restart', async () => {
    const env = {
      CONVAULT_DATA_DIR: dataDir,
      CONVAULT_BOOTSTRAP_TOKEN: 'fault-cases-bootstrap-token-0123',
      PORT: String(await freePort()),
      CONVAULT_LOCAL_KMS_PORT: String(await freePort()),
      ...(schema ? { DATABASE_URL: `${postgresUrl()}?schema=${schema}` } : {}),
    };
    node = await spawnServe(env);
    const url = node.url; // the same port after the restart
    const live: TrafficSample[] = [];
    let restartedAt: number | undefined;
    // Until 2 s after the restart, however long the restart takes on a loaded machine.
    const longer = () => restartedAt === undefined || Date.now() - restartedAt < 2000;
    const traffic = runTraffic({ urls: () => [url], token: env.CONVAULT_BOOTSTRAP_TOKEN, conversations: 80, workers: 8, ms: 4000, prefix: 'kill', samples: live, longer });
    // Kill it mid-traffic, once writes are being acknowledged (sooner or later depending on the machine's load).
    for (let waited = 0; live.filter((s) => s.status === 200).length < 60 && waited < 3000; waited += 25) await sleep(25);
    const acknowledgedBeforeKill = live.filter((s) => s.status === 200).length;
    node.proc.kill('SIGKILL');
    await node.stop();
    // Restarted at once, as a supervisor would: the traffic goes on against the new process and reads what the old one acknowledged.
    try {
      node = await spawnServe(env);
    } finally {
      restartedAt = Date.now(); // a failed start ends the traffic too
    }
    const done = await traffic;
    expect(acknowledgedBeforeKill).toBeGreaterThanOrEqual(10);
    expect(done.samples.filter((s) => s.status >= 500)).toEqual([]);
    expect(done.wrongReads).toEqual([]);
    expect(await done.lostWrites(node.url)).toEqual([]);
    // Writes were acknowledged again after the restart.
    expect(done.samples.filter((s) => s.status === 200).length).toBeGreaterThan(acknowledgedBeforeKill);
  }, 30_000); // two process starts (≈ 1 s each on an idle machine, several on a loaded one) and about 5 s of traffic
});
