import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { startRuntime, type Runtime } from '../src/server/runtime.js';

/**
 * Statements sent to the database per request (docs/BENCHMARKS.md, "Round trips"): a real runtime
 * in-process, requests over HTTP one at a time, the database handle's statement counter read around
 * each. Background work (sealer, sweeps, probes) is stopped first so it is not counted; the sealer's
 * statements per sealed event are counted separately.
 */

export interface StatementCounts {
  get5: number;
  putNew: number;
  putExisting: number;
  /** Statements of one sealing pass, per event sealed (batches of 100 events of one organization). */
  sealPerEvent?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export async function countStatements(databaseUrl?: string): Promise<StatementCounts> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-count-'));
  const runtime: Runtime = await startRuntime(
    loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', CONVAULT_DATA_DIR: dataDir, CONVAULT_KEY_PROBE_INTERVAL_S: '86400', ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) }),
  );
  const sealer = (runtime as Partial<Pick<Runtime, 'auditSealer'>>).auditSealer;
  try {
    await sealer?.stop();
    const token = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const call = async (method: string, conv: string, body?: unknown) => {
      const res = await fetch(`${runtime.url}/api/v2/conversations/${conv}/secureddata`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      if (res.status !== 200) throw new Error(`${method} ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    };
    const counted = async (fn: () => Promise<void>) => {
      const before = runtime.database.statements().executed;
      await fn();
      return runtime.database.statements().executed - before;
    };
    const value = 'x'.repeat(256);
    const five = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`attr${i}`, value]));
    // Warm-up: data key, caches, token.
    for (let i = 0; i < 5; i++) await call('PUT', randomUUID(), { data: five });
    const putNew: number[] = [], putExisting: number[] = [], get5: number[] = [];
    for (let i = 0; i < 15; i++) {
      const conv = randomUUID();
      putNew.push(await counted(() => call('PUT', conv, { data: { a: value } })));
      putExisting.push(await counted(() => call('PUT', conv, { data: { a: value } })));
      await call('PUT', conv, { data: five });
      get5.push(await counted(() => call('GET', conv)));
    }
    let sealPerEvent: number | undefined;
    if (sealer) {
      await sealer.sealPending();
      const conv = randomUUID();
      await call('PUT', conv, { data: five });
      for (let i = 0; i < 99; i++) await call('GET', conv);
      const before = runtime.database.statements().executed;
      const sealed = await sealer.sealPending();
      sealPerEvent = (runtime.database.statements().executed - before) / sealed;
    }
    return { get5: median(get5), putNew: median(putNew), putExisting: median(putExisting), sealPerEvent };
  } finally {
    await runtime.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const url = process.argv[2];
  countStatements(url).then((c) => process.stdout.write(JSON.stringify(c) + '\n'), (err) => { console.error(err); process.exit(1); });
}
