import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand } from '@aws-sdk/client-kms';
import { createKmsClient } from '../src/kms/client-factory.js';
import { classifyKmsError } from '../src/kms/kms-failure.js';
import { readLocalKmsAdminSecret } from '../src/localkms/index.js';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { ensurePlatformKey } from '../src/kms/platform-key.js';
import { loadConfig } from '../src/config.js';
import { createCoreServices } from '../src/server/services.js';
import { openDatabase } from '../src/store/database.js';
import type { Database } from '../src/store/schema.js';
import { classifyWrite, connectionRefused, ConversationModel, patched, type Data, type State } from './soak/conversation-model.js';
import { liveMemory } from './soak/live-heap.js';
import { startPrivatePostgres, type PrivatePostgres } from './soak/private-postgres.js';
import { CLI, fdBreakdown, freePort, processUsage, spawnCli, type Spawned } from './soak/processes.js';
import { writeReliabilityReport, type SoakReport } from './soak/report.js';

/**
 * `npm run soak`: a standalone local KMS, two `convault serve` nodes on one PostgreSQL database
 * and a client sending mixed traffic to both, round robin, for 60 s over 5 organizations and 1,000
 * conversations, while faults are injected one after another. Then every acknowledged write is
 * read back from the other node and every audit chain is verified. Prints the figures and writes
 * docs/RELIABILITY.md. Exit code 0 when every target is met.
 *
 * The database is a PostgreSQL cluster of the soak's own (initdb under a temporary directory, the
 * server binaries of /usr/lib/postgresql/<version>/bin), because one fault restarts it, as
 * `pg_ctlcluster … restart` would: no other database on the machine is touched.
 *
 *   SOAK_SECONDS=60        length of the traffic (the fault schedule scales with it)
 */

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const ORGS = 5;
const CONVERSATIONS = 1000;
const WORKERS = 16;
const KEY_CACHE_MAX_AGE_S = 5;
const DATA_KEY_ROTATE_S = 20;
/** CONVAULT_CONFIG_REFRESH_MS's default: how long a save on one node may take to reach the other. */
const CONFIG_REFRESH_MS = 2000;
const CUSTOMER = '111122223333';
const PLATFORM = '444455556666';
const REGION = 'us-east-1';
const TOKEN = `soak-bootstrap-${randomBytes(12).toString('hex')}`;
const RUN = `soak_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

/** When each fault starts and ends, in seconds of the run (scaled to SOAK_SECONDS). */
const s = (x: number) => (x * SECONDS) / 60;
const SCHEDULE = {
  throttle: [s(8), s(18)] as const,
  outage: [s(22), s(32)] as const,
  rotation: s(34),
  /** Live memory of each node, warm: every conversation has been written or read by then. */
  liveWarm: s(20),
  pgFault: s(37),
  nodeKill: s(45),
};
const PHASES: Array<{ name: string; from: number; to: number }> = [
  { name: 'baseline', from: 0, to: s(8) },
  { name: 'KMS throttling 30 %', from: s(8), to: s(18) },
  { name: 'after throttling', from: s(18), to: s(22) },
  { name: 'KMS outage', from: s(22), to: s(32) },
  { name: 'after outage + rotation/rewrap', from: s(32), to: s(37) },
  { name: 'PostgreSQL restart', from: s(37), to: s(45) },
  { name: 'node SIGKILL + restart', from: s(45), to: s(53) },
  { name: 'tail', from: s(53), to: SECONDS + 1 },
];

interface Sample {
  t: number;
  node: number;
  op: string;
  status: number; // 0: no answer (connection refused, reset, timeout)
  ms: number;
  shapeOk: boolean;
  retryAfter: boolean;
  /** The error code of an error answer, or why there was no answer (ECONNREFUSED, TimeoutError, …). */
  why?: string;
}

interface Org {
  id: string;
  token: string;
  configId: string;
  aliasArn: string;
  conversations: string[];
}

interface Node {
  name: string;
  env: Record<string, string>;
  url: string;
  process?: Spawned;
  /** A start in progress (the supervisor's or the fault's), so two never race for the port. */
  starting?: Promise<void>;
  crashes: Array<{ t: number; output: string }>;
  usage: Array<{ t: number; rss: number; fds: number; pid: number }>;
  killedOnPurpose: boolean;
  /** The loopback port its inspector opens on when the soak asks for a full collection (live-heap.ts). */
  inspectPort: number;
  /** Live memory after a full collection: once warm, and after the traffic. */
  live: LiveSample[];
}

type LiveSample = { at: 'start' | 'warm' | 'after'; t: number; pid: number } & ({ heapUsed: number; rss: number } | { error: string });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-soak-'));
let cluster: PrivatePostgres | undefined;
/** Every process the soak started, so a failed run leaves none behind. */
const children: Spawned[] = [];
const spawnTracked = async (...args: Parameters<typeof spawnCli>): Promise<Spawned> => {
  const child = await spawnCli(...args);
  children.push(child);
  return child;
};
let t0 = Date.now();
const now = () => (Date.now() - t0) / 1000;
const log = (msg: string) => process.stdout.write(`[soak ${now().toFixed(1).padStart(5)} s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const rootKey = randomBytes(32).toString('hex');
  // Synchronous commits as in production (an acknowledged write is in the WAL); fsync stays off, since
  // the faults here end processes, not the machine. Room for both nodes' pools and the soak's own connections.
  cluster = await startPrivatePostgres({ settings: { synchronous_commit: 'on', max_connections: '100' } });
  const pgUrl = cluster.url;
  const databaseUrl = `${pgUrl}?schema=${RUN}`;
  log(`private PostgreSQL cluster at ${pgUrl} (${cluster.dir})`);

  // --- the standalone local KMS --------------------------------------------------------------------
  const kmsPort = await freePort();
  const kmsEnv = { CONVAULT_DATA_DIR: path.join(tmp, 'kms'), CONVAULT_LOCAL_KMS_ROOT_KEY: rootKey, CONVAULT_LOCAL_KMS_FAULTS: 'true' };
  const kms = await spawnTracked(['kms', 'serve', '--port', String(kmsPort)], kmsEnv, /local KMS serving at/);
  const kmsUrl = `http://127.0.0.1:${kmsPort}`;
  // Every caller signs with the access key the local KMS issued for its account (docs/LOCAL_KMS.md).
  const credentialsOf = (account: string) =>
    JSON.parse(execFileSync(process.execPath, [CLI, 'kms', 'credentials', '--account', account, '--json'], { env: { ...process.env, ...kmsEnv }, encoding: 'utf8' })) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
  const platformKey = credentialsOf(PLATFORM);
  const adminSecret = readLocalKmsAdminSecret(kmsEnv.CONVAULT_DATA_DIR);
  const platform = createKmsClient({ endpoint: kmsUrl, region: REGION, credentials: platformKey, maxAttempts: 1 });
  await ensurePlatformKey(platform, { create: true });
  platform.destroy();
  const faults = async (patch: unknown) => {
    const res = await fetch(`${kmsUrl}/_localkms/faults`, {
      method: patch === null ? 'DELETE' : 'PATCH',
      headers: { authorization: `Bearer ${adminSecret}` },
      body: patch === null ? undefined : JSON.stringify(patch) });
    if (!res.ok) throw new Error(`fault switch failed: ${res.status} ${await res.text()}`);
  };

  // --- two nodes on one PostgreSQL schema -----------------------------------------------------------
  const nodes: Node[] = [];
  for (const name of ['node-a', 'node-b']) {
    const port = await freePort();
    const inspectPort = await freePort();
    nodes.push({
      name,
      url: `http://127.0.0.1:${port}`,
      inspectPort,
      live: [],
      env: {
        NODE_OPTIONS: `--inspect-port=127.0.0.1:${inspectPort}`,
        PORT: String(port),
        HOST: '127.0.0.1',
        CONVAULT_DATA_DIR: path.join(tmp, name),
        DATABASE_URL: databaseUrl,
        CONVAULT_KMS_ENDPOINT: kmsUrl,
        AWS_ACCESS_KEY_ID: platformKey.accessKeyId,
        AWS_SECRET_ACCESS_KEY: platformKey.secretAccessKey,
        CONVAULT_BOOTSTRAP_TOKEN: TOKEN,
        CONVAULT_DEMO_KEY: 'false',
        CONVAULT_TEST_RATE_LIMIT_PER_MIN: '1000',
        // Short key lifetimes, so the KMS faults are felt within a minute: plaintext keys leave the
        // caches after 5 s (default 60) and a data key serves new conversations for 20 s (default 1 h).
        CONVAULT_KEY_CACHE_MAX_AGE_S: String(KEY_CACHE_MAX_AGE_S),
        CONVAULT_DATA_KEY_ROTATE_S: String(DATA_KEY_ROTATE_S),
        LOG_LEVEL: 'warn',
      },
      crashes: [],
      usage: [],
      killedOnPurpose: false,
    });
  }
  const start = (node: Node): Promise<void> => {
    node.starting = (async () => {
      node.process = await spawnTracked(['serve'], node.env, /serving at/);
      const spawned = node.process;
      void spawned.exited.then(async () => {
        if (node.killedOnPurpose || stopping) return;
        node.crashes.push({ t: now(), output: spawned.output().slice(-3000) });
        log(`${node.name} exited unexpectedly; restarting it (as a supervisor would)`);
        await sleep(500);
        if (!stopping) await start(node).catch((err) => log(`${node.name} restart failed: ${(err as Error).message}`));
      });
      log(`${node.name} serving (pid ${spawned.pid})`);
    })();
    return node.starting;
  };
  let stopping = false;
  // One after the other: the first creates the schema and bootstraps.
  for (const node of nodes) await start(node);
  log(`KMS at ${kmsUrl}; nodes at ${nodes.map((n) => n.url).join(', ')}; database schema ${RUN}`);

  // --- organizations, keys, configurations ----------------------------------------------------------
  const api = async (node: Node, method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(node.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body !== undefined ? JSON.stringify(body) : undefined });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined, headers: res.headers };
  };
  const customer = createKmsClient({ endpoint: kmsUrl, region: REGION, credentials: credentialsOf(CUSTOMER), maxAttempts: 1 });
  const createKey = async (orgId: string, alias: string) => {
    const policy = JSON.stringify(customerKeyPolicy({ customerAccountId: CUSTOMER, platformAccountId: PLATFORM, encryptionContextKey: 'convault-organization-id', orgIds: [orgId] }));
    const key = (await customer.send(new CreateKeyCommand({ Policy: policy }))).KeyMetadata!;
    await customer.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
    return `arn:aws:kms:${REGION}:${CUSTOMER}:${alias}`;
  };
  const orgs: Org[] = [];
  for (let i = 0; i < ORGS; i++) {
    const org = await api(nodes[0]!, 'POST', '/api/v2/admin/organizations', TOKEN, { name: `Soak org ${i}` });
    const perms = ['conversation:encryptionKey:view', 'conversation:encryptionKey:edit', 'conversation:securedData:view', 'conversation:securedData:edit', 'conversation:encryption:use', 'audit:log:view'];
    const tok = await api(nodes[0]!, 'POST', `/api/v2/admin/organizations/${org.body.id}/tokens`, TOKEN, { permissions: perms });
    const aliasArn = await createKey(org.body.id, `alias/soak-${i}`);
    const config = await api(nodes[0]!, 'POST', '/api/v2/conversations/keyconfigurations', tok.body.token, { keyConfigurationType: 'KmsSymmetric', url: aliasArn });
    if (config.status !== 201) throw new Error(`key configuration failed: ${JSON.stringify(config.body)}`);
    orgs.push({ id: org.body.id, token: tok.body.token, configId: config.body.id, aliasArn, conversations: Array.from({ length: CONVERSATIONS / ORGS }, (_, j) => `soak-${i}-${j}`) });
  }
  const rotationAlias = await createKey(orgs[0]!.id, 'alias/soak-0-rotated');
  customer.destroy();

  // --- traffic --------------------------------------------------------------------------------------
  const models = new Map<string, ConversationModel>();
  const owner = new Map<string, Org>();
  for (const org of orgs) for (const c of org.conversations) (models.set(c, new ConversationModel()), owner.set(c, org));
  const all = [...models.keys()];
  const samples: Sample[] = [];
  const wrongReads: string[] = [];
  let rr = 0;

  let unexpectedLogged = 0;
  const send = async (op: string, node: number, method: string, p: string, token: string, body?: unknown) => {
    const started = Date.now();
    const t = now();
    try {
      const res = await fetch(nodes[node]!.url + p, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let parsed: any;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      const shapeOk =
        res.status < 400 ||
        (typeof parsed === 'object' && parsed !== null && parsed.status === res.status && typeof parsed.message === 'string' && typeof parsed.code === 'string' && typeof parsed.contextId === 'string');
      samples.push({ t, node, op, status: res.status, ms: Date.now() - started, shapeOk, retryAfter: res.headers.has('retry-after'), ...(res.status >= 400 ? { why: String(parsed?.code) } : {}) });
      if ((res.status >= 400 && ![404, 424, 503].includes(res.status)) || !shapeOk) {
        if (unexpectedLogged++ < 10) log(`unexpected answer: ${op} on ${nodes[node]!.name} -> ${res.status} ${text.slice(0, 600)}`);
      }
      return { status: res.status, body: parsed, refused: false };
    } catch (err) {
      samples.push({ t, node, op, status: 0, ms: Date.now() - started, shapeOk: false, retryAfter: false, why: failureCause(err) });
      return { status: 0, body: undefined, refused: connectionRefused(err) };
    }
  };

  const value = () => randomBytes(6).toString('base64url');
  async function step(worker: number): Promise<void> {
    const mine = all.filter((_, i) => i % WORKERS === worker);
    const conv = mine[Math.floor(Math.random() * mine.length)]!;
    const model = models.get(conv)!;
    const org = owner.get(conv)!;
    const node = rr++ % 2;
    const p = `/api/v2/conversations/${conv}/secureddata`;
    const r = Math.random();
    // A conversation whose last write has an unknown outcome is read until that is settled (conversation-model.ts).
    const writable = model.writable;
    const outcomeOf = (res: { status: number; body: any; refused: boolean }) => classifyWrite({ status: res.status, code: res.body?.code, refused: res.refused });
    let status: number;
    if (writable && r < 0.45) {
      const op = model.hasData() ? 'PUT existing' : 'PUT new';
      const data: Data = { card: value(), name: value() };
      const res = await send(op, node, 'PUT', p, org.token, { data });
      model.wrote(outcomeOf(res), () => data, node);
      status = res.status;
    } else if (writable && r < 0.6) {
      const patch: Record<string, string | null> = { note: value(), ...(Math.random() < 0.3 ? { name: null } : {}) };
      const res = await send('PATCH', node, 'PATCH', p, org.token, { data: patch });
      model.wrote(outcomeOf(res), (st) => patched(st, patch), node);
      status = res.status;
    } else if (!writable || r < 0.9) {
      const res = await send('GET', node, 'GET', p, org.token);
      let seen: State | undefined;
      if (res.status === 200) seen = res.body.data as Data;
      else if (res.status === 404) seen = null;
      if (seen !== undefined && !model.observed(seen)) wrongReads.push(`${conv} on ${nodes[node]!.name}: ${JSON.stringify(seen)} not in ${JSON.stringify(model.candidates)}`);
      status = res.status;
    } else {
      const text = value();
      const enc = await send('Encrypt', node, 'POST', '/api/v2/conversations/encrypt', org.token, { data: text });
      status = enc.status;
      if (enc.status === 200) {
        const dec = await send('Decrypt', 1 - node, 'POST', '/api/v2/conversations/decrypt', org.token, { encryptedData: enc.body.encryptedData });
        if (dec.status === 200 && dec.body.data !== text) wrongReads.push(`Decrypt returned another text than was encrypted (${org.id})`);
      }
    }
    // Nobody listening (a node down): a client backs off instead of spinning.
    if (status === 0) await sleep(50);
  }

  // --- resource sampling ----------------------------------------------------------------------------
  const loads: number[] = [];
  const sampler = setInterval(() => {
    loads.push(os.loadavg()[0]!);
    for (const node of nodes) {
      const pid = node.process?.pid;
      const u = pid ? processUsage(pid) : undefined;
      if (u && pid) node.usage.push({ t: now(), ...u, pid });
    }
  }, 1000);

  // --- faults ---------------------------------------------------------------------------------------
  const faultLog: Array<{ name: string; from: number; to: number; note: string }> = [];
  let rotation = { status: 'not started', detail: '' };
  const scheduleAt = (at: number, fn: () => Promise<void>) => sleep(Math.max(0, at * 1000 - (Date.now() - t0))).then(fn).catch((err) => log(`fault step failed: ${(err as Error).message}`));


  // Open fds of each node at rest, before the traffic and again after it, by what they are: the
  // connections the client keeps alive to it (the server lets idle ones live for 72 s) are the
  // client's doing; the rest is what the node holds on its own.
  const atRest = () =>
    nodes.map((n) => {
      const u = n.process ? processUsage(n.process.pid) : undefined;
      const fds = n.process ? fdBreakdown(n.process.pid, Number(n.env.PORT), { database: cluster!.port, kms: kmsPort }) : undefined;
      return u && fds ? { rss: u.rss, fds: u.fds - fds.clients!, breakdown: fds } : undefined;
    });
  const measureLive = async (node: Node, at: LiveSample['at']) => {
    const pid = node.process?.pid;
    if (!pid) return;
    const t = now();
    try {
      node.live.push({ at, t, pid, ...(await liveMemory(pid, node.inspectPort)) });
    } catch (err) {
      node.live.push({ at, t, pid, error: (err as Error).message });
    }
  };
  for (const node of nodes) await measureLive(node, 'start');
  const restBefore = atRest();
  t0 = Date.now();
  log(`traffic for ${SECONDS} s: ${WORKERS} workers, ${ORGS} organizations, ${CONVERSATIONS} conversations`);
  const endAt = SECONDS * 1000;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    while (Date.now() - t0 < endAt) await step(w);
  });
  const faultsDone = Promise.all([
    scheduleAt(SCHEDULE.liveWarm, async () => {
      for (const node of nodes) await measureLive(node, 'warm');
      log(`live memory, warm: ${nodes.map((n) => `${n.name} ${JSON.stringify(n.live.at(-1))}`).join('; ')}`);
    }),
    scheduleAt(SCHEDULE.throttle[0], async () => {
      log('fault: KMS throttles 30 % of calls');
      await faults({ throttle: { ratio: 0.3 } });
    }),
    scheduleAt(SCHEDULE.throttle[1], async () => {
      await faults({ throttle: { ratio: 0 } });
      faultLog.push({ name: 'KMS throttling 30 %', from: SCHEDULE.throttle[0], to: SCHEDULE.throttle[1], note: 'ThrottlingException on 30 % of KMS calls' });
      log('fault over: throttling');
    }),
    scheduleAt(SCHEDULE.outage[0], async () => {
      log('fault: KMS outage (503 to every call)');
      await faults({ outage: 'unavailable', outageForMs: Math.round((SCHEDULE.outage[1] - SCHEDULE.outage[0]) * 1000) });
    }),
    scheduleAt(SCHEDULE.outage[1], async () => {
      faultLog.push({ name: 'KMS outage', from: SCHEDULE.outage[0], to: SCHEDULE.outage[1], note: 'every KMS call answered 503' });
      log('fault over: KMS outage');
    }),
    scheduleAt(SCHEDULE.rotation, async () => {
      const org = orgs[0]!;
      // As an admin's client would: a 503 (Retry-After) is tried again, for up to 10 s, and so is a
      // Save refused because its Test could not reach KMS (a 422 whose Test failed on an outage,
      // throttling or the open circuit: its awsError says which).
      const kmsTransient = (awsError: unknown) => typeof awsError === 'string' && ['Unreachable', 'Throttled', 'Internal'].includes(classifyKmsError({ name: awsError }, 'Test').kind);
      const transient = (res: { status: number; body: any }) =>
        res.status === 0 || res.status === 503 || (res.status === 422 && kmsTransient(res.body?.details?.report?.lastError?.awsError));
      const retrying = async (call: () => ReturnType<typeof api>) => {
        let res = await call().catch(() => ({ status: 0, body: undefined, headers: new Headers() }));
        for (let waited = 0; transient(res) && waited < 10_000; ) {
          const pause = 1000 * Number(res.headers.get('retry-after') ?? 1);
          await sleep(pause);
          waited += pause;
          res = await call().catch(() => ({ status: 0, body: undefined, headers: new Headers() }));
        }
        return res;
      };
      const saved = await retrying(async () => {
        const current = await api(nodes[0]!, 'GET', `/api/v2/conversations/keyconfigurations/${org.configId}`, org.token);
        if (current.status !== 200) return current;
        return api(nodes[0]!, 'PUT', `/api/v2/conversations/keyconfigurations/${org.configId}`, org.token, { keyConfigurationType: 'KmsSymmetric', url: rotationAlias, version: current.body.version });
      });
      if (saved.status !== 200) {
        rotation = { status: `save ${saved.status}`, detail: JSON.stringify(saved.body).slice(0, 300) };
        log(`rotation of ${org.id} not saved: ${rotation.detail}`);
        return;
      }
      // The rewrap is started on the other node, once the save has reached it: a node re-reads the
      // configuration at least every CONVAULT_CONFIG_REFRESH_MS (2 s), and a job started before that
      // would target the old key.
      await sleep(CONFIG_REFRESH_MS + 500);
      let job = await retrying(() => api(nodes[1]!, 'POST', `/api/v2/conversations/keyconfigurations/${org.configId}/rewrap`, org.token));
      // A job that ends failed only because KMS was unreachable (the circuit still open after the
      // outage) is started again, as its error tells an admin to; for up to 15 s.
      for (let waited = 0; job.status === 202 && waited < 15_000; ) {
        const state = await retrying(() => api(nodes[1]!, 'GET', `/api/v2/jobs/${job.body.id}`, org.token));
        if (['queued', 'running'].includes(state.body?.state)) {
          await sleep(250);
          waited += 250;
          continue;
        }
        const unreachable = state.body?.state === 'failed' && (state.body.errors ?? []).every((e: { reason?: string }) => /unreachable|try again/i.test(e.reason ?? ''));
        if (!unreachable) break;
        log(`rewrap job ${job.body.id} failed while KMS was unreachable; starting it again`);
        await sleep(1000);
        waited += 1000;
        job = await retrying(() => api(nodes[1]!, 'POST', `/api/v2/conversations/keyconfigurations/${org.configId}/rewrap`, org.token));
      }
      rotation = { status: `save ${saved.status}, rewrap ${job.status}`, detail: job.body?.id ?? JSON.stringify(job.body) };
      log(`rotation of ${org.id}: ${rotation.status}`);
    }),
    scheduleAt(SCHEDULE.pgFault, async () => {
      const from = now();
      log('fault: PostgreSQL restart (pg_ctl restart -m fast: every connection ends, the server is down until it is back)');
      await cluster!.restart();
      const to = now();
      faultLog.push({ name: 'PostgreSQL restart', from, to, note: `pg_ctl restart -m fast of the soak's own cluster (${(to - from).toFixed(1)} s down)` });
      log(`PostgreSQL is back after ${(to - from).toFixed(1)} s`);
    }),
    scheduleAt(SCHEDULE.nodeKill, async () => {
      const node = nodes[1]!;
      await node.starting?.catch(() => undefined); // a restart after an earlier crash finishes first
      const killedAt = now();
      log(`fault: SIGKILL ${node.name}`);
      node.killedOnPurpose = true;
      const killed = node.process!;
      killed.proc.kill('SIGKILL');
      await killed.exited;
      await start(node);
      node.killedOnPurpose = false;
      faultLog.push({ name: 'node SIGKILL + restart', from: killedAt, to: now(), note: `${node.name} killed and started again (${(now() - killedAt).toFixed(1)} s to serving)` });
      log(`${node.name} serving again`);
    }),
  ]);
  await Promise.all(workers);
  await faultsDone;
  clearInterval(sampler);
  log(`traffic over: ${samples.length} requests`);

  // --- read back every acknowledged write from the other node --------------------------------------
  await faults(null);
  let lost = 0;
  let checked = 0;
  const lostDetail: string[] = [];
  for (const [conv, model] of models) {
    if (model.acknowledgedWrites === 0) continue;
    const other = model.lastWriter === 0 ? 1 : 0;
    const org = owner.get(conv)!;
    let res = await api(nodes[other]!, 'GET', `/api/v2/conversations/${conv}/secureddata`, org.token).catch(() => ({ status: 0, body: undefined }));
    for (let attempt = 0; attempt < 5 && (res.status === 0 || res.status >= 500); attempt++) {
      await sleep(500);
      res = await api(nodes[other]!, 'GET', `/api/v2/conversations/${conv}/secureddata`, org.token).catch(() => ({ status: 0, body: undefined }));
    }
    checked++;
    const seen: State | undefined = res.status === 200 ? res.body.data : res.status === 404 ? null : undefined;
    if (seen === undefined || !model.observed(seen)) {
      lost++;
      if (lostDetail.length < 10) lostDetail.push(`${conv}: read ${res.status} ${JSON.stringify(seen)}, expected one of ${JSON.stringify(model.candidates)}`);
    }
  }
  log(`read back ${checked} conversations with acknowledged writes from the other node: ${lost} lost`);

  // Quiet for longer than the local KMS keeps an idle connection (Node's 5 s), so the nodes' idle KMS connections are gone.
  await sleep(6000);
  // The inspector opened by the measurement holds a few fds of its own: measured before each at-rest count.
  for (const node of nodes) await measureLive(node, 'after');
  const restAfter = atRest();
  log(`live memory, after the run: ${nodes.map((n) => `${n.name} ${JSON.stringify(n.live.at(-1))}`).join('; ')}`);

  // --- rewrap job, audit chains ----------------------------------------------------------------------
  const org0 = orgs[0]!;
  const job = rotation.detail && !rotation.detail.startsWith('{') ? await api(nodes[0]!, 'GET', `/api/v2/jobs/${rotation.detail}`, org0.token) : undefined;
  const database = await openDatabase<Database>({ url: pgUrl, dataDir: tmp, schema: RUN });
  // The audit trail as every process wires it (the composition root's core services).
  const { audit } = createCoreServices(loadConfig({ CONVAULT_DATA_DIR: tmp }), { database });
  const chains: Array<{ orgId: string; ok: boolean; count: number }> = [];
  for (const org of orgs) {
    const v = await audit.verify(org.id);
    chains.push({ orgId: org.id, ok: v.ok, count: v.count });
  }

  // --- stop everything ---------------------------------------------------------------------------------
  stopping = true;
  for (const node of nodes) {
    node.process?.proc.kill('SIGTERM');
    await node.process?.exited;
  }
  kms.proc.kill('SIGTERM');
  await kms.exited;
  await database.db.schema.dropSchema(RUN).ifExists().cascade().execute().catch(() => undefined);
  await database.close();
  fs.rmSync(tmp, { recursive: true, force: true });

  const report: SoakReport = {
    seconds: SECONDS,
    workers: WORKERS,
    orgs: ORGS,
    conversations: CONVERSATIONS,
    phases: PHASES,
    samples,
    faults: faultLog,
    wrongReads,
    lost,
    lostDetail,
    checked,
    rotation: {
      ...rotation,
      job: job?.body ? `${job.body.state}: ${job.body.done}/${job.body.total} data keys, target ${job.body.targetKeyId === rotationAlias ? 'the rotated key' : `${job.body.targetKeyId} (not the rotated key)`}` : 'no job',
    },
    chains,
    nodes: nodes.map((n, i) => ({ name: n.name, usage: n.usage, crashes: n.crashes, rest: { before: restBefore[i], after: restAfter[i] }, live: n.live })),
    nodeSettings: [`CONVAULT_KEY_CACHE_MAX_AGE_S=${KEY_CACHE_MAX_AGE_S}`, `CONVAULT_DATA_KEY_ROTATE_S=${DATA_KEY_ROTATE_S}`, 'CONVAULT_TEST_RATE_LIMIT_PER_MIN=1000', 'CONVAULT_DEMO_KEY=false'],
    machine: `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
    // The machine may be shared: the 1-minute load average during the traffic says how much.
    load: { start: loads[0] ?? NaN, max: Math.max(...loads), end: loads.at(-1) ?? NaN },
  };
  return writeReliabilityReport(report, path.resolve('docs/RELIABILITY.md'), (line) => process.stdout.write(line + '\n'));
}

/** Why a fetch got no answer, in a word. */
function failureCause(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  return e.cause?.code ?? e.cause?.name ?? e.name ?? 'unknown';
}

async function cleanUp(): Promise<void> {
  for (const child of children) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  await cluster?.destroy().catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().then(
  async (code) => {
    await cleanUp();
    process.exit(code);
  },
  async (err) => {
    process.stderr.write(`soak failed: ${(err as Error).stack ?? err}\n`);
    await cleanUp();
    process.exit(2);
  },
);
